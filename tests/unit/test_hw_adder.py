"""lowbit.hw.adder: the signed sum of the terms, ``stages`` enabled cycles later."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from lowbit.hw.adder import adder_tree
from streams import run


class Tree(wiring.Component):
    def __init__(self, terms: int, bits: int, stages: int):
        self.terms, self.stages = terms, stages
        ports = {f"t{k}": In(signed(bits)) for k in range(terms)}
        super().__init__({**ports, "en": In(1, init=1), "o": Out(signed(bits + terms))})

    def elaborate(self, platform):
        m = Module()
        terms = [getattr(self, f"t{k}") for k in range(self.terms)]
        m.d.comb += self.o.eq(adder_tree(m, terms, stages=self.stages, en=self.en))
        return m


@pytest.mark.parametrize("terms,stages", [(1, 0), (2, 1), (5, 0), (7, 2), (16, 4), (9, 1),
                                          (1, 3), (3, 5)])  # more stages than levels
def test_adder_tree_sums_after_its_stages_and_holds_when_disabled(terms, stages):
    bits = 5
    dut = Tree(terms, bits, stages)
    rng = random.Random(terms * 10 + stages)
    inputs = [[rng.randint(-16, 15) for _ in range(terms)] for _ in range(30)]
    enables = [rng.random() < 0.7 for _ in inputs]
    checked = []

    async def bench(ctx):
        pipe = []
        for values, en in zip(inputs, enables):
            for k, v in enumerate(values):
                ctx.set(getattr(dut, f"t{k}"), v)
            ctx.set(dut.en, en)
            await ctx.delay(1e-7)
            if stages == 0:
                assert ctx.get(dut.o) == sum(values)
                checked.append(1)
            elif len(pipe) == stages:
                assert ctx.get(dut.o) == pipe[0]
                checked.append(1)
            if not stages:  # combinational: no clock at all
                continue
            await ctx.tick()
            if en:
                pipe = (pipe + [sum(values)])[-stages:]

    run(dut, bench)
    assert len(checked) > 10


def test_adder_tree_refuses_negative_stages():
    with pytest.raises(ValueError, match="stages must be 0 or more, not -1"):
        adder_tree(Module(), [1, 2, 3, 4], stages=-1)


def test_adder_tree_size_states_the_registers_and_sums_the_tree_builds():
    from amaranth.hdl import Signal
    from helpers import cell_bits
    from lowbit.hw.adder import adder_tree_size

    for widths in ([3] * 5, [4, 6, 2], [6] * 64, [1], [5] * 7):
        for stages in range(5):
            m = Module()
            terms = [Signal(signed(w)) for w in widths]
            out = adder_tree(m, terms, stages=stages)
            adders, registers = adder_tree_size(widths, stages)
            assert registers == cell_bits(m, [*terms, out], "dff"), (widths, stages)
            assert adders == cell_bits(m, [*terms, out], "add"), (widths, stages)
