"""Max pooling for convolutions, streaming.

:class:`MaxPoolUnit` pools a thresholded output stream (``pe`` lanes of level indices per beat,
``channels / pe`` beats per pixel) over ``k × k`` windows at stride ``k``: it keeps one row of
partial maxima and emits pooled beat ``nf`` of a pooled pixel :attr:`MaxPoolUnit.LATENCY` cycle
after beat ``nf`` of the pixel that completes it. Pixels beyond the last whole window are
consumed and dropped (ONNX's floor mode). Levels are sorted, so the max of values is the max of
level indices (OR for bipolar values). An output not taken holds the unit's input.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["MaxPoolUnit"]


class MaxPoolUnit(wiring.Component):
    """``k × k`` max pooling at stride ``k`` of a stream of level indices.

    Parameters
    ----------
    kernel, height, width : int
        Pool size, and the map being pooled.
    channels, pe, lane_bits : int
        Channels per pixel, lanes per beat (``channels / pe`` beats per pixel), bits per lane.

    Members
    -------
    i : In(stream.Signature(pe · lane_bits)); o : Out(stream.Signature(pe · lane_bits))
    """

    LATENCY = 1  # from the beat that completes a pooled pixel to its pooled beat

    @staticmethod
    def partial_bits(out_width: int, channels: int, lane_bits: int) -> int:
        """Bits of the row of partial maxima."""
        return out_width * channels * lane_bits

    def __init__(self, *, kernel: int, height: int, width: int, channels: int, pe: int,
                 lane_bits: int):
        self.k, self.height, self.width = kernel, height, width
        self.pe, self.lane_bits, self.nf = pe, lane_bits, channels // pe
        self.out_height, self.out_width = height // kernel, width // kernel
        super().__init__({
            "i": In(stream.Signature(pe * lane_bits)),
            "o": Out(stream.Signature(pe * lane_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        k, nf_max, bits = self.k, self.nf, self.lane_bits
        beat = len(self.i.payload)
        partial = Memory(shape=beat, depth=max(self.out_width * nf_max, 2), init=[])
        m.submodules.partial = partial
        rd = partial.read_port(domain="comb")
        wr = partial.write_port()

        y = Signal(range(max(self.height, 2)))
        x = Signal(range(max(self.width, 2)))
        yin = Signal(range(max(k, 2)))
        xin = Signal(range(max(k, 2)))
        xp = Signal(range(max(self.width // k + 1, 2)))
        nf = Signal(range(max(nf_max, 2)))
        accept = Signal()
        m.d.comb += [
            self.i.ready.eq(~self.o.valid | self.o.ready),
            accept.eq(self.i.valid & self.i.ready),
        ]
        inside = (y < self.out_height * k) & (x < self.out_width * k)
        first = (yin == 0) & (xin == 0)
        last = (yin == k - 1) & (xin == k - 1)
        paddr = Signal(range(max(self.out_width * nf_max + 1, 2)))  # xp·NF + nf, stepped
        m.d.comb += rd.addr.eq(paddr)
        lanes = []
        for lane in range(self.pe):
            a = self.i.payload.word_select(lane, bits)
            b = rd.data.word_select(lane, bits)
            lanes.append(Mux(first | (a > b), a, b))
        new = Cat(*lanes)
        m.d.comb += [wr.addr.eq(rd.addr), wr.data.eq(new), wr.en.eq(accept & inside & ~last)]

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(accept):
            with m.If(inside & last):
                m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(new)]
            # counters: channel beat, then x (with x mod k and x div k), then y
            with m.If(nf == nf_max - 1):
                m.d.sync += nf.eq(0)
                with m.If(x == self.width - 1):
                    m.d.sync += [x.eq(0), xin.eq(0), xp.eq(0), paddr.eq(0),
                                 y.eq(Mux(y == self.height - 1, 0, y + 1)),
                                 yin.eq(Mux((yin == k - 1) | (y == self.height - 1), 0, yin + 1))]
                with m.Else():
                    m.d.sync += [x.eq(x + 1), xin.eq(Mux(xin == k - 1, 0, xin + 1)),
                                 xp.eq(Mux(xin == k - 1, xp + 1, xp)),
                                 paddr.eq(Mux(xin == k - 1, paddr + 1, paddr - (nf_max - 1)))]
            with m.Else():
                m.d.sync += [nf.eq(nf + 1), paddr.eq(paddr + 1)]
        return m
