"""The network behind a UART, and its board tops (amaranth-boards platforms).

The link carries raw beats, no framing: the host sends each frame as the network's input beats,
``beat_bytes(in_width)`` bytes per beat, little-endian (:func:`lowbit.sim.host.input_beats`); the
board answers with the output beats, ``beat_bytes(out_width)`` bytes each, also little-endian
(accumulators, or one class index per frame with label select). Bytes wait in a 64-byte FIFO,
so a host may send the next frame while the answer to the last one is on its way.

A frame left incomplete (a byte lost on the line, a host that stopped) would shift every later
frame; so when a frame has begun and the line then stays idle for ``RESYNC_BYTES`` byte times,
the board drops the partial frame and resets the network: the next byte starts a new frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Cat, Elaboratable, Module, Mux, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out
from lowbit.hw.network import NetworkTop
from lowbit.hw.plan import NetworkPlan
from lowbit.sim.host import beat_bytes

from .uart import UARTRx, UARTTx

__all__ = ["UartNetwork", "BoardTop", "Board", "BOARDS", "RX_FIFO_BYTES", "RESYNC_BYTES"]

RX_FIFO_BYTES = 64
RESYNC_BYTES = 20


class UartNetwork(wiring.Component):
    """A :class:`~lowbit.hw.network.NetworkTop` between a UART receiver and transmitter.

    Members
    -------
    rx : In(1)
    tx : Out(1)
    overruns : Out(8) — bytes the receiver had to drop
    """

    BRAM_BLOCKS = 1  # the receive FIFO's block RAM (one SB_RAM40_4K, measured on iCE40)

    def __init__(self, plan: NetworkPlan, family: str, divisor: int):
        self.network = NetworkTop(plan, family)
        self.plan = plan
        self.divisor = divisor
        self.in_bytes = beat_bytes(plan.in_width)
        self.out_bytes = beat_bytes(plan.out_width)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "overruns": Out(8)})

    def elaborate(self, platform):
        m = Module()
        resync = Signal()
        net = self.network
        m.submodules.network = ResetInserter(resync)(net)
        m.submodules.rx = rx = UARTRx(self.divisor)
        m.submodules.tx = tx = UARTTx(self.divisor)
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=8, depth=RX_FIFO_BYTES)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx), self.overruns.eq(rx.overruns),
                     fifo.w_data.eq(rx.o.payload), fifo.w_en.eq(rx.o.valid),
                     rx.o.ready.eq(fifo.w_rdy)]

        # bytes -> one input beat
        beat = Signal(8 * self.in_bytes, reset_less=True)
        count = Signal(range(self.in_bytes + 1))
        full = Signal()
        m.d.comb += [fifo.r_en.eq(~full), net.i.payload.eq(beat), net.i.valid.eq(full)]
        with m.If(fifo.r_rdy & ~full):
            m.d.sync += beat.eq(Cat(beat[8:], fifo.r_data) if self.in_bytes > 1 else fifo.r_data)
            with m.If(count == self.in_bytes - 1):
                m.d.sync += [count.eq(0), full.eq(1)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        with m.If(net.i.valid & net.i.ready):
            m.d.sync += full.eq(0)

        # an incomplete frame followed by silence: drop it and start over
        beats = Signal(range(max(self.plan.in_beats, 2)))
        with m.If(net.i.valid & net.i.ready):
            m.d.sync += beats.eq(Mux(beats == self.plan.in_beats - 1, 0, beats + 1))
        limit = RESYNC_BYTES * 10 * self.divisor
        idle = Signal(range(limit + 1))
        started = (count != 0) | full | (beats != 0)
        with m.If(rx.o.valid | ~started):
            m.d.sync += idle.eq(0)
        with m.Elif(idle != limit):
            m.d.sync += idle.eq(idle + 1)
        m.d.comb += resync.eq(idle == limit)
        with m.If(resync):
            m.d.sync += [count.eq(0), full.eq(0), beats.eq(0), idle.eq(0)]

        # one output beat -> bytes
        shift = Signal(8 * self.out_bytes, reset_less=True)
        left = Signal(range(self.out_bytes + 1))
        m.d.comb += [net.o.ready.eq(left == 0), tx.i.valid.eq(left != 0),
                     tx.i.payload.eq(shift[:8])]
        with m.If(net.o.valid & net.o.ready):
            m.d.sync += [shift.eq(net.o.payload), left.eq(self.out_bytes)]
        with m.Elif(tx.i.valid & tx.i.ready):
            m.d.sync += [shift.eq(shift >> 8), left.eq(left - 1)]
        return m


class BoardTop(Elaboratable):
    """:class:`UartNetwork` on a board's UART pins (``uart`` 0 of the platform)."""

    def __init__(self, core: UartNetwork):
        self.core = core

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = self.core
        uart = platform.request("uart", 0)
        m.d.comb += [self.core.rx.eq(uart.rx.i), uart.tx.o.eq(self.core.tx)]
        return m


@dataclass(frozen=True)
class Board:
    name: str
    family: str
    target: str  # lowbit.export.targets.TARGETS
    clock_hz: float
    bitstream: str  # file suffix

    def platform(self):
        if self.name == "icebreaker":
            from amaranth_boards.icebreaker import ICEBreakerPlatform

            return ICEBreakerPlatform()
        from amaranth_boards.ulx3s import ULX3S_85F_Platform

        return ULX3S_85F_Platform()


BOARDS = {b.name: b for b in (
    Board("icebreaker", "ice40", "ice40-up5k", 12e6, "bin"),
    Board("ulx3s-85f", "ecp5", "ecp5-85k", 25e6, "bit"),
)}
