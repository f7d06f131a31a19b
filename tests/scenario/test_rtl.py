"""Verilator RTL == reference, and measured cycles == lowbit.sim.perf, over foldings and stalls."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run_rtl
from lowbit.hw.plan import Folding, LayerFolding, validate_folding
from lowbit.sim.auto import auto_folding
from lowbit.sim.perf import analyze
from lowbit.sw import reference
from lowbit.sw.onnx_import import import_model
from lowbit.sw.synthetic import binary_mlp

from lowbit.errors import FoldingError

SIZES = (24, 12, 8, 6)


@pytest.fixture(scope="module")
def net():
    return import_model(binary_mlp(SIZES, seed=3))


def _folding(net, pairs, label_select=False, stages=None):
    return Folding(tuple(LayerFolding(layer.name, pe, simd, stages)
                         for layer, (pe, simd) in zip(net.layers, pairs)), label_select)


GRID = {
    "fully-folded": [(1, 1), (1, 1), (1, 1)],
    "fully-unrolled": [(12, 24), (8, 12), (6, 8)],
    "mixed-a": [(3, 4), (2, 6), (6, 4)],
    "mixed-b": [(2, 1), (2, 12), (3, 1)],
    "mixed-c": [(12, 3), (1, 4), (2, 2)],
}


@pytest.mark.parametrize("name", GRID)
def test_rtl_equals_reference_and_cycles_equal_model(net, name):
    x = np.random.default_rng(7).random((10, SIZES[0]), dtype=np.float32)
    folding = _folding(net, GRID[name])
    y, accs, result, perf = run_rtl(net, folding, x)
    np.testing.assert_array_equal(y, reference.run(net, x))
    assert result.latency_cycles(perf.in_beats, perf.out_beats) == perf.latency_cycles
    assert result.ii_cycles(perf.out_beats) == perf.ii_cycles


def test_ecp5_popcount_structure_changes_no_result_and_no_cycle(net):
    x = np.random.default_rng(12).random((8, SIZES[0]), dtype=np.float32)
    folding = _folding(net, GRID["mixed-a"], stages=1)
    y, _, result, perf = run_rtl(net, folding, x, family="ecp5")
    np.testing.assert_array_equal(y, reference.run(net, x))
    assert result.latency_cycles(perf.in_beats, perf.out_beats) == perf.latency_cycles
    assert result.ii_cycles(perf.out_beats) == perf.ii_cycles


def test_popcount_pipeline_stages_are_in_the_model(net):
    x = np.random.default_rng(8).random((6, SIZES[0]), dtype=np.float32)
    for stages in (0, 2):
        folding = _folding(net, [(3, 24), (2, 12), (6, 8)], stages=stages)
        y, _, result, perf = run_rtl(net, folding, x)
        np.testing.assert_array_equal(y, reference.run(net, x))
        assert result.latency_cycles(perf.in_beats, perf.out_beats) == perf.latency_cycles


@pytest.mark.parametrize("name", ["mixed-a", "fully-unrolled"])
def test_random_backpressure_loses_duplicates_and_changes_no_frame(net, name):
    x = np.random.default_rng(9).random((40, SIZES[0]), dtype=np.float32)
    folding = _folding(net, GRID[name])
    for seed, (p_in, p_out) in enumerate([(0.5, 0.0), (0.0, 0.6), (0.4, 0.7)]):
        y, _, result, perf = run_rtl(net, folding, x, stall_in=p_in, stall_out=p_out, seed=seed)
        assert len(result.out_cycles) == len(x) * perf.out_beats
        np.testing.assert_array_equal(y, reference.run(net, x))


def test_cocotb_bench_agrees_with_the_cpp_harness_and_survives_stalls(net):
    """cocotb (one coroutine step per clock) is the verification bench; the C++ harness must
    see the same transfers cycle for cycle."""
    x = np.random.default_rng(10).random((6, SIZES[0]), dtype=np.float32)
    folding = _folding(net, GRID["mixed-a"])
    y_c, _, cocotb_result, perf = run_rtl(net, folding, x, bench="cocotb")
    y_p, _, cpp_result, _ = run_rtl(net, folding, x, bench="cpp")
    np.testing.assert_array_equal(y_c, reference.run(net, x))
    np.testing.assert_array_equal(cocotb_result.in_cycles, cpp_result.in_cycles)
    np.testing.assert_array_equal(cocotb_result.out_cycles, cpp_result.out_cycles)
    y_s, _, _, _ = run_rtl(net, folding, x, bench="cocotb", stall_in=0.4, stall_out=0.5, seed=3)
    np.testing.assert_array_equal(y_s, reference.run(net, x))


def test_label_select_returns_the_reference_argmax(net):
    x = np.random.default_rng(11).random((30, SIZES[0]), dtype=np.float32)
    folding = _folding(net, GRID["mixed-a"], label_select=True)
    _, index, result, perf = run_rtl(net, folding, x, stall_out=0.3)
    np.testing.assert_array_equal(index, reference.run(net, x).argmax(axis=1))


@pytest.mark.parametrize("pairs,message", [
    ([(5, 1), (1, 1), (1, 1)], r"pe=5 must divide its 12 output channels \(MH % PE == 0\)"),
    ([(1, 5), (1, 1), (1, 1)], r"simd=5 must divide its 24 inputs \(MW % SIMD == 0\); "
                               r"try one of \[1, 2, 3, 4, 6, 8, 12, 24\]"),
])
def test_fan_ins_and_outputs_that_do_not_divide_are_rejected(net, pairs, message):
    with pytest.raises(FoldingError, match=message):
        validate_folding(net, _folding(net, pairs))


def test_auto_folding_uses_more_parallelism_for_a_bigger_budget(net):
    from lowbit.sim.perf import analyze

    small = analyze(net, auto_folding(net, lut_budget=800))
    large = analyze(net, auto_folding(net, lut_budget=4000))
    assert large.ii_cycles < small.ii_cycles
    assert small.estimated_luts <= 800 and large.estimated_luts <= 4000
    with pytest.raises(FoldingError, match="even fully folded .* over the budget of 100"):
        auto_folding(net, lut_budget=100)
    fast = analyze(net, auto_folding(net, target_fps=50e6, clock_hz=100e6))
    assert fast.ii_cycles <= 2


@pytest.mark.slow
def test_tfc_1w1a_rtl_equals_reference_on_200_mnist_images(tfc_model, mnist_test):
    net = import_model(tfc_model("TFC_1W1A"))
    images, _ = mnist_test
    x = images[:200]
    folding = auto_folding(net, lut_budget=2000)
    y, _, result, perf = run_rtl(net, folding, x)
    np.testing.assert_array_equal(y, reference.run(net, x))
    assert result.latency_cycles(perf.in_beats, perf.out_beats) == perf.latency_cycles
    assert result.ii_cycles(perf.out_beats) == perf.ii_cycles


@pytest.mark.parametrize("name", ["mixed-a", "fully-folded"])
def test_operand_register_costs_one_cycle_per_layer_and_nothing_else(net, name):
    x = np.random.default_rng(13).random((8, SIZES[0]), dtype=np.float32)
    plain = _folding(net, GRID[name])
    registered = Folding(tuple(LayerFolding(f.name, f.pe, f.simd, operand_register=True)
                               for f in plain.layers))
    y, _, result, perf = run_rtl(net, registered, x, family="ecp5")
    np.testing.assert_array_equal(y, reference.run(net, x))
    assert result.latency_cycles(perf.in_beats, perf.out_beats) == perf.latency_cycles
    assert result.ii_cycles(perf.out_beats) == perf.ii_cycles
    before = analyze(net, plain)
    assert perf.latency_cycles == before.latency_cycles + len(net.layers)
    assert perf.ii_cycles == before.ii_cycles


def test_ecp5_auto_folding_registers_block_ram_operands_only(net):
    seen = set()
    for budget in (600, 1000):
        folding = auto_folding(net, lut_budget=budget, family="ecp5")
        perf = analyze(net, folding)
        for f, lp in zip(folding.layers, perf.layers):
            slow = "bram" in (lp.weight_storage, lp.input_storage)
            assert bool(f.operand_register) == slow
            seen.add(slow)
        assert not any(f.operand_register for f in auto_folding(net, lut_budget=budget).layers)
    assert seen == {True, False}


@pytest.mark.parametrize("model,pairs", [
    ("binary", [(1, 1), (2, 12), (3, 1)]),
    ("ternary", [(2, 2), (1, 4), (2, 1)]),
])
def test_weights_in_luts_change_no_output_and_no_cycle(model, pairs):
    from lowbit.sw.synthetic import quant_mlp

    if model == "binary":
        net = import_model(binary_mlp(SIZES, seed=3))
    else:
        net = import_model(quant_mlp((16, 8, 8, 4), weights="ternary", act_bits=2,
                                     sparsity=0.5, seed=4))
    x = np.random.default_rng(17).random((8, net.layers[0].in_features), dtype=np.float32)
    folding = Folding(tuple(LayerFolding(layer.name, pe, simd, lut_weights=True)
                            for layer, (pe, simd) in zip(net.layers, pairs)))
    y, _, result, perf = run_rtl(net, folding, x)
    assert {lp.weight_storage for lp in perf.layers} == {"lut"}
    assert perf.bram_blocks("ice40") == 0
    np.testing.assert_array_equal(y, reference.run(net, x))
    assert result.latency_cycles(perf.in_beats, perf.out_beats) == perf.latency_cycles
    assert result.ii_cycles(perf.out_beats) == perf.ii_cycles
    in_bram = analyze(net, _folding(net, pairs))
    assert (perf.ii_cycles, perf.latency_cycles) == (in_bram.ii_cycles, in_bram.latency_cycles)
    assert "bram" in {lp.weight_storage for lp in in_bram.layers}
