"""Seconds from ONNX to Verilog for TFC_1W1A (import, folding, Verilog), best of 3.

Writes bench/results/compile_speed.json.
"""

from __future__ import annotations

import time

from _common import SHARED, require, write_result

import lowbit


def main():
    path = require(SHARED / "models" / "tfc" / "TFC_1W1A.onnx")
    rows = []
    for budget in (1000, 5000, 20000):  # 500 is under the fully folded estimate (~697 LUT4)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            design = lowbit.compile(lowbit.load(path), lut_budget=budget)
            text = design.verilog
            best = min(best, time.perf_counter() - start)
        rows.append({"lut_budget": budget, "ii_cycles": design.perf.ii_cycles,
                     "verilog_bytes": len(text), "seconds": round(best, 3)})
        print(rows[-1], flush=True)
    write_result("compile_speed", {"model": "TFC_1W1A", "runs": rows})


if __name__ == "__main__":
    main()
