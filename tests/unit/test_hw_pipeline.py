"""lowbit.hw.pipeline: registers that hold while disabled, flags carried alongside, the
accumulators and the output beat register."""

from __future__ import annotations

import random

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from lowbit.hw.pipeline import accumulate, delayed, output_beat, register
from streams import run


class Pipe(wiring.Component):
    """value → register → delayed flag; accumulate over steps; emit on ``last`` via output_beat."""

    def __init__(self):
        super().__init__({"x": In(8), "valid": In(1), "first": In(1), "last": In(1),
                          "en": In(1, init=1), "r": Out(8), "flag": Out(1),
                          "o": Out(stream.Signature(12))})

    def elaborate(self, platform):
        m = Module()
        (r,) = register(m, [self.x], self.en, "sync", "t", [0])
        (flag,) = delayed(m, [self.valid], self.en, "d")
        m.d.comb += [self.r.eq(r), self.flag.eq(flag)]
        out_valid, stall = Signal(), Signal()
        m.d.comb += stall.eq(out_valid & ~self.o.ready)
        acc, nxt = Signal(12), Signal(12)
        accumulate(m, [acc], [nxt], [self.x], self.first, ~stall & self.valid)
        output_beat(m, self.o, out_valid, stall, self.valid, self.last, nxt)
        return m


def test_register_and_delayed_hold_while_disabled():
    dut = Pipe()
    rng = random.Random(1)
    seq = [(rng.getrandbits(8), rng.getrandbits(1), rng.random() < 0.6) for _ in range(50)]

    async def bench(ctx):
        held_x, held_v = 0, 0
        for x, v, en in seq:
            ctx.set(dut.x, x)
            ctx.set(dut.valid, v)
            ctx.set(dut.en, en)
            await ctx.delay(1e-8)
            assert (ctx.get(dut.r), ctx.get(dut.flag)) == (held_x, held_v)
            await ctx.tick()
            if en:
                held_x, held_v = x, v

    run(dut, bench)


def test_accumulate_and_output_beat_emit_one_sum_per_group_under_back_pressure():
    dut = Pipe()
    rng = random.Random(2)
    groups = [[rng.getrandbits(8) for _ in range(rng.randint(1, 5))] for _ in range(20)]
    got = []

    async def bench(ctx):
        for group in groups:
            for k, x in enumerate(group):
                ctx.set(dut.x, x)
                ctx.set(dut.valid, 1)
                ctx.set(dut.first, k == 0)
                ctx.set(dut.last, k == len(group) - 1)
                while True:  # a step is taken only while the output register is free
                    ctx.set(dut.o.ready, rng.random() < 0.5)
                    await ctx.delay(1e-8)
                    stalled = ctx.get(dut.o.valid) and not ctx.get(dut.o.ready)
                    if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                        got.append(ctx.get(dut.o.payload))
                    await ctx.tick()
                    if not stalled:
                        break
        ctx.set(dut.valid, 0)
        while len(got) < len(groups):
            ctx.set(dut.o.ready, 1)
            await ctx.delay(1e-8)
            if ctx.get(dut.o.valid):
                got.append(ctx.get(dut.o.payload))
            await ctx.tick()

    run(dut, bench)
    assert got == [sum(g) for g in groups]
