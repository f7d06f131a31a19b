"""lowbit.hw.popcount: the count of ones after its pipeline stages, held while disabled."""

from __future__ import annotations

import random

import pytest
from lowbit.hw.popcount import Popcount, popcount_levels
from streams import run


@pytest.mark.parametrize("style", ["carry", "wallace"])
@pytest.mark.parametrize("width,stages", [(1, 0), (5, 0), (13, 1), (64, 2), (100, 3), (9, 3)])
def test_popcount_counts_ones_after_its_stages_and_holds_when_disabled(width, stages, style):
    stages = min(stages, popcount_levels(width))
    dut = Popcount(width, stages, style)
    rng = random.Random(width * 7 + stages)
    inputs = [rng.getrandbits(width) for _ in range(40)] + [0, (1 << width) - 1]
    enables = [rng.random() < 0.7 for _ in inputs]
    seen = []

    async def bench(ctx):
        pipe = []  # values inside the pipeline, advanced only when enabled
        for value, en in zip(inputs + [0] * (stages + 2), enables + [True] * (stages + 2)):
            ctx.set(dut.i, value)
            ctx.set(dut.en, en)
            if stages == 0:
                expected = bin(value).count("1")
            else:
                expected = pipe[0] if len(pipe) == stages else None
            if expected is not None:
                assert ctx.get(dut.o) == expected
                seen.append(expected)
            if stages:
                await ctx.tick()
            else:
                await ctx.delay(1e-6)
            if stages and en:
                pipe = (pipe + [bin(value).count("1")])[-stages:]

    run(dut, bench)
    assert len(seen) >= len(inputs) // 2


def test_popcount_rejects_bad_parameters():
    with pytest.raises(ValueError, match="width must be at least 1, not 0"):
        Popcount(0)
    with pytest.raises(ValueError, match=r"stages must be 0..3, not 4"):
        Popcount(8, 4)
    with pytest.raises(ValueError, match=r"style must be one of \('carry', 'wallace'\), not 'x'"):
        Popcount(8, 0, "x")


@pytest.mark.parametrize("style", ["carry", "wallace"])
def test_popcount_size_states_the_registers_the_tree_builds(style):
    from amaranth.hdl import Module, Signal
    from helpers import cell_bits
    from lowbit.hw.popcount import popcount_size, popcount_tree

    for width in (1, 2, 3, 7, 16, 33, 64, 100, 196):
        for stages in range(popcount_levels(width) + 1):
            m, x = Module(), Signal(width)
            out = Signal(width.bit_length())
            m.d.comb += out.eq(popcount_tree(m, x, stages=stages, style=style))
            logic, registers = popcount_size(width, stages, style)
            assert registers == cell_bits(m, [x, out]), (width, stages)
            if style == "carry":  # two LUTs per full adder, then the sums' result bits
                assert logic - 2 * (width // 3) == cell_bits(m, [x, out], "add"), width
