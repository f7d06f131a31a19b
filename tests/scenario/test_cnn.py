"""Convolutional networks: Brevitas CNNs (padding, stride, pooling, CNV) against qonnx, the RTL
against the reference, measured cycles against lowbit.sim.perf, and clear refusals."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import onnx
import pytest
from brevitas_models import brevitas_binary_cnn, brevitas_cnv, export_brevitas
from helpers import run_rtl
from lowbit.hw.plan import Folding, LayerFolding
from lowbit.sim.auto import auto_folding
from lowbit.sw import reference
from lowbit.sw.onnx_import import import_model
from oracles import assert_equal_to_oracle, qonnx_run

# name → (input shape, convs (out_ch, kernel, pad, pool[, stride]), dense sizes, options)
NETS = {
    # binary, zero padding (a third value in the bipolar domain), max pooling (OR)
    "padded": ((2, 10, 10), [(8, 3, 1, 2), (8, 3, 1, 0)], [16, 10], {}),
    # 2-bit activations (max pooling of levels), a non-square kernel at stride 2, padding on
    # unsigned levels
    "multibit": ((2, 11, 9), [(6, 3, 1, 2), (8, (3, 2), 1, 0, 2), (8, 2, 0, 0)], [12, 10],
                 {"act_bits": 2}),
    # a global average pool (GlobalAveragePool / ReduceMean) over a 4 x 4 map of 2-bit levels,
    # folded into the dense layer after it
    "global-pool": ((2, 8, 8), [(8, 3, 1, 2), (16, 3, 1, 0)], [10],
                    {"act_bits": 2, "global_pool": True}),
    # CNV in small: 8-bit Q1.7 input on binary weights, no padding, two pools, three dense layers
    "cnv-small": ((3, 16, 16), [(16, 3, 0, 0), (16, 3, 0, 2), (32, 3, 0, 0), (32, 3, 0, 2)],
                  [64, 64, 10], {"in_bits": 8}),
}


def _tensors(net):
    names = [layer.activation.tensor for layer in net.layers if layer.activation is not None]
    return names + [layer.pool.tensor for layer in net.layers if layer.pool is not None]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cnn")
    cache = {}

    def get(name: str, dynamo: bool = False):
        if (name, dynamo) not in cache:
            shape, convs, fcs, options = NETS[name]
            module, shape = brevitas_binary_cnn(shape, convs, fcs, **options)
            cache[name, dynamo] = export_brevitas(module, shape, folder / f"{name}-{dynamo}.onnx",
                                                  dynamo)
        return cache[name, dynamo]

    return get


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
@pytest.mark.parametrize("name", NETS)
def test_reference_equals_qonnx_on_brevitas_cnn(exported, name, dynamo):
    path = exported(name, dynamo)
    net = import_model(path)
    assert any(layer.window is not None for layer in net.layers)
    x = np.random.default_rng(4).random((24, *net.input_shape), dtype=np.float32)
    y, inter = reference.run(net, x, intermediates=True)
    y_q, tensors_q = qonnx_run(path, x, _tensors(net))
    assert_equal_to_oracle(net, y, inter, y_q, tensors_q)


def test_padding_contributes_zero_not_minus_one(exported):
    net = import_model(exported("padded"))
    first = net.layers[0]
    assert first.window.pads == (1, 1, 1, 1) and first.in_values.levels == (-1, 0, 1)
    assert first.window.in_map == (0, 2) and first.window.pad_index == 1
    # a map of all +1: an edge window sees fewer +1s than a centre one
    x = np.ones((1, *net.input_shape), dtype=np.float32)
    _, inter = reference.run(net, x, intermediates=True)
    acc = inter[f"{first.name}:acc"].reshape(10, 10, -1)
    w = first.weights.astype(np.int64).reshape(len(first.weights), 3, 3, 2)
    assert (acc[0, 0] == w[:, 1:, 1:].sum(axis=(1, 2, 3))).all()
    assert (acc[5, 5] == w.sum(axis=(1, 2, 3))).all()


def test_cnv_topology_equals_qonnx_on_100_inputs(tmp_path):
    module, shape = brevitas_cnv()
    path = export_brevitas(module, shape, tmp_path / "cnv.onnx", dynamo=False)
    net = import_model(path)
    assert [layer.positions for layer in net.layers] == [900, 784, 144, 100, 9, 1, 1, 1, 1]
    assert [layer.pool is not None for layer in net.layers[:6]] == [False, True] * 2 + [False] * 2
    x = np.random.default_rng(5).random((100, *shape), dtype=np.float32)
    y, inter = reference.run(net, x, intermediates=True)
    y_q, tensors_q = qonnx_run(path, x, _tensors(net))
    assert_equal_to_oracle(net, y, inter, y_q, tensors_q)


def _folding(net, pairs):
    return Folding(tuple(LayerFolding(layer.name, pe, simd)
                         for layer, (pe, simd) in zip(net.layers, pairs)))


RTL_FOLDINGS = {
    "padded": [[(1, 1)] * 4, [(2, 9), (1, 18), (1, 4), (1, 1)], [(8, 18), (4, 72), (16, 200),
                                                                  (10, 16)]],
    "multibit": [[(3, 9), (4, 6), (8, 32), (12, 32), (10, 12)], [(2, 3), (2, 6), (1, 4),
                                                                  (3, 2), (5, 3)]],
    "global-pool": [[(2, 6), (4, 8), (5, 16)]],
    "cnv-small": [[(4, 9), (1, 48), (1, 9), (1, 4), (1, 1), (1, 1), (1, 1)], "auto"],
}


@pytest.mark.parametrize("name", RTL_FOLDINGS)
def test_rtl_equals_reference_and_cycles_equal_model(exported, name):
    net = import_model(exported(name))
    x = np.random.default_rng(6).random((10, *net.input_shape), dtype=np.float32)
    expected = reference.run(net, x)
    for pairs in RTL_FOLDINGS[name]:
        folding = auto_folding(net, lut_budget=8000) if pairs == "auto" else _folding(net, pairs)
        # line buffers (the default), and for the first folding also whole-frame buffers
        frames = [False] if pairs is RTL_FOLDINGS[name][0] and name != "global-pool" else []
        for line in [True] + frames:
            folding = dataclasses.replace(folding, line_buffers=line)
            y, _, result, perf = run_rtl(net, folding, x)
            assert all(lp.line_buffer == line for lp in perf.layers if lp.positions > 1)
            np.testing.assert_array_equal(y, expected)
            assert result.latency_cycles(perf.in_beats, perf.out_beats) == perf.latency_cycles
            assert result.ii_cycles(perf.out_beats) == perf.ii_cycles


@pytest.mark.parametrize("name", ["padded", "multibit"])
def test_random_stalls_lose_and_duplicate_nothing(exported, name):
    net = import_model(exported(name))
    x = np.random.default_rng(8).random((12, *net.input_shape), dtype=np.float32)
    folding = _folding(net, RTL_FOLDINGS[name][1])
    for seed, (p_in, p_out) in enumerate([(0.5, 0.0), (0.0, 0.7), (0.4, 0.6)]):
        y, _, result, perf = run_rtl(net, folding, x, stall_in=p_in, stall_out=p_out, seed=seed)
        assert len(result.out_cycles) == len(x) * perf.out_beats
        np.testing.assert_array_equal(y, reference.run(net, x))


def _edited(path, tmp_path, edit) -> str:
    model = onnx.load(str(path))
    edit(model)
    out = tmp_path / "edited.onnx"
    onnx.save(model, str(out))
    return str(out)


def _node(model, op):
    return next(n for n in model.graph.node if n.op_type == op)


def _set(node, name, value):
    for a in node.attribute:
        if a.name == name:
            node.attribute.remove(a)
            break
    node.attribute.append(onnx.helper.make_attribute(name, value))


REFUSALS = {
    "overlapping pool": (lambda m: _set(_node(m, "MaxPool"), "strides", [1, 1]),
                         "only square k x k pooling at stride k"),
    "dilated conv": (lambda m: _set(_node(m, "Conv"), "dilations", [2, 2]), "dilated Conv"),
    "same padding": (lambda m: _set(_node(m, "Conv"), "auto_pad", "SAME_UPPER"),
                     "auto_pad=SAME_UPPER"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_unsupported_convolutions_get_one_line_and_exit_2(exported, tmp_path, case):
    edit, words = REFUSALS[case]
    path = _edited(exported("padded"), tmp_path, edit)
    proc = subprocess.run([sys.executable, "-m", "lowbit", "inspect", path],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "node" in lines[0], proc.stderr


@pytest.mark.slow
def test_full_cnv_rtl_equals_reference_on_10_frames(tmp_path):
    module, shape = brevitas_cnv()
    net = import_model(export_brevitas(module, shape, tmp_path / "cnv.onnx", dynamo=False))
    folding = auto_folding(net, lut_budget=20000)
    x = np.random.default_rng(9).random((10, *shape), dtype=np.float32)
    y, _, result, perf = run_rtl(net, folding, x)
    np.testing.assert_array_equal(y, reference.run(net, x))
    assert result.latency_cycles(perf.in_beats, perf.out_beats) == perf.latency_cycles
    assert result.ii_cycles(perf.out_beats) == perf.ii_cycles


def _plain_conv_net(path):
    """Plain ONNX (no QONNX ops): Sign on the input (ternary), a Conv with ±1 weights, stride
    (2, 1) and asymmetric pads (top 0, left 1, bottom 2, right 0), a per-channel bias, Sign, a
    3x2 stride-1 Conv, Sign, Flatten and a MatMul."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(11)
    w1 = rng.choice([-1.0, 1.0], size=(4, 2, 3, 3)).astype(np.float32)
    b1 = (rng.integers(-3, 4, size=4) + 0.5).astype(np.float32)  # never an exact 0
    w2 = rng.choice([-1.0, 1.0], size=(3, 4, 3, 2)).astype(np.float32)
    w3 = rng.choice([-1.0, 1.0], size=(3 * 2 * 3, 5)).astype(np.float32)
    nodes = [
        helper.make_node("Sign", ["x"], ["s0"]),
        helper.make_node("Conv", ["s0", "w1", "b1"], ["c1"], strides=[2, 1], pads=[0, 1, 2, 0]),
        helper.make_node("Sign", ["c1"], ["s1"]),
        helper.make_node("Conv", ["s1", "w2"], ["c2"]),
        helper.make_node("Sign", ["c2"], ["s2"]),
        helper.make_node("Flatten", ["s2"], ["f"]),
        helper.make_node("MatMul", ["f", "w3"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "plain_conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2, 7, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 5])],
        initializer=[numpy_helper.from_array(v, n) for n, v in
                     (("w1", w1), ("b1", b1), ("w2", w2), ("w3", w3))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_plain_onnx_conv_with_asymmetric_pads_and_stride_equals_onnxruntime(tmp_path):
    from oracles import onnxruntime_run

    path = _plain_conv_net(tmp_path / "plain_conv.onnx")
    net = import_model(path)
    first = net.layers[0].window
    assert (first.stride, first.pads) == ((2, 1), (0, 1, 2, 0))
    assert (first.out_height, first.out_width) == (4, 4)
    x = np.random.default_rng(12).normal(size=(40, 2, 7, 5)).astype(np.float32)
    x[::4, 0] = 0.0  # Sign(0) = 0: ternary input values
    y = reference.run(net, x)
    np.testing.assert_array_equal(y, onnxruntime_run(path, x))
    folding = _folding(net, [(2, 6), (3, 4), (5, 6)])
    y_rtl, _, result, perf = run_rtl(net, folding, x[:10])
    np.testing.assert_array_equal(y_rtl, y[:10])
    assert result.latency_cycles(perf.in_beats, perf.out_beats) == perf.latency_cycles
    assert result.ii_cycles(perf.out_beats) == perf.ii_cycles


def _plain_graph(path, nodes, out_shape, inits):
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes, "plain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        initializer=[numpy_helper.from_array(v, n) for n, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def _plain_refusals():
    from onnx import helper

    w = np.ones((4, 2, 3, 3), dtype=np.float32)
    fc = np.ones((4, 5), dtype=np.float32)
    sign = helper.make_node("Sign", ["x"], ["s"])
    conv = helper.make_node("Conv", ["s", "w"], ["c"])
    return {
        # a pool on the accumulator, before the quantizer
        "pool before the quantizer": ([
            sign, conv, helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2],
                                         strides=[2, 2]),
            helper.make_node("Sign", ["p"], ["q"]), helper.make_node("Flatten", ["q"], ["f"]),
            helper.make_node("MatMul", ["f", "fc"], ["y"])],
            [None, 5], {"w": w, "fc": np.ones((16, 5), dtype=np.float32)},
            "MaxPool before the quantizer"),
        # the network's output is a convolution's map
        "ends in a convolution": ([sign, helper.make_node("Conv", ["s", "w"], ["y"])],
                                  [None, 4, 4, 4], {"w": w}, "ends in convolution"),
        # a quantizer right after a global average pool
        "quantized global average": ([
            sign, conv, helper.make_node("Sign", ["c"], ["q"]),
            helper.make_node("GlobalAveragePool", ["q"], ["g"]),
            helper.make_node("Sign", ["g"], ["g2"]), helper.make_node("Flatten", ["g2"], ["f"]),
            helper.make_node("MatMul", ["f", "fc"], ["y"])],
            [None, 5], {"w": w, "fc": fc}, "right after a global average pool"),
    }


@pytest.mark.parametrize("case", list(_plain_refusals()))
def test_unsupported_placements_get_one_line_and_exit_2(tmp_path, case):
    nodes, out_shape, inits, words = _plain_refusals()[case]
    path = _plain_graph(tmp_path / "m.onnx", nodes, out_shape, inits)
    proc = subprocess.run([sys.executable, "-m", "lowbit", "inspect", path],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], proc.stderr


def test_operand_register_on_a_non_xnor_layer_is_refused(exported, tmp_path):
    import json

    net = import_model(exported("padded"))  # layer 0 runs add/subtract (padded ternary inputs)
    folding = tmp_path / "f.json"
    folding.write_text(json.dumps({"layers": [
        {"pe": 1, "simd": 1, "operand_register": k == 0} for k in range(len(net.layers))]}))
    proc = subprocess.run([sys.executable, "-m", "lowbit", "compile", str(exported("padded")),
                           "-o", str(tmp_path / "out"), "--folding", str(folding)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "operand_register" in proc.stderr and net.layers[0].name in proc.stderr
    assert not (tmp_path / "out").exists()


def test_cnv_with_default_options_gets_a_folding_that_builds(tmp_path):
    """No device and no budget named: CNV_1W1A (over 5,000 LUT4 even fully folded) is not
    refused; it gets the smallest design, and a named budget still refuses it."""
    from lowbit.hw.plan import Folding as Uniform
    from lowbit.sim.perf import analyze

    import lowbit
    from lowbit.errors import FoldingError

    module, shape = brevitas_cnv()
    net = import_model(export_brevitas(module, shape, tmp_path / "cnv.onnx", dynamo=False))
    folded = analyze(net, Uniform.uniform(net))
    assert folded.estimated_luts > 5000
    design = lowbit.compile(net)
    assert design.perf.estimated_luts == folded.estimated_luts
    with pytest.raises(FoldingError, match="over the budget of 5,000"):
        lowbit.compile(net, lut_budget=5000)
