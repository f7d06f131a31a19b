"""8N1 UART receiver and transmitter with stream ports, ``divisor`` clock cycles per bit."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["UARTRx", "UARTTx"]


def _check(divisor: int) -> None:
    if divisor < 4:
        raise ValueError(f"divisor must be at least 4 clock cycles per bit, not {divisor}")


class UARTRx(wiring.Component):
    """Receives bytes on ``rx`` (idle high, LSB first). A byte is offered on ``o`` from the
    middle of its stop bit until taken; a byte arriving while the last one waits is dropped
    and counted in ``overruns``.

    Members
    -------
    rx : In(1)
    o : Out(stream.Signature(8))
    overruns : Out(8)
    """

    def __init__(self, divisor: int):
        _check(divisor)
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "o": Out(stream.Signature(8)),
                          "overruns": Out(8)})

    def elaborate(self, platform):
        m = Module()
        sync = Signal(2, init=0b11)  # two-flop synchronizer
        m.d.sync += sync.eq(Cat(self.rx, sync[0]))
        rx = sync[1]
        timer = Signal(range(self.divisor + self.divisor // 2 + 1))
        bit = Signal(range(10))
        shift = Signal(8)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    # first sample in the middle of data bit 0
                    m.d.sync += [timer.eq(self.divisor + self.divisor // 2 - 1), bit.eq(0)]
                    m.next = "BITS"
            with m.State("BITS"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(bit == 8):  # middle of the stop bit
                    with m.If(rx):
                        with m.If(self.o.valid & ~self.o.ready):
                            m.d.sync += self.overruns.eq(self.overruns + 1)
                        with m.Else():
                            m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [shift.eq(Cat(shift[1:], rx)), bit.eq(bit + 1),
                                 timer.eq(self.divisor - 1)]
        return m


class UARTTx(wiring.Component):
    """Sends the bytes taken from ``i`` on ``tx``: a start bit, 8 data bits LSB first, a stop
    bit, ``divisor`` cycles each.

    Members
    -------
    i : In(stream.Signature(8))
    tx : Out(1)
    """

    def __init__(self, divisor: int):
        _check(divisor)
        self.divisor = divisor
        super().__init__({"i": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        frame = Signal(10, init=0x3FF)  # stop, data, start: shifted out LSB first
        left = Signal(range(11))
        m.d.comb += [self.tx.eq(frame[0]), self.i.ready.eq(left == 0)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [frame.eq(Cat(Const(0, 1), self.i.payload, Const(1, 1))), left.eq(10),
                         timer.eq(self.divisor - 1)]
        with m.Elif(left != 0):
            with m.If(timer == 0):
                m.d.sync += [frame.eq(Cat(frame[1:], Const(1, 1))), left.eq(left - 1),
                             timer.eq(self.divisor - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m
