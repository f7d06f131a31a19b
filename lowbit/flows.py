"""The flows the CLI runs, usable from Python too."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from lowbit.errors import InputFileError
from lowbit.sw.ir import Network

__all__ = ["inspect_rows", "format_table", "load_inputs", "save_outputs", "run_model"]


def inspect_rows(net: Network) -> list[dict]:
    """One row per layer (the input quantizer first), as ``lowbit inspect`` prints them."""
    stage = net.input
    rows = [{
        "layer": stage.name, "kind": f"input {stage.quantizer}",
        "shape": "x".join(map(str, stage.input_shape)) + " -> " + str(int(np.prod(stage.out_shape))),
        "in_bits": 32, "out_bits": stage.out.bits, "weight_bits": "-", "thresholds": "-",
        "acc_bits": "-", "weight_mem_bits": 0,
    }]
    for layer in net.layers:
        act = layer.activation
        rows.append({
            "layer": layer.name,
            "kind": layer.weight_kind.value,
            "shape": f"{layer.in_features} -> {layer.out_features}",
            "in_bits": layer.in_values.bits,
            "out_bits": act.out.bits if act is not None else 32,
            "weight_bits": layer.weight_bits,
            "thresholds": act.levels if act is not None else "float tail",
            "acc_bits": layer.acc_bits,
            "weight_mem_bits": layer.weight_memory_bits,
        })
    return rows


COLUMNS = [
    ("layer", "layer"), ("kind", "kind"), ("shape", "shape"), ("in_bits", "in bits"),
    ("out_bits", "out bits"), ("weight_bits", "w bits"), ("thresholds", "thresholds"),
    ("acc_bits", "acc bits"), ("weight_mem_bits", "weight mem bits"),
]


def format_table(rows: list[dict], columns=COLUMNS) -> str:
    cells = [[str(r[key]) for key, _ in columns] for r in rows]
    heads = [title for _, title in columns]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()  # noqa: E731
    return "\n".join([line(heads), line(["-" * w for w in widths]), *map(line, cells)])


def load_inputs(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"--inputs {path}: no such file")
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise InputFileError(f"--inputs {path}: not a .npy array ({type(exc).__name__})") from None
    if not isinstance(x, np.ndarray):
        raise InputFileError(f"--inputs {path}: holds several arrays; give one .npy array")
    return x


def save_outputs(path: str | os.PathLike, y: np.ndarray, protect: tuple = ()) -> None:
    """Write ``y`` atomically; refuse to write over any file in ``protect`` (the user's inputs)."""
    path = Path(path)
    for p in protect:
        if Path(p).exists() and path.exists() and path.resolve() == Path(p).resolve():
            raise InputFileError(f"--out {path}: is one of the input files; refusing to overwrite it")
    if not path.parent.is_dir():
        raise InputFileError(f"--out {path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, y)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def run_model(net: Network, x: np.ndarray, engine: str = "reference") -> tuple[np.ndarray, float]:
    """Run ``x`` through ``net``; returns the outputs and the seconds it took."""
    from lowbit.sw import reference

    start = time.perf_counter()
    if engine == "reference":
        y = reference.run(net, x)
    else:
        raise InputFileError(f"--engine {engine}: unknown engine")
    return y, time.perf_counter() - start
