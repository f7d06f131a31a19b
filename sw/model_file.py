"""Reading an ONNX file: the protobuf, and external data from the model's own folder only."""

from __future__ import annotations

import os
from pathlib import Path

import onnx

from lowbit.errors import ModelFileError

__all__ = ["load_model"]


def load_model(path: str | os.PathLike) -> onnx.ModelProto:
    """Read an ONNX file, with external data from its own folder only."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
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


