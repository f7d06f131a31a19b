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
import tempfile
from pathlib import Path

from _common import SHARED, require, write_result, yosys_cells
from bram_estimate import cnv_model
from lowbit.export.synth import count_cells
from lowbit.sw.synthetic import conv_net

import lowbit

TOLERANCE = 0.15
MODELS = ["digits_bnn", "TFC_1W1A", "TFC_2W2A", "conv_pool", "conv_int4", "CNV_1W1A"]


def model_path(name: str, work: Path) -> Path:
    import onnx

    if name == "digits_bnn":
        return lowbit.BUILT_IN_MODEL
    if name.startswith("TFC"):
        return require(SHARED / "models" / "tfc" / f"{name}.onnx")
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
    rows = []
    for name in args.models:
        net = lowbit.load(model_path(name, work))
        options = ([("auto, 20,000 LUT4", {"lut_budget": 20000})] if name == "CNV_1W1A" else
                   [("auto, 5,000 LUT4", {})] if name.startswith("conv") else
                   [("auto, 5,000 LUT4", {}), ("auto, ice40-up5k", {"target": "ice40-up5k"})])
        for label, kwargs in options:
            for family in ("ice40", "ecp5"):
                if "target" in kwargs and family == "ecp5":
                    continue
                try:
                    design = lowbit.compile(net, family=family, **kwargs)
                except lowbit.LowbitError as exc:
                    rows.append({"model": name, "folding": label, "family": family,
                                 "does_not_fit": str(exc)})
                    print(rows[-1], flush=True)
                    continue
                cells, seconds = yosys_cells(design, work / f"{name}-{family}-{len(rows)}")
                luts, ffs, _, brams = count_cells(cells)
                ffs -= design.perf.in_width  # the wrapper's input shift register
                p = design.perf
                row = {"model": name, "folding": label, "family": family,
                       "pe_simd": [(f.pe, f.simd) for f in design.folding.layers],
                       "luts": {"estimate": p.estimated_luts, "yosys": luts,
                                "ratio": round(p.estimated_luts / max(luts, 1), 3)},
                       "ffs": {"estimate": p.estimated_ffs, "yosys": ffs,
                               "ratio": round(p.estimated_ffs / max(ffs, 1), 3)},
                       "bram": {"estimate": p.bram_blocks(family), "yosys": brams},
                       "yosys_seconds": seconds}
                row["within"] = (abs(row["luts"]["ratio"] - 1) <= TOLERANCE
                                 and abs(row["ffs"]["ratio"] - 1) <= TOLERANCE
                                 and p.bram_blocks(family) == brams)
                rows.append(row)
                print(row, flush=True)
                write_result("estimate_accuracy", {
                    "tolerance": TOLERANCE, "rows_within": sum(r.get("within", False)
                                                               for r in rows),
                    "runs": rows})


if __name__ == "__main__":
    main()
