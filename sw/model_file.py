"""Reading an ONNX file, and proving it is a model lowbit can read before interpreting it.

:func:`load_model` reads the protobuf (external data from the model's own folder only);
:func:`validate_model` checks it as a whole before the import walk looks at any node: the ONNX
checker (with the QONNX domains declared), every initializer decodes and holds no NaN, every
tensor has one producer, the graph has one output that every node contributes to, and the input
shape is bounded. A model that fails is refused in one line naming what is wrong.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from lowbit.errors import ModelFileError, UnsupportedError

from .quant_ops import QUANT_DOMAINS

__all__ = ["load_model", "validate_model", "MAX_MODEL_BYTES", "MAX_INPUT_ELEMENTS"]

MAX_MODEL_BYTES = 2 << 30  # protobuf's own limit
MAX_INPUT_ELEMENTS = 1 << 24  # per sample: a 16 M-element input is far beyond any low-bit model


def load_model(path: str | os.PathLike) -> onnx.ModelProto:
    """Read an ONNX file, with external data from its own folder only."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file" if not path.exists()
                             else f"{path}: not a regular file")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise ModelFileError(f"{path}: larger than 2 GiB; not an ONNX model lowbit can read")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several types on garbage
        raise ModelFileError(f"{path}: not a readable ONNX file ({type(exc).__name__})") from None
    if not model.graph.node or not model.graph.output:
        raise ModelFileError(f"{path}: not an ONNX model (no graph nodes or outputs)")
    folder = path.resolve().parent
    for tensor in onnx.external_data_helper._get_all_tensors(model):
        if not onnx.external_data_helper.uses_external_data(tensor):
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (folder / location).resolve()
        if folder not in target.parents:
            raise ModelFileError(
                f"{path}: tensor {tensor.name!r} points at external data {location!r} outside "
                f"the model's folder; refusing to read it"
            )
        if not target.is_file():
            raise ModelFileError(
                f"{path}: tensor {tensor.name!r} needs external data file {location!r}, "
                f"which is missing (keep it beside the model)"
            )
    try:
        onnx.external_data_helper.load_external_data_for_model(model, str(folder))
    except Exception as exc:
        raise ModelFileError(f"{path}: external data could not be read ({exc})") from None
    return model


def _strings(model: onnx.ModelProto):
    """Every name and string attribute of the model, by where it is."""
    g = model.graph
    yield "graph name", [g.name]
    yield "tensor name", [t.name for t in g.initializer] + [v.name for v in g.input] + \
        [v.name for v in g.output] + [v.name for v in g.value_info]
    for n in g.node:
        yield "node name", [n.name, n.op_type, n.domain]
        yield "tensor name", list(n.input) + list(n.output)
        yield "attribute", [a.name for a in n.attribute]
    yield "opset domain", [o.domain for o in model.opset_import]


def _name(node: onnx.NodeProto) -> str:
    return node.name or f"{node.op_type}->{node.output[0] if node.output else '?'}"


def validate_model(model: onnx.ModelProto, source: str) -> dict[str, np.ndarray]:
    """Check ``model`` as a whole; returns its initializers decoded (by name)."""
    checked = onnx.ModelProto()
    checked.CopyFrom(model)
    declared = {o.domain for o in checked.opset_import}
    for domain in sorted({n.domain for n in checked.graph.node} & QUANT_DOMAINS - declared):
        checked.opset_import.append(helper.make_opsetid(domain, 1))  # old files omit them
    try:
        onnx.checker.check_model(checked, full_check=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelFileError(f"{source}: not a valid ONNX model ({first})") from None
    graph = model.graph
    for where, names in _strings(model):
        for name in names:
            if not isinstance(name, str):  # protobuf hands back bytes it cannot decode
                raise ModelFileError(f"{source}: a {where} is not valid UTF-8 ({name[:40]!r})")
    consts = {}
    for init in graph.initializer:
        try:
            value = numpy_helper.to_array(init)
        except Exception as exc:
            raise ModelFileError(f"{source}: initializer {init.name!r} does not decode "
                                 f"({type(exc).__name__}: {str(exc)[:80]})") from None
        if value.dtype.kind == "f" and np.isnan(value).any():
            raise ModelFileError(f"{source}: initializer {init.name!r} holds NaN")
        consts[init.name] = value
    producers: dict[str, str] = {name: "an initializer" for name in consts}
    for i in graph.input:
        producers.setdefault(i.name, "the graph input")
    for node in graph.node:
        for out in node.output:
            if not out:
                continue
            if out in producers:
                raise ModelFileError(f"{source}: node {_name(node)!r} writes tensor {out!r}, "
                                     f"which {producers[out]} already writes")
            producers[out] = f"node {_name(node)!r}"
    if len(graph.output) != 1:
        raise UnsupportedError(f"graph {graph.name!r}: expected one output, found "
                               f"{len(graph.output)}")
    needed = {graph.output[0].name}
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            needed.update(i for i in node.input if i)
    for node in graph.node:
        if not any(o in needed for o in node.output):
            raise UnsupportedError(
                f"node {_name(node)!r} does not contribute to the graph output "
                f"{graph.output[0].name!r}; lowbit reads a chain that ends in the output (is "
                f"the output the last tensor?)")
    for i in graph.input:
        if i.name in consts:
            continue
        dims = [d.dim_value for d in i.type.tensor_type.shape.dim[1:]]
        if any(d > MAX_INPUT_ELEMENTS for d in dims) or \
                int(np.prod([max(d, 1) for d in dims], dtype=object)) > MAX_INPUT_ELEMENTS:
            raise UnsupportedError(f"input {i.name!r}: shape {dims} holds more than "
                                   f"{MAX_INPUT_ELEMENTS:,} elements per sample")
    return consts
