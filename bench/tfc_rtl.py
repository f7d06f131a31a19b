"""The TFC networks in RTL on MNIST: outputs == reference and measured cycles == model.

For each of ``--models`` (TFC_1W1A, TFC_1W2A, TFC_2W2A) runs auto folding and four fixed foldings
on ``--images`` test images (default 1,000) with the Verilator C++ harness (the fully folded
one on a tenth of them). Writes bench/results/tfc_rtl.json, keeping the entries of models not
run this time.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from _common import RESULTS, SHARED, require, write_result
from lowbit.hw.plan import Folding, LayerFolding
from lowbit.sim.auto import auto_folding
from lowbit.sw import reference
from lowbit.sw.datasets import load_mnist_idx
from lowbit.sw.onnx_import import import_model

import lowbit

FIXED = {
    "fully-folded": [(1, 1), (1, 1), (1, 1), (1, 1)],
    "narrow": [(4, 8), (2, 4), (2, 4), (1, 4)],
    "medium": [(16, 49), (16, 16), (16, 16), (10, 16)],
    "wide-label-select": [(8, 112), (8, 32), (8, 32), (5, 32)],
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--models", nargs="+", default=["TFC_1W1A", "TFC_1W2A", "TFC_2W2A"])
    args = parser.parse_args()
    images, labels = load_mnist_idx(require(SHARED / "data" / "mnist"))
    x = (images[: args.images].astype(np.float32) / 255).reshape(-1, 1, 28, 28)
    old = RESULTS / "tfc_rtl.json"
    models = json.loads(old.read_text()).get("models", {}) if old.exists() else {}
    for name in args.models:
        models[name] = run_model(name, x)
        write_result("tfc_rtl", {"models": models})


def run_model(name: str, x: np.ndarray) -> list[dict]:
    net = import_model(require(SHARED / "models" / "tfc" / f"{name}.onnx"))
    y_ref = reference.run(net, x)
    foldings = {"auto": auto_folding(net)}
    for folding_name, pairs in FIXED.items():
        foldings[folding_name] = Folding(tuple(LayerFolding(layer.name, pe, simd)
                                               for layer, (pe, simd) in zip(net.layers, pairs)),
                                         label_select=folding_name.endswith("label-select"))
    rows = []
    for folding_name, folding in foldings.items():
        frames = x if folding_name != "fully-folded" else x[: max(3, len(x) // 10)]
        design = lowbit.compile(net, folding)
        sim = design.simulate(frames)
        y, ints, result, perf = sim.outputs, sim.ints, sim.rtl, design.perf
        if folding.label_select:
            equal = bool(np.array_equal(ints, y_ref[: len(frames)].argmax(1)))
        else:
            equal = bool(np.array_equal(y, y_ref[: len(frames)]))
        measured = {"ii_cycles": result.ii_cycles(perf.out_beats),
                    "latency_cycles": result.latency_cycles(perf.in_beats, perf.out_beats)}
        row = {"network": name, "folding": folding_name,
               "engines": [lp.engine for lp in perf.layers],
               "pe_simd": [(f.pe, f.simd) for f in folding.layers],
               "label_select": folding.label_select, "images": len(frames),
               "outputs_equal_reference": equal,
               "model": {"ii_cycles": perf.ii_cycles, "latency_cycles": perf.latency_cycles},
               "rtl": measured,
               "cycles_equal_model": measured == {"ii_cycles": perf.ii_cycles,
                                                  "latency_cycles": perf.latency_cycles},
               "simulated_cycles": result.cycles,
               "cycles_per_s": round(result.cycles / result.seconds)}
        rows.append(row)
        print(row, flush=True)
    return rows


if __name__ == "__main__":
    main()
