"""lowbit.sim.estimate: the block-RAM count of a memory equals the blocks yosys maps it onto.

The memories are built by the units' own helpers (``weight_rom``, ``InputBanks``) and mapped by
the real ``synth_ice40``/``synth_ecp5``; the shapes are those where packing depth chunks side by
side, write lanes, or the multiplexer between chunks change the count.
"""

from __future__ import annotations

import random

import pytest
from amaranth.back import verilog
from amaranth.hdl import Elaboratable, Module, Signal
from lowbit.export.synth import count_cells, yosys_stat
from lowbit.hw.banks import InputBanks
from lowbit.hw.weights import weight_rom
from lowbit.sim.estimate import ram_blocks

# (words, width, writable): ROMs as weight_rom builds them, RAMs as InputBanks does
SHAPES = [(768, 5, False), (4096, 18, False), (1536, 3, False), (200, 40, False),
          (1024, 6, True), (768, 5, True), (4608, 4, True), (1800, 16, True),
          (7200, 16, True)]  # iCE40: 30 blocks of 512 × 8, fewer chunks than 29 of 256 × 16


class Rom(Elaboratable):
    def __init__(self, words: int, width: int):
        rng = random.Random(words * 1000 + width)
        self.words = [rng.getrandbits(width) for _ in range(words)]
        self.width = width
        self.addr = Signal(range(words))
        self.out = Signal(width)

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.out.eq(weight_rom(m, self.words, self.width, self.addr, 1))
        return m


class Ram(Elaboratable):
    """Both banks of ``words // 2`` beats in one block RAM, written and read."""

    def __init__(self, words: int, width: int):
        self.beats, self.width = words // 2, width
        assert InputBanks.ram_depth(self.beats, contiguous=True) == words
        self.wdata, self.we = Signal(width), Signal()
        self.raddr = Signal(range(words))
        self.out = Signal(width)

    def elaborate(self, platform):
        m = Module()
        banks = InputBanks(m, self.beats, self.width, self.beats * self.width, True,
                           contiguous=True, attrs={"ram_style": "block"})
        banks.write(m, self.we, self.wdata)
        port = banks.memory.read_port(domain="sync")
        m.d.comb += [port.addr.eq(self.raddr), self.out.eq(port.data)]
        return m


class Memories(Elaboratable):
    def __init__(self):
        self.units = [(Ram if writable else Rom)(words, width)
                      for words, width, writable in SHAPES]

    def elaborate(self, platform):
        m = Module()
        for i, unit in enumerate(self.units):
            m.submodules[f"mem{i}"] = unit
        return m


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
def test_block_ram_count_equals_yosys_for_each_memory_shape(tmp_path, family):
    top = Memories()
    ports = [p for u in top.units for p in (
        [u.addr, u.out] if isinstance(u, Rom) else [u.wdata, u.we, u.raddr, u.out])]
    (tmp_path / "m.v").write_text(verilog.convert(top, name="top", ports=ports,
                                                  emit_src=False))
    modules = yosys_stat(tmp_path, "m.v", "top", family, flatten=False)
    found = {}
    for name, cells in modules.items():
        if "mem" in name.rsplit(".", 1)[-1]:
            index = int(name.rsplit("mem", 1)[1].split(".")[0].split("$")[0])
            found[index] = found.get(index, 0) + count_cells(cells)[3]
    got = [found.get(i, 0) for i in range(len(SHAPES))]
    want = [ram_blocks(words, width, family, writable) for words, width, writable in SHAPES]
    assert got == want, list(zip(SHAPES, got, want))


@pytest.mark.parametrize("family", ["ice40", "ecp5"])
def test_estimates_of_a_small_cnn_hold_against_yosys(tmp_path, family):
    """LUT4 and flip-flops within ±15 % of yosys, block RAM equal (on iCE40 its small frame
    banks, under the block-RAM mark, still take a block), as bench/estimate_accuracy.py checks
    for more designs."""
    import onnx
    from lowbit.export.synth import SynthTop
    from lowbit.sw.synthetic import conv_net

    import lowbit

    model = conv_net((2, 12, 12), (("conv", 16, 3, 1, 1), ("pool", 2), ("fc", 10)), seed=3)
    onnx.save(model, str(tmp_path / "cnn.onnx"))
    design = lowbit.compile(lowbit.load(tmp_path / "cnn.onnx"), family=family)
    (tmp_path / "top.v").write_text(verilog.convert(SynthTop(design.plan, family),
                                                    name="synth_top"))
    luts, ffs, _, brams = count_cells(yosys_stat(tmp_path, "top.v", "synth_top",
                                                 family)["synth_top"])
    ffs -= design.perf.in_width  # the wrapper's input shift register
    assert abs(design.perf.estimated_luts / luts - 1) <= 0.15, (design.perf.estimated_luts, luts)
    assert abs(design.perf.estimated_ffs / ffs - 1) <= 0.15, (design.perf.estimated_ffs, ffs)
    assert design.perf.bram_blocks(family) == brams
