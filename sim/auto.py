"""``auto`` folding: the fastest folding within a budget, or the cheapest reaching a rate.

Greedy and estimate-driven: start fully folded (PE = SIMD = 1) and unfold the layer that sets
the II one step at a time (SIMD first; PE when SIMD is exhausted or its step does not fit), as
long as the estimates of
:mod:`lowbit.sim.estimate` stay within the budgets. Where a step runs out of block RAM, weight
ROMs move into logic (``lut_weights``), fewest LUT4 per block saved first (a wide, shallow ROM
is cheap in LUTs and dear in blocks), while the logic stays within budget; a zero-skip layer
may instead take the dense schedule, whose ROM holds the weight codes only (the lanes' selects
and flags are counted), first where that does not lengthen the II. Once the II can fall no
further within the budgets, what is left of them buys latency: the layers that wait for a
whole vector (dense layers, a convolution's last rows) are unfolded where that shortens the
frame's path most per LUT4, as long as the II does not grow. Each multi-bit layer runs on the
engine of its weight kind or on the bit-plane engine at the same cycles, whichever the estimate
prices lower. With no budget,
device or rate named, the budget is :data:`DEFAULT_LUT_BUDGET` LUT4, or the fully folded
design when that is larger: a model always gets a folding that builds.
"""

from __future__ import annotations

from dataclasses import replace

from lowbit.hw.engines import engine
from lowbit.hw.plan import (
    Folding,
    LayerFolding,
    check_supported,
    default_tree_stages,
    divisors,
    layer_engine,
    tree_levels,
    validate_folding,
)
from lowbit.hw.weights import LUT_ROM_MAX_WORDS
from lowbit.sw.ir import Network

from lowbit.errors import FoldingError

from .perf import NetworkPerf, analyze

__all__ = ["auto_folding", "DEFAULT_LUT_BUDGET"]

DEFAULT_LUT_BUDGET = 5000


def auto_folding(net: Network, *, lut_budget: int | None = None, target_fps: float | None = None,
                 clock_hz: float = 100e6, label_select: bool = False,
                 bram_budget: int | None = None, family: str = "ice40",
                 cell_budget: int | None = None) -> Folding:
    """Fastest folding within ``lut_budget`` (estimated LUTs) and ``bram_budget`` (block RAMs of
    ``family``), or the cheapest that reaches ``target_fps`` at ``clock_hz``. Greedy: unfold the
    bottleneck layer one step at a time (SIMD first, then PE), as long as the estimates stay
    within budget. On ECP5, XNOR layers fed from block RAM get an operand register and
    multi-bit adder trees a register per two levels. With no
    budget and no rate, :data:`DEFAULT_LUT_BUDGET` or the fully folded design, whichever is
    larger."""
    check_supported(net)
    unconstrained = lut_budget is None and target_fps is None and cell_budget is None
    state = [[1, 1, False, False] for _ in net.layers]  # PE, SIMD, weights in LUTs, dense

    planes = {}  # (layer, PE, SIMD, LUT ROM, dense) → bit-plane planes per cycle, or None

    def layers_of(s) -> tuple[LayerFolding, ...]:
        return tuple(LayerFolding(layer.name, pe, simd, lut_weights=lut or None,
                                  zero_skip=False if dense else None,
                                  planes_per_cycle=planes.get((k, pe, simd, lut, dense)))
                     for k, (layer, (pe, simd, lut, dense)) in enumerate(zip(net.layers, s)))

    def perf(s, exact: bool = False) -> NetworkPerf:
        """The trial's estimates; its cycles as lower bounds unless ``exact`` (the coupled
        line-buffer timing is only needed to check a rate). Each multi-bit layer runs on the
        engine its weight kind gives or on the bit-plane engine at the same cycles, whichever
        the estimate says is cheaper (:func:`_engine_choice`)."""
        keys = [(k, *entry) for k, entry in enumerate(s)]
        if any(key not in planes for key in keys):
            _engine_choice(net, keys, layers_of(s), planes, family)
        return analyze(net, Folding(layers_of(s)), family, exact)

    def reaches(s, p: NetworkPerf) -> bool:
        if clock_hz / p.ii_cycles < target_fps:
            return False
        return clock_hz / perf(s, exact=True).ii_cycles >= target_fps

    current = perf(state)
    if unconstrained:  # no device or budget named: never refuse, the smallest design builds
        lut_budget = max(DEFAULT_LUT_BUDGET, current.estimated_luts)
    big = max(current.layers, key=lambda lp: lp.estimated_luts + lp.estimated_ffs)
    largest = (f"the largest layer is {big.name!r} (~{big.estimated_luts:,} LUT4, "
               f"~{big.estimated_ffs:,} FF)")
    if cell_budget is not None and current.logic_cells > cell_budget:
        raise FoldingError(
            f"design does not fit: even fully folded (PE = SIMD = 1) it needs an estimated "
            f"~{current.logic_cells:,} logic cells (LUTs + flip-flops), over the "
            f"{cell_budget:,} the device leaves; {largest}: choose a larger device")
    if lut_budget is not None and current.estimated_luts > lut_budget:
        raise FoldingError(
            f"even fully folded (PE = SIMD = 1) the design needs ~{current.estimated_luts:,} "
            f"LUT4, over the budget of {lut_budget:,}; {largest}: raise the LUT budget or "
            f"choose a larger device")
    def fits_logic(p: NetworkPerf) -> bool:
        return within(p, lut_budget, cell_budget)

    if bram_budget is not None and current.bram_blocks(family) > bram_budget:
        placed = _place_memories(state, current, perf, family, bram_budget, fits_logic)
        if placed is None:
            state, current = _fit_block_ram(net, state, current, perf, family, bram_budget,
                                            fits_logic, largest)
        else:
            state, current = placed
    while True:
        if target_fps is not None and reaches(state, current):
            break
        # the layer that sets the II; when its input beats pace it, widen the previous
        # layer's output (PE) instead of unfolding it
        k = max(range(len(state)), key=lambda j: (current.layers[j].ii_cycles,
                                                   current.layers[j].compute_cycles))
        lp = current.layers[k]
        if lp.ii_cycles > lp.compute_cycles:
            if k == 0:
                break  # the input stream itself is the limit
            k -= 1
            pe, simd = state[k][:2]
            trials = [(d, simd) for d in divisors(net.layers[k].out_features) if d > pe][:1]
        else:  # the next SIMD, else (or when that does not fit) the next PE
            layer = net.layers[k]
            pe, simd = state[k][:2]
            trials = ([(pe, d) for d in divisors(layer.in_features) if d > simd][:1]
                      + [(d, simd) for d in divisors(layer.out_features) if d > pe][:1])
        step = None
        for trial in trials:
            new = [list(s) for s in state]
            new[k][:2] = trial
            trial_perf = perf(new)
            if not fits_logic(trial_perf):
                continue
            if bram_budget is not None and trial_perf.bram_blocks(family) > bram_budget:
                placed = _place_memories(new, trial_perf, perf, family, bram_budget,
                                         fits_logic)
                if placed is None:
                    continue
                new, trial_perf = placed
            step = new, trial_perf
            break
        if step is None:
            break
        state, current = step
    if target_fps is not None and not reaches(state, current):
        current = perf(state, exact=True)
        raise FoldingError(
            f"{target_fps:g}: no folding within the budget reaches it at {clock_hz / 1e6:g} MHz; "
            f"the fastest reaches {clock_hz / current.ii_cycles:,.0f} frames/s (II "
            f"{current.ii_cycles} cycles, ~{current.estimated_luts:,} LUT4)", param="fps")
    if target_fps is None:
        state, current = _shorten_latency(net, state, current, perf, family, bram_budget,
                                          fits_logic)
    # on ECP5 an XNOR layer registers its XNORs where block RAM (5.8 ns clock-to-output) or a
    # LUT ROM (its address fanned out to every weight bit: CNV_1W1A's second layer, 9,216
    # bits from a 4-word ROM, 4.2 ns of routing) feeds them
    slow = [family == "ecp5" and lp.engine == "xnor"
            and ("bram" in (lp.weight_storage, lp.input_storage)
                 or lp.weight_storage == "lut" and lp.schedule.rom_words > LUT_ROM_MAX_WORDS)
            for lp in current.plan.layers]
    folding = Folding(tuple(replace(f, operand_register=reg or None,
                                    tree_stages=_tree_stages(layer, f, family))
                            for layer, f, reg in zip(net.layers, layers_of(state), slow)),
                      label_select)
    validate_folding(net, folding)
    return folding


def within(perf: NetworkPerf, lut_budget: int | None, cell_budget: int | None) -> bool:
    """The estimates stay within the LUT and logic-cell budgets."""
    return ((lut_budget is None or perf.estimated_luts <= lut_budget)
            and (cell_budget is None or perf.logic_cells <= cell_budget))


def _engine_choice(net: Network, keys: list, layers: tuple, planes: dict, family: str) -> None:
    """Decide, for the layers of ``keys`` not decided yet, whether the bit-plane engine with
    all input planes at once (the same cycles, so the same II) replaces the engine of the
    layer's weight kind: where it takes fewer estimated LUT4 and no more block RAM
    (bench/bitplane_luts.py: 2- and 3-bit weights on 2- and 3-bit inputs took 37 to 43 % fewer
    LUT4 than the shift-add and multiply engines; binary weights on 8-bit inputs a few more
    than add/subtract). XNOR layers keep XNOR-popcount."""
    base = None
    for key in keys:
        if key in planes:
            continue
        k, layer = key[0], net.layers[key[0]]
        planes[key] = None
        if engine(layer) == "xnor":
            continue
        base = base or analyze(net, Folding(layers), family, False)
        trial = list(layers)
        trial[k] = replace(layers[k], planes_per_cycle=layer.in_values.bits, zero_skip=None)
        other = analyze(net, Folding(tuple(trial)), family, False)
        if (other.layers[k].estimated_luts < base.layers[k].estimated_luts
                and other.bram_blocks(family) <= base.bram_blocks(family)
                and other.layers[k].ii_cycles <= base.layers[k].ii_cycles):
            planes[key] = layer.in_values.bits


def _tree_stages(layer, f: LayerFolding, family: str) -> int | None:
    """On ECP5, a multi-bit adder tree (every engine but XNOR) gets a register per two levels
    of its sums, at least :func:`~lowbit.hw.plan.default_tree_stages`: CNV_1W1A's critical path
    at 61.3 MHz ran from the first layer's terms through all four levels of its SIMD-9 tree,
    the accumulator and the thresholds (16.3 ns, 13 of them routing). None: the default."""
    if family != "ecp5" or layer_engine(layer, f) == "xnor":
        return None
    return max(default_tree_stages(f.simd), tree_levels(layer, f.simd, f) // 2)


def _next_step(layer, pe: int, simd: int) -> tuple[int, int] | None:
    """One step less folded: the next SIMD that divides the layer, else the next PE."""
    wider = [d for d in divisors(layer.in_features) if d > simd]
    if wider:
        return pe, wider[0]
    more = [d for d in divisors(layer.out_features) if d > pe]
    return (more[0], simd) if more else None


def _shorten_latency(net: Network, state, current: NetworkPerf, perf, family: str,
                     bram_budget: int | None, fits_logic):
    """Spend what the budgets leave on latency: unfold one layer a step at a time, the step
    that removes the most latency cycles per estimated LUT4 added, while the logic and block
    RAM stay within budget and the II stays where it is (the bound per trial, the exact II of
    the coupled line buffers at the end: where that grew, the steps are undone).
    ``(state, perf)``."""
    start, ii = (state, current), current.ii_cycles
    while True:
        best = None
        for k, layer in enumerate(net.layers):
            step = _next_step(layer, *state[k][:2])
            if step is None:
                continue
            new = [list(s) for s in state]
            new[k][:2] = step
            trial = perf(new)
            gain = current.latency_cycles - trial.latency_cycles
            if (gain <= 0 or trial.ii_cycles > ii or not fits_logic(trial)
                    or (bram_budget is not None and trial.bram_blocks(family) > bram_budget)):
                continue
            value = gain / max(1, trial.estimated_luts - current.estimated_luts)
            if best is None or value > best[0]:
                best = (value, new, trial)
        if best is None:
            break
        _, state, current = best
    if (state is not start[0]
            and perf(state, exact=True).ii_cycles > perf(start[0], exact=True).ii_cycles):
        return start
    return state, current


def _place_memories(state, current: NetworkPerf, perf, family: str, bram_budget: int,
                    fits_logic):
    """Place weight ROMs until the design fits ``bram_budget``, one move at a time: a
    zero-skip layer onto its dense schedule where that saves blocks without lengthening the
    II; else a ROM from block RAM into logic, the fewest estimated LUT4 per block saved, while
    the logic stays within budget; else the dense schedule that saves the most blocks.
    ``(state, perf)``, or None when no such placement fits."""
    while current.bram_blocks(family) > bram_budget:
        free, best, dense = None, None, None
        for k, lp in enumerate(current.plan.layers):
            moves = []
            if lp.weight_storage == "bram":
                moves.append(2)
            if not lp.schedule.dense and not state[k][3]:
                moves.append(3)
            for move in moves:
                new = [list(s) for s in state]
                new[k][move] = True
                trial = perf(new)
                saved = current.bram_blocks(family) - trial.bram_blocks(family)
                if saved <= 0 or not fits_logic(trial):
                    continue
                if move == 2:
                    price = (trial.estimated_luts - current.estimated_luts) / saved
                    if best is None or price < best[0]:
                        best = (price, new, trial)
                elif trial.ii_cycles <= current.ii_cycles:
                    if free is None or saved > free[0]:
                        free = (saved, new, trial)
                elif dense is None or saved > dense[0]:
                    dense = (saved, new, trial)
        choice = free or best or dense
        if choice is None:
            return None
        _, state, current = choice
    return state, current


def _fit_block_ram(net: Network, state, current: NetworkPerf, perf, family: str,
                   bram_budget: int, fits_logic, largest: str):
    """Unfold the layers with the most block RAM until the design fits ``bram_budget``.

    A folded MVAU stores its schedule (lane selects and flags) beside the weight codes, one ROM
    word per step, so fewer steps can mean fewer blocks; a layer is unfolded only while that
    lowers the total and the logic stays within budget."""
    from .estimate import layer_bram_blocks

    while current.bram_blocks(family) > bram_budget:
        blocks = [layer_bram_blocks(lp, family) for lp in current.plan.layers]
        for k in sorted(range(len(state)), key=lambda j: -blocks[j]):
            if not blocks[k]:
                continue
            step = _next_step(net.layers[k], *state[k][:2])
            if step is None:
                continue
            new = [list(s) for s in state]
            new[k][:2] = step
            trial = perf(new)
            if (trial.bram_blocks(family) < current.bram_blocks(family)
                    and fits_logic(trial)):
                state, current = new, trial
                break
        else:
            bits = sum(lp.weight_memory_bits for lp in current.layers)
            raise FoldingError(
                f"design does not fit: its {bits:,} weight bits need ~"
                f"{current.bram_blocks(family)} block RAMs at the smallest folding that fits "
                f"the logic, the device has {bram_budget} to give; {largest}: choose a larger "
                f"device")
    return state, current
