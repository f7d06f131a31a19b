"""lowbit.from_torch: a Brevitas or plain torch module through the same importer as its file."""

from __future__ import annotations

import numpy as np
import pytest
from brevitas_models import (
    brevitas_binary_mlp,
    export_brevitas,
    export_plain,
    sign_ste_mlp,
)

import lowbit

pytest.importorskip("brevitas")


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_a_brevitas_module_imports_as_its_exported_file_does(tmp_path, dynamo):
    import torch

    module, shape = brevitas_binary_mlp((64, 32, 10), seed=2)
    net = lowbit.from_torch(module, torch.rand(1, *shape), dynamo=dynamo)
    file_net = lowbit.load(export_brevitas(module, shape, tmp_path / "m.onnx", dynamo))
    x = np.random.default_rng(0).random((30, *shape), dtype=np.float32)
    np.testing.assert_array_equal(lowbit.run(net, x), lowbit.run(file_net, x))
    for a, b in zip(net.layers, file_net.layers):
        np.testing.assert_array_equal(a.weights, b.weights)


def test_a_plain_torch_module_imports_as_its_exported_file_does(tmp_path):
    import torch

    module = sign_ste_mlp((20, 12, 5), seed=3)
    net = lowbit.from_torch(module, torch.randn(1, 20), path=tmp_path / "kept.onnx")
    assert (tmp_path / "kept.onnx").is_file()
    file_net = lowbit.load(export_plain(module, 20, tmp_path / "plain.onnx"))
    x = np.random.default_rng(1).normal(size=(25, 20)).astype(np.float32)
    np.testing.assert_array_equal(lowbit.run(net, x), lowbit.run(file_net, x))
