"""The multi-bit engines: reference == qonnx on synthetic QONNX graphs of every weight kind, and
RTL (Verilator) == reference with measured cycles == lowbit.sim.perf, zero-skip schedules
included, over random networks and foldings."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from helpers import run_rtl
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from lowbit.hw.plan import Folding, LayerFolding, divisors
from lowbit.sim.perf import analyze
from lowbit.sw import reference
from lowbit.sw.ir import WeightKind
from lowbit.sw.onnx_import import import_model
from lowbit.sw.synthetic import quant_mlp
from oracles import assert_equal_to_oracle, qonnx_run

KINDS = {"binary": WeightKind.BINARY, "ternary": WeightKind.TERNARY, "ttq": WeightKind.TERNARY,
         "pow2": WeightKind.POW2, "int4": WeightKind.INT,
         "int2": WeightKind.POW2, "int3": WeightKind.INT,  # int2: −2, −1, 0, 1 are powers of two
         "abc3": WeightKind.INT}
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)
# each example is a Verilator build: two per case, the same two on every run
TWO_EXAMPLES = settings(max_examples=2, deadline=None, derandomize=True, phases=NO_SHRINK,
                        suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("act_bits,act_signed,in_bits", [(2, False, 1), (3, True, 4),
                                                         (1, False, 8)])
@pytest.mark.parametrize("weights", list(KINDS))
def test_reference_equals_qonnx_for_every_weight_kind(tmp_path, weights, act_bits, act_signed,
                                                      in_bits):
    path = tmp_path / "m.onnx"
    onnx.save(quant_mlp((30, 20, 12, 6), weights=weights, act_bits=act_bits,
                        act_signed=act_signed, in_bits=in_bits, seed=in_bits), path)
    net = import_model(path)
    assert {layer.weight_kind for layer in net.layers} == {KINDS[weights]}
    x = np.random.default_rng(act_bits).random((40, 30), dtype=np.float32)
    y, inter = reference.run(net, x, intermediates=True)
    hidden = [layer.activation.tensor for layer in net.layers[:-1]]
    for t in hidden:  # the comparison means something only if the activations vary
        assert len(np.unique(inter[t])) > 1, t
    y_q, tensors_q = qonnx_run(path, x, hidden)
    assert_equal_to_oracle(net, y, inter, y_q, tensors_q)


def _inputs(net, seed: int, frames: int) -> np.ndarray:
    return np.random.default_rng(seed).random((frames, net.layers[0].in_features),
                                              dtype=np.float32)


def _check_rtl(net, folding, x, **stalls):
    y, _, result, perf = run_rtl(net, folding, x, **stalls)
    np.testing.assert_array_equal(y, reference.run(net, x))
    assert len(result.out_cycles) == len(x) * perf.out_beats
    if not stalls:  # the model states cycles with the input offered and the output ready
        assert result.latency_cycles(perf.in_beats, perf.out_beats) == perf.latency_cycles
        assert result.ii_cycles(perf.out_beats) == perf.ii_cycles
    return perf


@st.composite
def networks(draw, weights):
    sizes = tuple(draw(st.lists(st.sampled_from([4, 6, 8, 9, 12, 16]), min_size=3, max_size=4)))
    act_bits = draw(st.sampled_from([1, 2, 3]))
    in_bits = draw(st.sampled_from([1, 2, 8]))
    # zeros, so that ternary and power-of-two layers never degenerate to binary ones
    sparsity = draw(st.sampled_from([0.0] if weights == "binary" else [0.3, 0.6, 0.85]))
    seed = draw(st.integers(0, 2**16))
    model = quant_mlp(sizes, weights=weights, act_bits=act_bits, in_bits=in_bits,
                      act_signed=draw(st.booleans()), sparsity=sparsity, seed=seed)
    net = import_model(model)
    layers = []
    for layer in net.layers:
        pe = draw(st.sampled_from(divisors(layer.out_features)))
        simd = draw(st.sampled_from(divisors(layer.in_features)))
        layers.append(LayerFolding(layer.name, pe, simd, draw(st.sampled_from([None, 0, 1])),
                                   draw(st.sampled_from([None, False]))))
    return net, Folding(tuple(layers), label_select=False), seed


# a small random layer may hold fewer distinct weights than its kind allows (a power-of-two
# layer with one magnitude is ternary): the engines a network of each kind may use
ALLOWED = {"binary": {"xnor", "addsub"}, "ternary": {"ternary"}, "ttq": {"ternary"},
           "pow2": {"shift", "ternary"}, "int4": {"multiply", "shift", "ternary"}}
MAIN = {"binary": "addsub", "ternary": "ternary", "ttq": "ternary", "pow2": "shift",
        "int4": "multiply"}


@pytest.mark.parametrize("weights", list(ALLOWED))
def test_rtl_equals_reference_and_cycles_equal_model_on_random_networks(weights):
    seen = set()

    @TWO_EXAMPLES
    @given(networks(weights))
    def check(case):
        net, folding, seed = case
        perf = _check_rtl(net, folding, _inputs(net, seed, 8))
        engines = {lp.engine for lp in perf.layers}
        assert engines <= ALLOWED[weights]
        seen.update(engines)

    check()
    assert MAIN[weights] in seen


def test_zero_skip_cuts_cycles_exactly_and_survives_stalls():
    net = import_model(quant_mlp((32, 16, 8), weights="ternary", act_bits=2, sparsity=0.7,
                                 seed=5))
    x = np.random.default_rng(1).random((12, 32), dtype=np.float32)
    pairs = [(2, 4), (1, 2)]
    dense = Folding(tuple(LayerFolding(layer.name, pe, simd, zero_skip=False)
                          for layer, (pe, simd) in zip(net.layers, pairs)))
    skip = Folding(tuple(LayerFolding(layer.name, pe, simd)
                         for layer, (pe, simd) in zip(net.layers, pairs)))
    p_dense, p_skip = _check_rtl(net, dense, x), _check_rtl(net, skip, x)
    assert [lp.schedule_steps for lp in p_dense.layers] == [lp.dense_steps
                                                              for lp in p_dense.layers]
    assert p_skip.layers[0].schedule_steps < p_dense.layers[0].schedule_steps
    assert p_skip.ii_cycles < p_dense.ii_cycles
    _check_rtl(net, skip, x, stall_in=0.4, stall_out=0.6, seed=2)


def test_the_report_says_how_much_was_skipped():
    net = import_model(quant_mlp((32, 16, 8), weights="ternary", sparsity=0.7, seed=5))
    perf = analyze(net, Folding(tuple(LayerFolding(layer.name, 1, 2) for layer in net.layers)))
    first = perf.layers[0]
    assert 0.6 < first.zero_weights < 0.8
    assert first.schedule_steps < first.dense_steps


@st.composite
def bit_plane_networks(draw, weights):
    """A random network whose every layer runs on the bit-plane engine, at a random number of
    input planes per cycle (a divisor of its input bits: bit-serial up to all at once)."""
    net, folding, seed = draw(networks(weights))
    layers = tuple(LayerFolding(f.name, f.pe, f.simd, f.tree_stages,
                                planes_per_cycle=draw(st.sampled_from(
                                    divisors(layer.in_values.bits))))
                   for layer, f in zip(net.layers, folding.layers))
    return net, Folding(layers, label_select=False), seed


@pytest.mark.parametrize("weights", ["binary", "int4", "ternary", "abc3"])
def test_the_bit_plane_engine_equals_the_reference_at_any_planes_per_cycle(weights):
    @TWO_EXAMPLES
    @given(bit_plane_networks(weights))
    def check(case):
        net, folding, seed = case
        perf = _check_rtl(net, folding, _inputs(net, seed, 6))
        for lp, f, layer in zip(perf.layers, folding.layers, net.layers):
            assert lp.engine == "bitplane"
            passes = layer.in_values.bits // f.planes_per_cycle
            assert lp.compute_cycles == lp.neuron_fold * lp.synapse_fold * passes

    check()


def test_a_bit_serial_first_layer_survives_stalls():
    # BinaryNet's first layer: binary weights on 8-bit inputs, one input plane per cycle
    net = import_model(quant_mlp((16, 12, 6), weights="binary", act_bits=2, in_bits=8, seed=9))
    x = np.random.default_rng(3).random((6, 16), dtype=np.float32)
    pairs = [(3, 4), (2, 6)]
    folding = Folding(tuple(LayerFolding(layer.name, pe, simd, planes_per_cycle=1)
                            for layer, (pe, simd) in zip(net.layers, pairs)))
    perf = _check_rtl(net, folding, x)
    assert perf.layers[0].compute_cycles == 4 * 4 * 8
    _check_rtl(net, folding, x, stall_in=0.4, stall_out=0.6, seed=2)
