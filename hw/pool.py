"""Max pooling for convolutions, streaming.

:class:`MaxPoolUnit` pools a thresholded output stream (``pe`` lanes of level indices per beat,
``channels / pe`` beats per pixel) over ``k × k`` windows at stride ``k``: it keeps one row of
partial maxima and emits pooled beat ``nf`` of a pooled pixel :attr:`MaxPoolUnit.LATENCY` cycle
after beat ``nf`` of the pixel that completes it. Pixels beyond the last whole window are
consumed and dropped (ONNX's floor mode). Levels are sorted, so the max of values is the max of
level indices (OR for bipolar values). An output not taken holds the unit's input.

The row is a memory written at the beat's partial maximum. Read asynchronously it is LUT RAM
(ECP5) or flip-flops; with ``sync_read`` (iCE40, which has no LUT RAM) its read port takes the
next beat's address one cycle ahead, transparent to the write, so the row can be a block RAM and
the timing is the same.
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

    @staticmethod
    def sync_read(family: str) -> bool:
        """Whether the row is read synchronously on ``family`` (so it may be a block RAM)."""
        return family == "ice40"

    @staticmethod
    def partial_ram(out_width: int, channels: int, pe: int, lane_bits: int,
                    family: str) -> tuple[int, int] | None:
        """``(depth, width)`` of the row when it lands in block RAM on ``family``, else None:
        on iCE40 from :data:`~lowbit.hw.window.ICE40_RING_BITS` on, as a line-buffer ring
        (yosys weighs a block against the logic of a RAM that small)."""
        from .window import ICE40_RING_BITS

        bits = MaxPoolUnit.partial_bits(out_width, channels, lane_bits)
        if not MaxPoolUnit.sync_read(family) or bits < ICE40_RING_BITS:
            return None
        return max(out_width * channels // pe, 2), pe * lane_bits

    def __init__(self, *, kernel: int, height: int, width: int, channels: int, pe: int,
                 lane_bits: int, sync_read: bool = False):
        self.sync = sync_read
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
        wr = partial.write_port()
        rd = (partial.read_port(domain="sync", transparent_for=(wr,)) if self.sync
              else partial.read_port(domain="comb"))

        y = Signal(range(max(self.height, 2)))
        x = Signal(range(max(self.width, 2)))
        yin = Signal(range(max(k, 2)))
        xin = Signal(range(max(k, 2)))
        nf = Signal(range(max(nf_max, 2)))
        accept = Signal()
        m.d.comb += [
            self.i.ready.eq(~self.o.valid | self.o.ready),
            accept.eq(self.i.valid & self.i.ready),
        ]
        inside = (y < self.out_height * k) & (x < self.out_width * k)
        first = (yin == 0) & (xin == 0)
        last = (yin == k - 1) & (xin == k - 1)
        paddr = Signal(range(max(self.out_width * nf_max + 1, 2)))  # (x ÷ k)·NF + nf, stepped
        step = Signal.like(paddr)  # its value after this beat
        m.d.comb += step.eq(Mux(nf != nf_max - 1, paddr + 1,
                                Mux(x == self.width - 1, 0,
                                    Mux(xin == k - 1, paddr + 1, paddr - (nf_max - 1)))))
        # a synchronous read takes the next beat's address a cycle ahead
        m.d.comb += rd.addr.eq(Mux(accept, step, paddr) if self.sync else paddr)
        lanes = []
        for lane in range(self.pe):
            a = self.i.payload.word_select(lane, bits)
            b = rd.data.word_select(lane, bits)
            lanes.append(Mux(first | (a > b), a, b))
        new = Cat(*lanes)
        m.d.comb += [wr.addr.eq(paddr), wr.data.eq(new), wr.en.eq(accept & inside & ~last)]

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(accept):
            m.d.sync += paddr.eq(step)
            with m.If(inside & last):
                m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(new)]
            # counters: channel beat, then x (with x mod k), then y
            with m.If(nf == nf_max - 1):
                m.d.sync += nf.eq(0)
                with m.If(x == self.width - 1):
                    m.d.sync += [x.eq(0), xin.eq(0),
                                 y.eq(Mux(y == self.height - 1, 0, y + 1)),
                                 yin.eq(Mux((yin == k - 1) | (y == self.height - 1), 0, yin + 1))]
                with m.Else():
                    m.d.sync += [x.eq(x + 1), xin.eq(Mux(xin == k - 1, 0, xin + 1))]
            with m.Else():
                m.d.sync += nf.eq(nf + 1)
        return m
