"""CNV_1W1A (bnn_pynq's CIFAR-10 topology, random weights): ONNX → Verilog time, cycles per
frame at ``auto`` folding for several LUT budgets, and the time the buffer/FIFO analysis takes.

The model is ``model_with_cfg("cnv_1w1a", pretrained=False)`` with randomized BatchNorm
statistics, exported to QONNX with Brevitas (TorchScript path). Per LUT budget: seconds for
import, folding search, cycle/buffer analysis (``sim.perf.analyze``: II, latency and the FIFO
depths, all analytic) and Verilog generation; the II, latency, frames/s at 100 MHz, the LUT
estimate, ECP5 block RAMs and the window generators' frame-bank bits. With ``--rtl N`` it also
runs N frames through Verilator at the smallest budget and records whether the outputs equal
the reference and the measured II/latency equal the model.

With ``--target T`` those runs use ``auto`` for that device (its LUT and block-RAM budgets)
instead, and ``--synth DIR`` synthesizes that design with ``lowbit synth`` into DIR: LUT4, FF,
block RAM, fmax, frames/s and latency at fmax. A DIR that already holds ``synth.json`` and the same
``synth_top.v`` (a ``lowbit synth MODEL --target T -o DIR`` of this model) is read, not re-run.
The sections not re-run (``rtl``, ``synth``) are kept from the last result. ``before`` is the
figure measured before line-buffer work started (README, 2026-11: whole-frame windows, the old
estimates), ``frame_buffers`` the last one with whole-frame windows (2026-12-01).

Writes bench/results/cnv.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import REPO, RESULTS, write_result
from lowbit.export.verilog import generate
from lowbit.sim.auto import auto_folding
from lowbit.sim.perf import analyze
from lowbit.sw import reference
from lowbit.sw.onnx_import import import_model

import lowbit

BUDGETS = [20000, 10000, 60000]  # the first also runs in Verilator with --rtl

# CNV_1W1A on ECP5-85k with auto, measured with lowbit synth in 2026-11 (README): whole-frame
# windows, read when the frame ended; block RAM stopped auto
BEFORE = {"target": "ecp5-85k", "luts": 25407, "ffs": 20417, "bram_blocks": 150,
          "fmax_mhz": 70.8, "ii_cycles": 41472, "latency_cycles": 268317,
          "frames_per_s": 1706, "latency_ms": 3.79, "window_storage_bits": 237312}
# the same with the estimates rebuilt and weight ROMs placed by cost (2026-12-01, lowbit synth,
# before line buffers): whole-frame windows, read as soon as a window's words were in
FRAME_BUFFERS = {"target": "ecp5-85k", "luts": 52606, "ffs": 26675, "bram_blocks": 198,
                 "fmax_mhz": 51.93, "ii_cycles": 10368, "latency_cycles": 51718,
                 "frames_per_s": 5009, "latency_ms": 0.996, "window_storage_bits": 237312,
                 "buffer_bits": 253360}


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
                        help="also run N frames in Verilator at the smallest budget (or --target)")
    parser.add_argument("--target", help="the design for --rtl and --synth: auto for this device")
    parser.add_argument("--synth", metavar="DIR", help="synthesize the --target design into DIR")
    args = parser.parse_args()
    if args.synth and not args.target:
        parser.error("--synth needs --target")
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
    old = json.loads((RESULTS / "cnv.json").read_text()) if (RESULTS / "cnv.json").exists() else {}
    payload["before"] = BEFORE
    payload["frame_buffers"] = FRAME_BUFFERS
    kwargs = {"target": args.target} if args.target else {"lut_budget": BUDGETS[0]}
    design = lowbit.compile(net, **kwargs)
    perf = design.perf
    chosen = {**kwargs, "pe_simd": [(f.pe, f.simd) for f in design.folding.layers],
              "lut_weights": [bool(f.lut_weights) for f in design.folding.layers]}
    if args.rtl:
        frames = x[:args.rtl]
        sim, seconds = timed(lambda: design.simulate(frames))
        y, result = sim.outputs, sim.rtl
        payload["rtl"] = {
            **chosen, "frames": args.rtl,
            "equal_to_reference": bool(np.array_equal(y, reference.run(net, frames))),
            "ii_cycles": {"model": perf.ii_cycles,
                          "measured": result.ii_cycles(perf.out_beats)},
            "latency_cycles": {"model": perf.latency_cycles,
                               "measured": result.latency_cycles(perf.in_beats,
                                                                 perf.out_beats)},
            "seconds": seconds,
        }
        print(payload["rtl"], flush=True)
    elif "rtl" in old:
        payload["rtl"] = old["rtl"]
    if args.synth:
        payload["synth"] = {**chosen, **synthesized(design, args.target, Path(args.synth))}
        print(payload["synth"], flush=True)
    elif "synth" in old:
        payload["synth"] = old["synth"]
    write_result("cnv", payload)


def synthesized(design, target: str, folder: Path) -> dict:
    """``lowbit synth`` of ``design`` into ``folder``, or the result already there when its
    Verilog is this design's."""
    from lowbit.export.synth import SynthTop
    from lowbit.export.verilog import convert

    text = convert(SynthTop(design.plan, design.family), "synth_top")
    done = folder / "synth.json"
    reused = (done.exists() and (folder / "synth_top.v").exists()
              and (folder / "synth_top.v").read_text() == text)
    if reused:
        r = json.loads(done.read_text())
    else:
        start = time.perf_counter()
        r = design.synthesize(target, out=folder, force=True,
                              progress=lambda m: print("   ", m, flush=True)).to_json()
        r["seconds"] = round(time.perf_counter() - start, 1)
    perf = design.perf
    fmax = r["fmax_mhz"]
    return {"luts": r["luts"], "ffs": r["ffs"], "bram_blocks": r["bram_blocks"],
            "estimated_luts": perf.estimated_luts, "estimated_ffs": perf.estimated_ffs,
            "estimated_bram_blocks": perf.bram_blocks(design.family), "fmax_mhz": fmax,
            "ii_cycles": perf.ii_cycles, "latency_cycles": perf.latency_cycles,
            "frames_per_s": round(fmax * 1e6 / perf.ii_cycles),
            "latency_ms": round(perf.latency_cycles / (fmax * 1e3), 3),
            "window_storage_bits": sum(lp.window_storage_bits for lp in perf.layers),
            "buffer_bits": perf.buffer_bits,
            "seconds": r.get("seconds"), "reused_lowbit_synth_output": reused}


if __name__ == "__main__":
    main()
