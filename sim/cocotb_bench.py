"""cocotb test module run by :func:`lowbit.sim.rtl.simulate` with ``bench="cocotb"``.

It reads the job (input beats, stall probabilities) named by ``LOWBIT_COCOTB_JOB``, drives the
same protocol as the C++ harness, and writes the transfer cycles and output beats back.
"""

from __future__ import annotations

import json
import os
import random
import struct

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge


@cocotb.test()
async def stream_frames(dut):
    job = json.loads(open(os.environ["LOWBIT_COCOTB_JOB"]).read())
    n_in, n_out = job["n_in"], job["n_out"]
    in_bytes, out_bytes = job["in_bytes"], job["out_bytes"]
    raw = open(job["in_file"], "rb").read()
    beats = [int.from_bytes(raw[k * in_bytes:(k + 1) * in_bytes], "little") for k in range(n_in)]
    rng = random.Random(job["seed"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.in_valid.value = 0
    dut.out_ready.value = 0
    for _ in range(2):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    in_cycles, out_cycles, outs = [], [], []
    i = cycle = 0
    offering = False
    while len(outs) < n_out and cycle < job["max_cycles"]:
        if not offering and i < n_in:
            offering = not (job["stall_in"] > 0 and rng.random() < job["stall_in"])
        dut.in_valid.value = int(offering)
        if offering:
            dut.in_data.value = beats[i]
        dut.out_ready.value = int(not (job["stall_out"] > 0 and rng.random() < job["stall_out"]))
        await ReadOnly()
        took_in = offering and int(dut.in_ready.value)
        if int(dut.out_valid.value) and int(dut.out_ready.value):
            outs.append(int(dut.out_data.value))
            out_cycles.append(cycle)
        if took_in:
            in_cycles.append(cycle)
            i += 1
            offering = False
        await FallingEdge(dut.clk)
        cycle += 1
    in_cycles += [-1] * (n_in - len(in_cycles))
    out_cycles += [-1] * (n_out - len(out_cycles))
    with open(job["out_file"], "wb") as f:
        f.write(struct.pack("<q", cycle))
        f.write(struct.pack(f"<{n_in}q", *in_cycles))
        f.write(struct.pack(f"<{n_out}q", *out_cycles))
        for value in outs + [0] * (n_out - len(outs)):
            f.write(value.to_bytes(out_bytes, "little"))
