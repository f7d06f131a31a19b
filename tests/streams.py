"""Shared stream drivers for unit tests in Amaranth's simulator.

:func:`stream_through` offers beats on a component's ``i`` stream with random gaps (an offered
beat stays offered until taken, as ``amaranth.lib.stream`` requires), takes beats from ``o``
with random back-pressure, and records the cycle of every transfer (cycle 0: the first clock
edge of the test bench). Lane helpers pack and unpack little-endian lanes of a beat.
"""

from __future__ import annotations

import random

from amaranth.sim import Simulator


def run(dut, *benches) -> None:
    """Simulate ``dut`` with a 1 MHz clock and the given async test benches."""
    sim = Simulator(dut)
    sim.add_clock(1e-6, if_exists=True)
    for bench in benches:
        sim.add_testbench(bench)
    sim.run()


def stream_through(dut, beats: list[int], n_out: int, *, stall_in: float = 0.0,
                   stall_out: float = 0.0, seed: int = 0, max_cycles: int = 200_000):
    """Stream ``beats`` into ``dut.i`` and collect ``n_out`` beats from ``dut.o``.

    Returns ``(outputs, input transfer cycles, output transfer cycles)``."""
    rng = random.Random(seed)
    outs, t_in, t_out = [], [], []

    async def bench(ctx):
        i = cycle = 0
        offering = False
        while len(outs) < n_out and cycle < max_cycles:
            if not offering and i < len(beats):
                offering = rng.random() >= stall_in
            ctx.set(dut.i.valid, offering)
            if offering:
                ctx.set(dut.i.payload, beats[i])
            ctx.set(dut.o.ready, rng.random() >= stall_out)
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                outs.append(ctx.get(dut.o.payload))
                t_out.append(cycle)
            if offering and ctx.get(dut.i.ready):
                t_in.append(cycle)
                i += 1
                offering = False
            await ctx.tick()
            cycle += 1

    run(dut, bench)
    assert len(outs) == n_out, f"{len(outs)} of {n_out} output beats in {max_cycles} cycles"
    return outs, t_in, t_out


def memories(dut) -> dict:
    """The ``amaranth.lib.memory.Memory`` instances a component builds, by name (one level)."""
    from amaranth.lib.memory import Memory

    module = dut.elaborate(None)
    found = {}
    for name, entry in module._named_submodules.items():
        sub = entry[0] if isinstance(entry, tuple) else entry
        if isinstance(sub, Memory):
            found[name] = sub
    return found


def pack(values, bits: int) -> int:
    """Little-endian lanes of ``bits`` each (negative values in two's complement)."""
    mask = (1 << bits) - 1
    return sum((int(v) & mask) << (k * bits) for k, v in enumerate(values))


def unpack(word: int, lanes: int, bits: int, signed: bool = False) -> list[int]:
    out = []
    for k in range(lanes):
        v = (word >> (k * bits)) & ((1 << bits) - 1)
        if signed and v >= 1 << (bits - 1):
            v -= 1 << bits
        out.append(v)
    return out


def beats_of(elements, bits: int, per_beat: int) -> list[int]:
    """A frame of element values (level indices), ``per_beat`` elements of ``bits`` per beat."""
    return [pack(elements[k:k + per_beat], bits) for k in range(0, len(elements), per_beat)]


async def uart_send(ctx, pin, data: bytes, divisor: int, gap: int = 0):
    """Drive ``data`` onto ``pin`` as 8N1 frames of ``divisor`` cycles per bit."""
    for byte in data:
        for level in [0] + [(byte >> k) & 1 for k in range(8)] + [1]:
            ctx.set(pin, level)
            await ctx.tick().repeat(divisor)
        if gap:
            await ctx.tick().repeat(gap)


async def uart_receive(ctx, pin, count: int, divisor: int, limit: int) -> bytes:
    """Read ``count`` 8N1 bytes from ``pin``; fails after ``limit`` idle cycles."""
    out = bytearray()
    waited = 0
    while len(out) < count:
        while ctx.get(pin):
            await ctx.tick()
            waited += 1
            assert waited < limit, f"no start bit after {len(out)} of {count} bytes"
        await ctx.tick().repeat(divisor + divisor // 2)
        byte = 0
        for k in range(8):
            byte |= ctx.get(pin) << k
            await ctx.tick().repeat(divisor)
        assert ctx.get(pin) == 1, "stop bit"
        out.append(byte)
    return bytes(out)
