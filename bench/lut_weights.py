"""Weight ROMs in block RAM against the same ROMs in logic (``lut_weights``), per design.

For each model and family, the ``auto`` folding (5,000 LUT4) is built twice, once as ``auto``
places the weights and once with every layer's ``lut_weights`` set, and both go through
``synth_ice40`` / ``synth_ecp5 -nowidelut`` (yosys only: no place and route). The LUT4 and
block RAMs yosys counts stand beside lowbit's estimates, so the estimate's price of a ROM in
logic is checked against synthesis. Writes bench/results/lut_weights.json.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import SHARED, require, write_result, yosys_cells

import lowbit

CELLS = {"ice40": ("SB_LUT4", "SB_RAM40_4K"), "ecp5": ("LUT4", "DP16KD")}


def yosys(design, work: Path) -> dict:
    lut, ram = CELLS[design.family]
    cells, seconds = yosys_cells(design, work)
    return {"luts": cells.get(lut, 0), "bram": cells.get(ram, 0), "yosys_seconds": seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["digits_bnn", "TFC_1W1A"])
    parser.add_argument("--families", nargs="+", default=["ice40"])
    args = parser.parse_args()
    paths = {"digits_bnn": lowbit.BUILT_IN_MODEL}
    work = Path(tempfile.mkdtemp(prefix="lowbit-bench-lut-weights-"))
    rows = []
    for name in args.models:
        path = paths.get(name) or require(SHARED / "models" / "tfc" / f"{name}.onnx")
        net = lowbit.load(path)
        for family in args.families:
            placed = lowbit.compile(net, family=family)
            data = placed.folding.to_json()
            for entry in data["layers"]:
                entry["lut_weights"] = True
            in_luts = lowbit.compile(net, folding=data, family=family)
            row = {"model": name, "family": family,
                   "pe_simd": [(lf.pe, lf.simd) for lf in placed.folding.layers]}
            for label, design in (("placed", placed), ("in_luts", in_luts)):
                row[label] = {"storage": [lp.weight_storage for lp in design.perf.layers],
                              "estimated_luts": design.perf.estimated_luts,
                              "estimated_bram": design.perf.bram_blocks(family),
                              **yosys(design, work / f"{name}-{family}-{label}")}
            row["luts_added"] = row["in_luts"]["luts"] - row["placed"]["luts"]
            row["estimated_luts_added"] = (row["in_luts"]["estimated_luts"]
                                           - row["placed"]["estimated_luts"])
            row["bram_saved"] = row["placed"]["bram"] - row["in_luts"]["bram"]
            rows.append(row)
            print(row, flush=True)
            write_result("lut_weights", {"runs": rows})


if __name__ == "__main__":
    main()
