"""Argmax over the accumulators of the last layer: one class index per frame."""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["LabelSelect"]


class LabelSelect(wiring.Component):
    """Index of the largest of ``count`` signed values arriving ``lanes`` per beat.

    Ties go to the lowest index (as ``numpy.argmax``). The index leaves one cycle after the last
    beat of a frame; while it waits on ``o``, ``i`` is not ready.

    Parameters
    ----------
    count : int
        Values per frame; a multiple of ``lanes``.
    lanes : int
        Values per input beat, lane k at bits ``[k·value_bits, (k+1)·value_bits)``.
    value_bits : int
        Width of each signed value.
    """

    LATENCY = 1  # from a frame's last input beat to its index on ``o``

    @staticmethod
    def index_bits_for(count: int) -> int:
        """Bits of a class index among ``count`` classes."""
        return max(1, (count - 1).bit_length())

    def __init__(self, count: int, lanes: int, value_bits: int):
        if lanes < 1 or count % lanes:
            raise ValueError(f"lanes={lanes} must divide count={count}")
        self.count, self.lanes, self.value_bits = count, lanes, value_bits
        self.index_bits = self.index_bits_for(count)
        super().__init__({
            "i": In(stream.Signature(lanes * value_bits)),
            "o": Out(stream.Signature(self.index_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        beats = self.count // self.lanes
        beat = Signal(range(max(beats, 2)))
        best = Signal(signed(self.value_bits))
        best_index = Signal(self.index_bits)
        m.d.comb += self.i.ready.eq(~self.o.valid | self.o.ready)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        # within the beat: first maximum wins; each step's maximum is its own wire, so the
        # chain stays linear (an expression used twice per step would double at every lane)
        lane_best = self.i.payload[:self.value_bits].as_signed()
        lane_index = Const(0, self.index_bits)
        for k in range(1, self.lanes):
            value = self.i.payload[k * self.value_bits:(k + 1) * self.value_bits].as_signed()
            better = value > lane_best
            step_best = Signal(signed(self.value_bits), name=f"lane_best_{k}")
            step_index = Signal(self.index_bits, name=f"lane_index_{k}")
            m.d.comb += [step_best.eq(Mux(better, value, lane_best)),
                         step_index.eq(Mux(better, k, lane_index))]
            lane_best, lane_index = step_best, step_index
        candidate = Signal(self.index_bits)
        m.d.comb += candidate.eq(beat * self.lanes + lane_index)
        take = Signal()
        m.d.comb += take.eq((beat == 0) | (lane_best > best))

        with m.If(self.i.valid & self.i.ready):
            with m.If(take):
                m.d.sync += [best.eq(lane_best), best_index.eq(candidate)]
            with m.If(beat == beats - 1):
                m.d.sync += [beat.eq(0), self.o.valid.eq(1),
                             self.o.payload.eq(Mux(take, candidate, best_index))]
            with m.Else():
                m.d.sync += beat.eq(beat + 1)
        return m
