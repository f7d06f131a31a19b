"""lowbit.hw.weights: the word at an address one cycle later, from constants, a LUT ROM or
block RAM, chosen by the number of words (and by the folding's ``lut_weights``)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from lowbit.hw.weights import rom_functions, rom_stored_bits, weight_rom, weight_storage
from streams import memories, run


class Rom(wiring.Component):
    def __init__(self, words: list[int], width: int, lut: bool = False):
        self.words, self.width, self.lut = words, width, lut
        super().__init__({"addr": In(range(max(len(words), 2))), "en": In(1),
                          "o": Out(width)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.o.eq(weight_rom(m, self.words, self.width, self.addr, self.en,
                                         lut=self.lut))
        return m


@pytest.mark.parametrize("count,lut", [(1, False), (2, False), (3, False), (17, False),
                                       (3, True), (17, True)])
def test_weight_rom_gives_the_addressed_word_one_cycle_later(count, lut):
    rng = random.Random(count)
    width = 12
    words = [rng.getrandbits(width) for _ in range(count)]
    dut = Rom(words, width, lut)
    addrs = [rng.randrange(count) for _ in range(40)]
    enables = [rng.random() < 0.7 for _ in addrs]

    async def bench(ctx):
        held = None
        for addr, en in zip(addrs, enables):
            ctx.set(dut.addr, addr)
            ctx.set(dut.en, en)
            await ctx.delay(1e-7)
            if count == 1:
                assert ctx.get(dut.o) == words[0]
            elif held is not None:
                assert ctx.get(dut.o) == words[held]
            if count == 1:  # constants: no clock at all
                continue
            await ctx.tick()
            if en:
                held = addr

    run(dut, bench)


@pytest.mark.parametrize("count,lut", [(1, False), (2, False), (3, False), (64, False),
                                       (1, True), (64, True)])
def test_storage_kind_is_the_memory_built(count, lut):
    dut = Rom(list(range(count)), 8, lut)
    rom = memories(dut).get("weights")
    kind = weight_storage(count, lut)
    # a memory for block RAM, or marked for logic when deeper than the LUT multiplexer
    assert (rom is not None) == (kind == "bram" or (kind == "lut" and count > 2))
    if rom is not None:
        style = "block" if kind == "bram" else "logic"
        assert rom.attrs["rom_style"] == style and rom.depth == count


def test_a_rom_stores_its_varying_columns_and_needs_one_function_per_distinct_one():
    # columns: constant 0, constant 1, a, a again, not-a, b
    a, b = [0, 1, 1, 0], [1, 1, 0, 0]
    columns = np.array([[0] * 4, [1] * 4, a, a, [1 - v for v in a], b], dtype=bool).T
    assert rom_stored_bits(columns) == 4
    assert rom_functions(columns) == 3
    assert rom_stored_bits(np.ones((1, 5), bool)) == rom_functions(np.ones((1, 5), bool)) == 0
