"""Folding files: the JSON that ``lowbit compile`` writes as ``folding.json`` and takes back.

``{"layers": [{"name": …, "pe": …, "simd": …, "tree_stages": …, "zero_skip": …,
"operand_register": …, "lut_weights": …, "planes_per_cycle": …}, …], "label_select": false,
"line_buffers": true}``: ``pe`` and ``simd`` are required, the rest optional
(``popcount_stages`` is read as the older name of ``tree_stages``). Every value is checked;
unknown keys and non-boolean switches are refused, naming the entry.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lowbit.hw.plan import Folding, LayerFolding, validate_folding
from lowbit.sw.ir import Network

from lowbit.errors import FoldingError

__all__ = ["load_folding", "parse_folding", "MAX_FOLDING_BYTES"]

MAX_FOLDING_BYTES = 1 << 20  # a folding file is a few hundred bytes per layer
KEYS = {"name", "pe", "simd", "tree_stages", "popcount_stages", "zero_skip", "operand_register",
        "lut_weights", "planes_per_cycle"}


def load_folding(path: str | os.PathLike, net: Network) -> Folding:
    """Read and validate a folding file for ``net``."""
    path = Path(path)
    if not path.exists():
        raise FoldingError(f"{path}: no such file", param="folding")
    if not path.is_file():
        raise FoldingError(f"{path}: not a regular file", param="folding")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FOLDING_BYTES + 1)
    except OSError as exc:
        raise FoldingError(f"{path}: cannot be read ({exc.strerror})", param="folding") from None
    if len(raw) > MAX_FOLDING_BYTES:
        raise FoldingError(f"{path}: larger than {MAX_FOLDING_BYTES} bytes; not a folding file",
                           param="folding")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise FoldingError(f"{path}: not valid JSON ({exc})", param="folding") from None
    return parse_folding(data, net, str(path))


def parse_folding(data, net: Network, source: str = "folding") -> Folding:
    """A folding from its JSON form (a dict as :meth:`Folding.to_json` writes it), validated."""

    def fail(what: str):
        raise FoldingError(f"{source}: {what}", param="folding")

    if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
        fail('expected {"layers": [{"pe": …, "simd": …}, …]}')
    unknown = set(data) - {"layers", "label_select", "line_buffers"}
    if unknown:
        fail(f"unknown keys {sorted(unknown)}")
    layers = []
    for k, entry in enumerate(data["layers"]):
        if not isinstance(entry, dict):
            fail(f"layers[{k}] must be an object")
        unknown = set(entry) - KEYS
        if unknown:
            fail(f"layers[{k}] has unknown keys {sorted(unknown)}")
        stages = entry.get("tree_stages", entry.get("popcount_stages"))
        name = entry.get("name", net.layers[k].name if k < len(net.layers) else str(k))
        if not isinstance(name, str):
            fail(f"layers[{k}]: name must be a string")
        layers.append(LayerFolding(
            name=name, pe=_whole(entry.get("pe"), "pe", fail, k),
            simd=_whole(entry.get("simd"), "simd", fail, k),
            tree_stages=None if stages is None else _whole(stages, "tree_stages", fail, k),
            zero_skip=_switch(entry, "zero_skip", fail, k),
            operand_register=_switch(entry, "operand_register", fail, k),
            lut_weights=_switch(entry, "lut_weights", fail, k),
            planes_per_cycle=(None if entry.get("planes_per_cycle") is None else
                              _whole(entry["planes_per_cycle"], "planes_per_cycle", fail, k)),
        ))
    label_select = data.get("label_select", False)
    if not isinstance(label_select, bool):
        fail("label_select must be true or false")
    line_buffers = data.get("line_buffers", True)
    if not isinstance(line_buffers, bool):
        fail("line_buffers must be true or false")
    folding = Folding(tuple(layers), label_select, line_buffers)
    validate_folding(net, folding)
    return folding


def _switch(entry: dict, key: str, fail, k: int) -> bool | None:
    value = entry.get(key)
    if value is not None and not isinstance(value, bool):
        fail(f"layers[{k}]: {key} must be true or false")
    return value


def _whole(value, key: str, fail, k: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        fail(f"layers[{k}]: pe, simd, tree_stages and planes_per_cycle must be whole numbers "
             f"({key} is "
             f"{json.dumps(value)})")
    if not 0 <= value <= 1 << 20:
        fail(f"layers[{k}]: {key}={value} is out of range")
    return value
