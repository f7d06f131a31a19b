"""lowbit.sw.model_file: files that are not models are refused; external data stays beside."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from lowbit.sw.model_file import load_model
from lowbit.sw.synthetic import binary_mlp

from lowbit.errors import ModelFileError


def test_missing_and_garbage_files_are_refused(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load_model(tmp_path / "none.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x00\x01 not a protobuf" * 7)
    with pytest.raises(ModelFileError, match="not"):
        load_model(tmp_path / "junk.onnx")


def test_external_data_is_read_from_the_models_folder_only(tmp_path):
    model = binary_mlp((16, 8, 4))
    want = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    inner = tmp_path / "m"
    inner.mkdir()
    onnx.save(model, inner / "m.onnx", save_as_external_data=True, location="m.onnx.data",
              size_threshold=0)
    loaded = load_model(inner / "m.onnx")
    for t in loaded.graph.initializer:
        np.testing.assert_array_equal(onnx.numpy_helper.to_array(t), want[t.name])
    (inner / "m.onnx.data").unlink()
    with pytest.raises(ModelFileError, match="missing"):
        load_model(inner / "m.onnx")
    evil = onnx.load(inner / "m.onnx", load_external_data=False)
    for t in evil.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = "../secret.bin"
    (inner / "evil.onnx").write_bytes(evil.SerializeToString())
    with pytest.raises(ModelFileError, match="outside the model's folder"):
        load_model(inner / "evil.onnx")
