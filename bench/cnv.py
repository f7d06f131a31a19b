"""CNV_1W1A (bnn_pynq's CIFAR-10 topology, random weights): ONNX → Verilog time, cycles per
frame at ``auto`` folding for several LUT budgets, and the time the buffer/FIFO analysis takes.

The model is ``model_with_cfg("cnv_1w1a", pretrained=False)`` with randomized BatchNorm
statistics, exported to QONNX with Brevitas (TorchScript path). Per LUT budget: seconds for
import, folding search, cycle/buffer analysis (``sim.perf.analyze``: II, latency and the FIFO
depths, all analytic) and Verilog generation; the II, latency, frames/s at 100 MHz, the LUT
estimate, ECP5 block RAMs and the window generators' frame-bank bits. With ``--rtl N`` it also
runs N frames through Verilator at the smallest budget and records whether the outputs equal
the reference and the measured II/latency equal the model.

Writes bench/results/cnv.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import REPO, write_result
from lowbit.export.verilog import generate
from lowbit.sim.auto import auto_folding
from lowbit.sim.perf import analyze
from lowbit.sw import reference
from lowbit.sw.onnx_import import import_model

import lowbit

BUDGETS = [20000, 10000, 60000]  # the first also runs in Verilator with --rtl


def cnv_model(path: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    from brevitas_models import brevitas_cnv, export_brevitas

    module, shape = brevitas_cnv()
    return export_brevitas(module, shape, path, dynamo=False)


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, round(time.perf_counter() - start, 3)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rtl", type=int, default=0, metavar="N",
                        help="also run N frames in Verilator at the smallest budget")
    args = parser.parse_args()
    path = cnv_model(Path(tempfile.mkdtemp(prefix="lowbit-bench-cnv-")) / "cnv_1w1a.onnx")
    rows = []
    for budget in BUDGETS:
        net, t_import = timed(lambda: import_model(path))
        folding, t_fold = timed(lambda: auto_folding(net, lut_budget=budget))
        perf, t_analyze = timed(lambda: analyze(net, folding))
        text, t_verilog = timed(lambda: generate(perf))
        row = {
            "lut_budget": budget, "pe_simd": [(f.pe, f.simd) for f in folding.layers],
            "ii_cycles": perf.ii_cycles, "latency_cycles": perf.latency_cycles,
            "frames_per_s_at_100mhz": round(100e6 / perf.ii_cycles),
            "estimated_luts": perf.estimated_luts,
            "ecp5_bram_blocks": perf.bram_blocks("ecp5"),
            "window_storage_bits": sum(lp.window_storage_bits for lp in perf.layers),
            "fifo_depths": [lp.fifo_depth for lp in perf.layers],
            "bottleneck": max(perf.layers, key=lambda lp: lp.ii_cycles).name,
            "seconds": {"import": t_import, "folding": t_fold, "analyze_fifos": t_analyze,
                        "verilog": t_verilog,
                        "onnx_to_verilog": round(t_import + t_fold + t_analyze + t_verilog, 3)},
            "verilog_bytes": len(text),
        }
        rows.append(row)
        print(row, flush=True)
    net = import_model(path)
    x = np.random.default_rng(0).random((100, 3, 32, 32), dtype=np.float32)
    _, t_ref = timed(lambda: reference.run(net, x))
    payload = {"model": "CNV_1W1A (random weights)", "runs": rows,
               "reference_frames_per_s": round(100 / t_ref, 1)}
    if args.rtl:
        design = lowbit.compile(net, lut_budget=BUDGETS[0])
        frames = x[:args.rtl]
        sim, seconds = timed(lambda: design.simulate(frames))
        y, result, perf = sim.outputs, sim.rtl, design.perf
        payload["rtl"] = {
            "lut_budget": BUDGETS[0], "frames": args.rtl,
            "equal_to_reference": bool(np.array_equal(y, reference.run(net, frames))),
            "ii_cycles": {"model": perf.ii_cycles,
                          "measured": result.ii_cycles(perf.out_beats)},
            "latency_cycles": {"model": perf.latency_cycles,
                               "measured": result.latency_cycles(perf.in_beats,
                                                                 perf.out_beats)},
            "seconds": seconds,
        }
        print(payload["rtl"], flush=True)
    write_result("cnv", payload)


if __name__ == "__main__":
    main()
