"""lowbit.boards.uart: 8N1 receiver and transmitter, bytes in and out unchanged."""

from __future__ import annotations

import pytest
from amaranth.sim import Simulator
from lowbit.boards.uart import UARTRx, UARTTx
from streams import uart_receive, uart_send


def test_uart_loopback_keeps_every_byte():
    from amaranth.hdl import Module
    from amaranth.lib import wiring

    rx, tx = UARTRx(4), UARTTx(4)
    m = Module()
    m.submodules.rx, m.submodules.tx = rx, tx
    wiring.connect(m, rx.o, tx.i)  # what the receiver takes, the transmitter sends
    data = bytes(range(0, 256, 7))
    got = []

    async def send(ctx):
        await uart_send(ctx, rx.rx, data, 4)

    async def receive(ctx):
        got.append(await uart_receive(ctx, tx.tx, len(data), 4, limit=100_000))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(send, background=True)
    sim.add_testbench(receive)
    sim.run()
    assert got[0] == data


def test_uart_rejects_a_too_small_divisor():
    with pytest.raises(ValueError, match="divisor must be at least 4 clock cycles per bit, not 2"):
        UARTRx(2)
