"""lowbit's LUT4, flip-flop and block-RAM estimates against yosys's counts, per design and family.

The designs: the built-in model and Xilinx's TFC_1W1A / TFC_2W2A at their ``auto`` foldings
(within 5,000 LUT4, and for an UP5K), two small CNNs of the kind the suite runs (a padded binary
convolution with pooling; a strided 4-bit one), and CNV_1W1A (Brevitas bnn_pynq topology, random
weights) within 20,000 LUT4. Each goes through ``synth_ice40`` and ``synth_ecp5 -nowidelut``
(yosys only, in the synthesis wrapper, whose input shift register's flip-flops are taken off).
LUT4 counts a CCU2C as two (``lowbit.export.synth.count_cells``). A row is within when LUT4 and
FF are within ±15 % of yosys and the block RAMs are equal: the bar of issue 16. Writes
bench/results/estimate_accuracy.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _common import RESULTS, auto_designs, write_result, yosys_cells
from bram_estimate import cnv_model
from lowbit.export.synth import count_cells
from lowbit.sw.synthetic import conv_net

TOLERANCE = 0.15
MODELS = ["digits_bnn", "TFC_1W1A", "TFC_2W2A", "conv_pool", "conv_int4", "CNV_1W1A"]


def make_model(name: str, work: Path) -> Path:
    import onnx

    if name == "CNV_1W1A":
        return cnv_model(work / "cnv.onnx")
    model = (conv_net((2, 12, 12), (("conv", 16, 3, 1, 1), ("pool", 2), ("fc", 10)), seed=3)
             if name == "conv_pool" else
             conv_net((1, 11, 11), (("conv", 8, 3, 2, 0), ("fc", 10)), weights="int4",
                      act_bits=2, in_bits=2, seed=4))
    path = work / f"{name}.onnx"
    onnx.save(model, str(path))
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lowbit-bench-estimate-"))
    old = RESULTS / "estimate_accuracy.json"
    kept = ([r for r in json.loads(old.read_text())["runs"] if r["model"] not in args.models]
            if old.exists() else [])  # the models not run again keep their rows
    rows = []
    for row, design in auto_designs(args.models, work, make_model):
        rows.append(row)
        if design is not None:
            cells, seconds = yosys_cells(design, work / f"{row['model']}-{len(rows)}")
            luts, ffs, _, brams = count_cells(cells)
            ffs -= design.perf.in_width  # the wrapper's input shift register
            p = design.perf
            row.update(luts={"estimate": p.estimated_luts, "yosys": luts,
                             "ratio": round(p.estimated_luts / max(luts, 1), 3)},
                       ffs={"estimate": p.estimated_ffs, "yosys": ffs,
                            "ratio": round(p.estimated_ffs / max(ffs, 1), 3)},
                       bram={"estimate": p.bram_blocks(design.family), "yosys": brams},
                       yosys_seconds=seconds)
            row["within"] = (abs(row["luts"]["ratio"] - 1) <= TOLERANCE
                             and abs(row["ffs"]["ratio"] - 1) <= TOLERANCE
                             and row["bram"]["estimate"] == brams)
        print(row, flush=True)
        runs = sorted(kept + rows, key=lambda r: MODELS.index(r["model"])
                      if r["model"] in MODELS else len(MODELS))
        write_result("estimate_accuracy", {
            "tolerance": TOLERANCE, "rows_within": sum(r.get("within", False) for r in runs),
            "runs": runs})


if __name__ == "__main__":
    main()
