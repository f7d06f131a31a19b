"""Simulated cycles/s and frames/s of TFC_1W1A in Verilator (C++ harness and cocotb).

Writes bench/results/rtl_sim_speed.json. Build time is excluded (reported apart); the run covers
streaming the frames in, the simulation, and reading the outputs back. The C++ harness runs
enough frames for about five million cycles (1,000 to 20,000 frames).
"""

from __future__ import annotations

import time

from _common import SHARED, require, write_result
from lowbit.sw.datasets import load_mnist_idx

import lowbit

BUDGETS = (1000, 2000, 5000)  # 500 is under the fully folded estimate (~697 LUT4)


def main():
    import numpy as np

    net = lowbit.load(require(SHARED / "models" / "tfc" / "TFC_1W1A.onnx"))
    images, _ = load_mnist_idx(require(SHARED / "data" / "mnist"))
    x = (images.astype(np.float32) / 255).reshape(-1, 1, 28, 28)
    x = np.concatenate([x, x])  # 20,000 frames: enough cycles that start-up does not dominate
    rows = []
    for budget in BUDGETS:
        design = lowbit.compile(net, lut_budget=budget)
        start = time.perf_counter()
        design.simulate(x[:3])  # builds (or finds) the model
        build = time.perf_counter() - start
        perf_ii = design.perf.ii_cycles
        cpp_frames = int(min(len(x), max(1000, 5_000_000 // perf_ii)))
        for bench, frames in (("cpp", cpp_frames), ("cocotb", 3)):
            result, perf = design.simulate(x[:frames], bench=bench).rtl, design.perf
            row = {"bench": bench, "lut_budget": budget, "ii_cycles": perf.ii_cycles,
                   "frames": frames, "cycles": result.cycles,
                   "seconds": round(result.seconds, 3),
                   "cycles_per_s": round(result.cycles / result.seconds),
                   "frames_per_s": round(frames / result.seconds, 1),
                   "build_seconds_first_call": round(build, 1)}
            rows.append(row)
            print(row, flush=True)
    write_result("rtl_sim_speed", {"model": "TFC_1W1A", "runs": rows})


if __name__ == "__main__":
    main()
