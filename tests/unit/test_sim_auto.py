"""lowbit.sim.auto: the fastest folding within a budget, the cheapest reaching a rate."""

from __future__ import annotations

import dataclasses

import pytest
from lowbit.export.targets import TARGETS
from lowbit.hw.plan import Folding, divisors, tree_levels
from lowbit.sim.auto import DEFAULT_LUT_BUDGET, auto_folding
from lowbit.sim.perf import analyze
from lowbit.sw.synthetic import binary_mlp, quant_mlp

import lowbit
from lowbit.errors import FoldingError


@pytest.fixture(scope="module")
def net():
    return lowbit.load(binary_mlp((64, 48, 32, 10), seed=1))


def test_a_bigger_budget_gets_a_faster_design_within_it(net):
    small = analyze(net, auto_folding(net, lut_budget=1000))
    large = analyze(net, auto_folding(net, lut_budget=6000))
    assert large.ii_cycles < small.ii_cycles
    assert small.estimated_luts <= 1000 and large.estimated_luts <= 6000


@pytest.mark.parametrize("budget", [1000, 2500, 6000])
def test_the_budget_left_after_the_ii_buys_latency(net, budget):
    # the II can fall no further within the budget; then no single step of any layer that
    # fits would still shorten the latency without raising the II
    folding = auto_folding(net, lut_budget=budget)
    perf = analyze(net, folding)
    assert perf.estimated_luts <= budget
    for k, (f, layer) in enumerate(zip(folding.layers, net.layers)):
        wider = [d for d in divisors(layer.in_features) if d > f.simd]
        step = ((f.pe, wider[0]) if wider else
                next(((d, f.simd) for d in divisors(layer.out_features) if d > f.pe), None))
        if step is None:
            continue
        layers = list(folding.layers)
        layers[k] = dataclasses.replace(f, pe=step[0], simd=step[1])
        trial = analyze(net, Folding(tuple(layers), folding.label_select))
        assert not (trial.latency_cycles < perf.latency_cycles
                    and trial.ii_cycles <= perf.ii_cycles
                    and trial.estimated_luts <= budget), layer.name


def test_a_rate_gets_the_cheapest_design_that_reaches_it(net):
    perf = analyze(net, auto_folding(net, target_fps=2e6, clock_hz=100e6))
    assert 100e6 / perf.ii_cycles >= 2e6


def test_without_a_budget_a_model_too_big_for_the_default_still_gets_a_folding():
    # 15 thresholds per channel over 1,024 channels: the tables alone exceed the default
    big = lowbit.load(quant_mlp((32, 1024, 10), weights="ternary", act_bits=4, seed=2))
    folded = analyze(big, Folding.uniform(big))
    assert folded.estimated_luts > DEFAULT_LUT_BUDGET
    perf = analyze(big, auto_folding(big))
    assert perf.estimated_luts == folded.estimated_luts  # the smallest design that builds
    with pytest.raises(FoldingError, match="over the budget of 1,000"):
        auto_folding(big, lut_budget=1000)


def test_device_budgets_bound_block_ram_and_logic_cells():
    net = lowbit.load(quant_mlp((64, 128, 10), weights="ternary", act_bits=2, seed=3))
    t = TARGETS["ice40-up5k"]
    perf = analyze(net, auto_folding(net, **t.budgets()))
    assert perf.bram_blocks("ice40") <= t.bram_blocks
    assert perf.logic_cells <= 0.7 * t.luts
    for name in ("ecp5-25k", "ecp5-45k", "ecp5-85k"):  # room for nextpnr's router
        t = TARGETS[name]
        assert t.budgets(reserve_bram=2)["bram_budget"] <= 0.95 * t.bram_blocks - 2


def test_a_model_that_cannot_fit_the_block_ram_is_refused_naming_its_largest_layer():
    net = lowbit.load(binary_mlp((4096, 512, 10), seed=3))
    with pytest.raises(FoldingError, match="block RAMs.* largest layer is 'fc0'"):
        auto_folding(net, **TARGETS["ice40-up5k"].budgets())


def test_ecp5_registers_block_ram_operands_of_xnor_layers_only(net):
    folding = auto_folding(net, lut_budget=3000, family="ecp5")
    perf = analyze(net, folding)
    for f, lp in zip(folding.layers, perf.layers):
        assert bool(f.operand_register) == ("bram" in (lp.weight_storage, lp.input_storage)
                                            and lp.engine == "xnor")


def test_ecp5_registers_the_xnors_behind_a_lut_rom_of_more_than_two_words():
    # on a small block-RAM budget weight ROMs move into logic (lut_weights)
    net = lowbit.load(binary_mlp((256, 256, 256, 256, 10), seed=4))
    folding = auto_folding(net, family="ecp5", lut_budget=12000, bram_budget=20)
    plan = analyze(net, folding, "ecp5").plan
    deep = [lp.weight_storage == "lut" and lp.schedule.rom_words > 2 for lp in plan.layers]
    assert any(deep)
    for f, lp, is_deep in zip(folding.layers, plan.layers, deep):
        if is_deep and lp.engine == "xnor":
            assert f.operand_register


def test_ecp5_puts_a_register_per_two_levels_into_multi_bit_adder_trees():
    net = lowbit.load(quant_mlp((64, 48, 10), weights="ternary", act_bits=2, seed=6))
    ecp5 = auto_folding(net, lut_budget=3000, family="ecp5")
    multi_bit = 0
    for f, lp, layer in zip(ecp5.layers, analyze(net, ecp5, "ecp5").layers, net.layers):
        if lp.engine != "xnor":
            multi_bit += 1
            assert lp.tree_stages >= tree_levels(layer, f.simd) // 2, layer.name
    assert multi_bit
    ice40 = auto_folding(net, lut_budget=3000)
    assert all(f.tree_stages is None for f in ice40.layers)  # the plan's default there


def test_out_of_block_ram_weights_move_into_logic_where_that_is_cheapest():
    # four 256-wide layers: at SIMD 256 the ROMs are shallow and wide, blocks run out first
    net = lowbit.load(binary_mlp((256, 256, 256, 256, 10), seed=4))
    budgets = {"lut_budget": 12000, "bram_budget": 20}
    folding = auto_folding(net, family="ecp5", **budgets)
    perf = analyze(net, folding, "ecp5")
    assert perf.estimated_luts <= 12000 and perf.bram_blocks("ecp5") <= 20
    moved = [f.lut_weights for f in folding.layers]
    assert any(moved)
    in_blocks = Folding(tuple(dataclasses.replace(f, lut_weights=None) for f in folding.layers),
                        folding.label_select)
    assert analyze(net, in_blocks, "ecp5").bram_blocks("ecp5") > 20  # the speed needed it


def test_a_zero_skip_rom_too_big_for_the_block_ram_takes_the_dense_schedule():
    # a folded zero-skip ROM stores each step's lane selects and flags beside the codes; the
    # dense schedule stores the codes only (its folds are counted), so it fits where skipping
    # does not
    net = lowbit.load(quant_mlp((400, 128, 10), weights="ternary", act_bits=2, seed=5))
    t = TARGETS["ice40-up5k"]
    folding = auto_folding(net, **t.budgets())
    perf = analyze(net, folding)
    assert perf.bram_blocks("ice40") <= t.bram_blocks
    dense = [f.zero_skip is False for f in folding.layers]
    assert dense[0]
    skipping = Folding(tuple(dataclasses.replace(f, zero_skip=None, planes_per_cycle=None)
                             for f in folding.layers), folding.label_select)
    assert analyze(net, skipping).bram_blocks("ice40") > t.bram_blocks


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
def test_a_multi_bit_layer_goes_onto_the_bit_plane_engine_where_the_estimate_finds_it_cheaper(
        family):
    net = lowbit.load(quant_mlp((192, 64, 10), weights="int3", in_bits=3, act_bits=2, seed=7))
    folding = auto_folding(net, lut_budget=5000, family=family)
    chosen = analyze(net, folding, family)
    planes = [f.planes_per_cycle for f in folding.layers]
    assert planes[0] == 3  # all input planes at once: the cycles of the multiply engine
    assert chosen.layers[0].engine == "bitplane"
    # the same PE and SIMD on the engine of the weight kind: same cycles, more LUT4
    kind = Folding(tuple(dataclasses.replace(f, planes_per_cycle=None, tree_stages=None)
                         for f in folding.layers), folding.label_select)
    other = analyze(net, kind, family)
    assert other.layers[0].engine == "multiply"
    assert other.layers[0].compute_cycles == chosen.layers[0].compute_cycles
    assert other.layers[0].estimated_luts > chosen.layers[0].estimated_luts


def test_binary_layers_on_bipolar_inputs_keep_xnor_popcount(net):
    folding = auto_folding(net, lut_budget=6000)
    assert not any(f.planes_per_cycle for f in folding.layers)
