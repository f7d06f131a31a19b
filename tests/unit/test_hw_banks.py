"""lowbit.hw.banks: two frame banks filled beat by beat (shift registers or one RAM), the
bank-full flags, and the depth and storage facts the estimates use."""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Module, Shape, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from lowbit.hw.banks import BRAM_MIN_BITS, InputBanks
from streams import memories, run


class Banks(wiring.Component):
    """Writes frames into the banks; ``take`` frees the bank ``rbank`` names (a reader)."""

    def __init__(self, beats: int, width: int, bram: bool, contiguous: bool = False):
        self.beats, self.width, self.bram, self.contiguous = beats, width, bram, contiguous
        super().__init__({"i": In(stream.Signature(width)), "take": In(1), "full": Out(2),
                          "rbank": Out(1),
                          "raddr": In(range(max(beats, 2))), "rdata": Out(width)})

    def elaborate(self, platform):
        m = Module()
        banks = InputBanks(m, self.beats, self.width, self.beats * self.width, self.bram,
                           contiguous=self.contiguous)
        m.d.comb += [self.i.ready.eq(~banks.full.bit_select(banks.wbank, 1)),
                     self.full.eq(banks.full)]
        banks.write(m, self.i.valid & self.i.ready, self.i.payload)
        rbank = Signal()
        m.d.comb += self.rbank.eq(rbank)
        with m.If(self.take & banks.full.bit_select(rbank, 1)):
            m.d.sync += [banks.full.bit_select(rbank, 1).eq(0), rbank.eq(~rbank)]
        if self.bram:
            port = banks.memory.read_port(domain="comb")
            m.d.comb += [port.addr.eq(banks.address(rbank, self.raddr)),
                         self.rdata.eq(port.data)]
        else:
            sel = Signal(self.beats * self.width)
            with m.If(rbank):
                m.d.comb += sel.eq(banks.banks[1])
            with m.Else():
                m.d.comb += sel.eq(banks.banks[0])
            m.d.comb += self.rdata.eq(sel.word_select(self.raddr, self.width))
        return m


@pytest.mark.parametrize("beats,width,bram,contiguous", [
    (4, 3, False, False), (1, 8, False, False), (5, 4, True, False), (6, 2, True, True)])
def test_banks_hold_each_frame_beat_by_beat_and_alternate(beats, width, bram, contiguous):
    dut = Banks(beats, width, bram, contiguous)
    rng = random.Random(beats * width)
    frames = [[rng.getrandbits(width) for _ in range(beats)] for _ in range(5)]
    read = []

    async def writer(ctx):
        for frame in frames:
            for beat in frame:
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload, beat)
                await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def reader(ctx):
        while len(read) < len(frames):
            bank = ctx.get(dut.rbank)
            if ctx.get(dut.full) >> bank & 1 and rng.random() < 0.5:
                words = []
                for k in range(beats):
                    ctx.set(dut.raddr, k)
                    await ctx.delay(1e-8)
                    words.append(ctx.get(dut.rdata))
                read.append(words)
                ctx.set(dut.take, 1)
                await ctx.tick()
                ctx.set(dut.take, 0)
            else:
                await ctx.tick()

    run(dut, writer, reader)
    assert read == frames


@pytest.mark.parametrize("beats,contiguous", [(5, False), (6, True), (64, False)])
def test_ram_depth_is_the_memory_built(beats, contiguous):
    dut = Banks(beats, 4, True, contiguous)
    assert memories(dut)["input_banks"].depth == InputBanks.ram_depth(beats, contiguous)


def test_storage_rule():
    assert InputBanks.storage(16, 16, 1, BRAM_MIN_BITS) == "bram"  # one SIMD word per beat
    assert InputBanks.storage(16, 16, 1, BRAM_MIN_BITS - 16) == "registers"  # too small
    assert InputBanks.storage(8, 16, 1, 1024) == "registers"  # beats narrower than SIMD
    assert InputBanks.storage(16, 16, 1, 1024, dense=False) == "registers"  # 64 bits a lane
    assert InputBanks.storage(16, 16, 1, 4096, dense=False) == "bram"  # a memory per lane
    assert InputBanks.storage(4, 16, 1, 4096, dense=False) == "bram"  # 4 beats to a word
    assert InputBanks.storage(3, 16, 1, 4096, dense=False) == "registers"  # 3 ∤ 16


@pytest.mark.parametrize("beats,width,lanes,lane_bits", [(5, 4, 1, 4), (64, 2, 1, 2),
                                                          (24, 4, 4, 2), (48, 2, 4, 2)])
def test_ram_shapes_are_the_memories_built(beats, width, lanes, lane_bits):
    banks = InputBanks(Module(), beats, width, beats * width, True, lanes=lanes,
                       lane_bits=lane_bits)
    built = [(mem.depth, Shape.cast(mem.shape).width)
             for mem in (banks.memories or [banks.memory])]
    assert InputBanks.ram_shapes(beats, width, lanes, lane_bits) == built
    words = beats * width // (lanes * lane_bits)  # both banks: a power of two each
    assert all(depth == 2 << (words - 1).bit_length() for depth, _ in built)
