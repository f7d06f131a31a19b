"""Verilog hashes of TFC_1W1A, TFC_2W2A, CNV_1W1A and the built-in model, per family, at the
foldings ``auto`` chose before the architecture rework (lut budget 5,000; CNV 20,000), against
the hashes recorded then (bench/results/verilog_hashes_before.json, made by the code at
commit 789a542), and whether ``auto`` still chooses those foldings. Equal hashes mean the
rework left the hardware byte for byte as it was; the cycle model, the LUT and flip-flop
estimates are compared too. Writes bench/results/verilog_identity.json.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from pathlib import Path

from _common import REPO, RESULTS, SHARED, require, write_result
from lowbit.export.verilog import generate
from lowbit.hw.plan import Folding, LayerFolding
from lowbit.sim.perf import analyze

import lowbit


def models() -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    from brevitas_models import brevitas_cnv, export_brevitas

    cnv = export_brevitas(*brevitas_cnv(), Path(tempfile.mkdtemp()) / "cnv.onnx", dynamo=False)
    tfc = SHARED / "models" / "tfc"
    return {"TFC_1W1A": require(tfc / "TFC_1W1A.onnx"), "TFC_2W2A": require(tfc / "TFC_2W2A.onnx"),
            "CNV_1W1A": cnv, "digits_bnn": lowbit.BUILT_IN_MODEL}


def main():
    before = json.loads((RESULTS / "verilog_hashes_before.json").read_text())
    rows = []
    for name, path in models().items():
        net = lowbit.load(path)
        for family in ("ice40", "ecp5"):
            old = before[f"{name}/{family}"]
            folding = Folding(tuple(LayerFolding(layer.name, pe, simd, operand_register=reg)
                                    for layer, (pe, simd, reg) in zip(net.layers,
                                                                      old["folding"])))
            perf = analyze(net, folding)
            text = generate(perf, family)
            digest = hashlib.sha256(text.encode()).hexdigest()
            rows.append({"model": name, "family": family, "folding": old["folding"],
                         "sha256": digest, "sha256_before": old["sha256"],
                         "identical": digest == old["sha256"],
                         "ii": [perf.ii_cycles, old["ii"]],
                         "latency": [perf.latency_cycles, old["latency"]],
                         "estimated_luts": [perf.estimated_luts, old["est_luts"]],
                         "estimated_ffs": [perf.estimated_ffs, old["est_ffs"]],
                         "bram_blocks": {"ice40": [perf.bram_blocks("ice40"), old["bram_ice40"]],
                                         "ecp5": [perf.bram_blocks("ecp5"), old["bram_ecp5"]]}})
            budget = 20000 if name == "CNV_1W1A" else 5000
            try:
                now = lowbit.compile(net, lut_budget=budget, family=family).folding
            except lowbit.LowbitError as exc:  # the budget is now under the smallest design
                rows[-1]["auto_now"], rows[-1]["auto_unchanged"] = str(exc), False
            else:
                rows[-1]["auto_now"] = [[lf.pe, lf.simd, lf.operand_register]
                                        for lf in now.layers]
                rows[-1]["auto_unchanged"] = (rows[-1]["auto_now"]
                                              == [list(f) for f in old["folding"]])
            print(rows[-1]["model"], family, rows[-1]["identical"], rows[-1]["auto_unchanged"],
                  flush=True)
    write_result("verilog_identity", {"all_identical": all(r["identical"] for r in rows),
                                      "auto_unchanged": all(r["auto_unchanged"] for r in rows),
                                      "runs": rows})


if __name__ == "__main__":
    main()
