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


def _pow2_quant_mlp(seed: int, rounding: str = "ROUND") -> onnx.ModelProto:
    """Quant(4-bit) → MatMul with weights in {0, ±s·2^e} → BatchNormalization → Relu →
    unsigned 4-bit Quant → MatMul, built with onnx.helper."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    q = "qonnx.custom_op.general"
    exps = rng.integers(-3, 1, (20, 12)).astype(np.float32)
    w0 = (rng.choice([-1, 0, 1], (20, 12)) * np.exp2(exps) * 0.5).astype(np.float32)
    w1 = rng.choice([-2.0, -1.0, 0.0, 1.0, 2.0, 4.0], (12, 5)).astype(np.float32) * 0.25
    inits = {
        "s_in": np.float32(0.125), "z": np.float32(0), "b4": np.float32(4),
        "w0": w0, "w1": w1, "s_a": np.float32(0.25),
        "g": rng.uniform(-1.5, 1.5, 12).astype(np.float32),
        "b": rng.normal(0, 0.5, 12).astype(np.float32),
        "m": rng.normal(0, 1, 12).astype(np.float32),
        "v": rng.uniform(0.5, 2, 12).astype(np.float32),
    }
    nodes = [
        helper.make_node("Quant", ["x", "s_in", "z", "b4"], ["xq"], domain=q, signed=1,
                         narrow=0, rounding_mode=rounding, name="quant_in"),
        helper.make_node("MatMul", ["xq", "w0"], ["acc0"], name="fc0"),
        helper.make_node("BatchNormalization", ["acc0", "g", "b", "m", "v"], ["bn"],
                         epsilon=1e-5, name="bn0"),
        helper.make_node("Relu", ["bn"], ["r"], name="relu0"),
        helper.make_node("Quant", ["r", "s_a", "z", "b4"], ["a1"], domain=q, signed=0,
                         narrow=0, rounding_mode=rounding, name="quant_a1"),
        helper.make_node("MatMul", ["a1", "w1"], ["y"], name="fc1"),
    ]
    graph = helper.make_graph(
        nodes, "pow2", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 20])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid(q, 1)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("rounding", ["ROUND", "FLOOR", "HALF_UP"])
def test_quant_pow2_batchnorm_relu_graph_equals_qonnx(tmp_path, rounding):
    from lowbit.sw.ir import WeightKind

    path = tmp_path / "p.onnx"
    onnx.save(_pow2_quant_mlp(3, rounding), path)
    net = import_model(path)
    assert net.layers[0].weight_kind is WeightKind.POW2
    assert net.layers[0].activation.levels == 15
    # inputs on and between the 4-bit grid points, ties included (ROUND is half to even)
    x = np.random.default_rng(4).integers(-20, 20, (300, 20)).astype(np.float32) / 16
    y, inter = reference.run(net, x, intermediates=True)
    y_q, tensors_q = qonnx_run(path, x, ["a1"])
    assert_equal_to_oracle(net, y, inter, y_q, tensors_q)
