"""lowbit's block-RAM estimate against yosys's count, per design and family.

For TFC_1W1A, TFC_2W2A (zero-skip MVAU layers), CNV_1W1A (random weights, Brevitas bnn_pynq
topology) and the built-in model, at their ``auto`` foldings (TFC and the built-in model within
5,000 LUT4 and on an UP5K, CNV within 20,000), the design in its synthesis wrapper goes through
``synth_ice40`` and ``synth_ecp5 -nowidelut`` (yosys only: no place and route), and the
SB_RAM40_4K / DP16KD cells yosys instantiates are set beside ``NetworkPerf.bram_blocks``, which
sizes the memories the RTL builds (weight ROM words as the units store them, input banks, frame
banks). Writes bench/results/bram_estimate.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _common import REPO, auto_designs, write_result, yosys_cells
from lowbit.export.synth import count_cells


def cnv_model(path: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    from brevitas_models import brevitas_cnv, export_brevitas

    module, shape = brevitas_cnv()
    return export_brevitas(module, shape, path, dynamo=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+",
                        default=["digits_bnn", "TFC_1W1A", "TFC_2W2A", "CNV_1W1A"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lowbit-bench-bram-"))
    rows = []
    for row, design in auto_designs(args.models, work, lambda _, w: cnv_model(w / "cnv.onnx")):
        rows.append(row)
        if design is not None:
            cells, seconds = yosys_cells(design, work / f"{row['model']}-{len(rows)}")
            count = count_cells(cells)[3]
            estimate = design.perf.bram_blocks(design.family)
            row.update(estimate=estimate, yosys=count, equal=estimate == count,
                       yosys_seconds=seconds)
        print(row, flush=True)
        write_result("bram_estimate", {"runs": rows})


if __name__ == "__main__":
    main()
