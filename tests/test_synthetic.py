"""QONNX graphs built with onnx.helper (no torch): reference == qonnx, thresholds exact."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lowbit.sw import reference
from lowbit.sw.onnx_import import import_model
from lowbit.sw.synthetic import binary_mlp
from oracles import assert_equal_to_oracle, qonnx_run


@settings(max_examples=12, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 140), min_size=2, max_size=4).map(tuple),
    seed=st.integers(0, 2**16),
)
def test_reference_equals_qonnx_on_random_binary_mlps(tmp_path_factory, sizes, seed):
    path = tmp_path_factory.mktemp("mlp") / "m.onnx"
    onnx.save(binary_mlp(sizes, seed=seed), path)
    net = import_model(path)
    x = np.random.default_rng(seed).random((20, sizes[0]), dtype=np.float32)
    y, inter = reference.run(net, x, intermediates=True)
    hidden = [layer.activation.tensor for layer in net.layers[:-1]]
    y_q, tensors_q = qonnx_run(path, x, hidden)
    assert_equal_to_oracle(net, y, inter, y_q, tensors_q)


def test_thresholds_reproduce_the_float_batchnorm_at_every_accumulator():
    """Independent of the importer's derivation: recompute BN + sign in numpy float32."""
    model = binary_mlp((50, 40, 5), seed=7)
    net = import_model(model)
    layer = net.layers[0]
    init = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    g, b, m, v = (init[f"bn0_{p}"] for p in ("gamma", "beta", "mean", "var"))
    acc = np.arange(-50, 51, 2, dtype=np.float32)[:, None]
    expected = ((acc - m) / np.sqrt(v + np.float32(1e-5)) * g + b) >= 0
    act = layer.activation
    got = (acc.astype(np.int64) * act.direction >= act.thresholds[:, 0]).astype(bool)
    # numpy's float32 formula may round differently from onnxruntime's BN kernel only exactly
    # at a boundary; random statistics put no accumulator there.
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("batch", [1, 5000])
def test_reference_batches_are_independent(batch):
    net = import_model(binary_mlp((64, 32, 10), seed=9))
    x = np.random.default_rng(0).random((batch, 64), dtype=np.float32)
    whole = reference.run(net, x)
    one_by_one = np.concatenate([reference.run(net, x[i : i + 1], threads=1)
                                 for i in range(0, batch, max(1, batch // 7))])
    np.testing.assert_array_equal(whole[:: max(1, batch // 7)], one_by_one)
