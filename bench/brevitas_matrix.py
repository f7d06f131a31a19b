"""Brevitas's stock quantizers, as people configure them, through lowbit.

For each configuration of ``tests/brevitas_models.stock_matrix`` (weights
``Int8WeightPerTensorFloat`` / ``Int8WeightPerChannelFloat`` at 2, 3, 4 and 8 bits, the
fixed-point variants, binary and ternary constants; activations ``Int8ActPerTensorFloat``,
``Uint8ActPerTensorFloat`` (``QuantReLU``) and ``QuantHardTanh`` at 2, 3, 4 and 8 bits; float and
``Int32Bias`` biases; 8- and 4-bit input quantizers; MLP and CNN) and both export paths
(TorchScript and dynamo): imported or refused (with the line); the reference against qonnx's
executor on 32 random inputs (every hidden quantized tensor compared with ==, the output's
largest difference in float32 ulps of the last sum); and, on the TorchScript export, the RTL in
Verilator at the default folding on 4 frames (outputs == reference, measured II and latency ==
model). Writes bench/results/brevitas_matrix.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from _common import REPO, write_result

sys.path.insert(0, str(REPO / "tests"))


def compare(net, path, x):
    """Hidden tensors equal (==) and the output's difference from qonnx's executor."""
    from lowbit.sw import reference
    from oracles import qonnx_run

    y, inter = reference.run(net, x, intermediates=True)
    hidden = [layer.activation.tensor for layer in net.layers[:-1]]
    y_q, tensors_q = qonnx_run(path, x, hidden + [net.input.tensor])
    mismatched = []
    for layer in net.layers[:-1]:
        t = layer.activation.tensor
        ours = inter[t].astype(np.float32) * np.float32(layer.activation.out.scale)
        if layer.window is not None:
            ours = reference.onnx_order(ours, tensors_q[t].shape[1:])
        if not np.array_equal(ours.reshape(len(x), -1), tensors_q[t].reshape(len(x), -1)):
            mismatched.append(t)
    ulp = float(np.spacing(np.float32(np.abs(y_q).max() + 1)))
    diff = float(np.abs(y - y_q).max())
    return {"hidden_tensors": len(hidden), "hidden_mismatched": mismatched,
            "output_max_diff": diff, "output_diff_ulps": round(diff / ulp, 2),
            "last_fan_in": net.layers[-1].in_features,
            "argmax_equal": bool(np.array_equal(y.argmax(1), y_q.argmax(1)))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="run only configurations whose id contains this")
    parser.add_argument("--no-rtl", action="store_true")
    args = parser.parse_args()
    from brevitas_models import brevitas_stock, export_brevitas, stock_matrix

    import lowbit

    warnings.simplefilter("ignore")
    work = Path(tempfile.mkdtemp(prefix="lowbit-bench-brevitas-"))
    rows = []
    for name, kwargs in stock_matrix():
        if args.only and args.only not in name:
            continue
        for dynamo in (False, True):
            row = {"config": name, "export": "dynamo" if dynamo else "torchscript", **kwargs}
            module, shape = brevitas_stock(**kwargs)
            path = export_brevitas(module, shape, work / f"{name}-{dynamo}.onnx", dynamo)
            try:
                net = lowbit.load(path)
            except lowbit.LowbitError as exc:
                row.update(imported=False, refused=str(exc))
                rows.append(row)
                print(row, flush=True)
                continue
            row["imported"] = True
            row["weight_kinds"] = [layer.weight_kind.value for layer in net.layers]
            x = np.random.default_rng(1).random((32, *shape), dtype=np.float32)
            row.update(compare(net, path, x))
            if not dynamo and not args.no_rtl:
                start = time.perf_counter()
                design = lowbit.compile(net)
                sim = design.simulate(x[:4])
                row["rtl"] = {"engines": [lp.engine for lp in design.perf.layers],
                              "outputs_equal_reference": sim.outputs_equal,
                              "cycles_equal_model": sim.cycles_equal,
                              "ii_cycles": design.perf.ii_cycles,
                              "seconds": round(time.perf_counter() - start, 1)}
            rows.append(row)
            print(row, flush=True)
        write_result("brevitas_matrix", {"runs": rows})
    imported = [r for r in rows if r["imported"]]
    summary = {"configurations": len(rows), "imported": len(imported),
               "hidden_exact": sum(not r["hidden_mismatched"] for r in imported),
               "max_output_diff_ulps": max((r["output_diff_ulps"] for r in imported), default=0),
               "rtl_equal": sum(r.get("rtl", {}).get("outputs_equal_reference", False)
                                and r["rtl"]["cycles_equal_model"] for r in imported)}
    print(summary)
    write_result("brevitas_matrix", {"summary": summary, "runs": rows})


if __name__ == "__main__":
    main()
