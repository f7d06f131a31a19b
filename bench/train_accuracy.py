"""Digits test accuracy for every training method, against a float baseline of the same
architecture (64-256-256-10), trained by ``lowbit.sw.train`` with its defaults (60 epochs).

For each low-bit method the trained network is exported to QONNX and imported back: the accuracy
reported is lowbit's bit-exact reference on the exported model (the number the hardware gives),
with the torch model's beside it. Writes bench/results/train_accuracy.json.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _common import write_result
from lowbit.sw import reference
from lowbit.sw.datasets import load_digits_split
from lowbit.sw.onnx_export import export_qonnx
from lowbit.sw.onnx_import import import_model
from lowbit.sw.train import METHODS, train

FLOORS = {"float": 97.0, "bnn": 90.0, "twn": 94.0, "inq": 95.0}


def main():
    data = load_digits_split()
    work = Path(tempfile.mkdtemp(prefix="lowbit-train-"))
    rows = []
    for method in METHODS:
        result = train(data, method)
        row = {"method": method, "torch_accuracy": round(result.test_accuracy, 2),
               "seconds": round(result.seconds, 1), "epochs": result.epochs,
               "floor": FLOORS.get(method)}
        if method != "float":
            info = export_qonnx(result.model, data, work / f"{method}.onnx")
            net = import_model(work / f"{method}.onnx")
            y = reference.run(net, data.x_test)
            row["lowbit_accuracy"] = round(100 * float((y.argmax(1) == data.y_test).mean()), 2)
            row["weight_kinds"] = [layer.weight_kind.value for layer in net.layers]
            row["ttq_rounded"] = bool(info["snapped"])
        rows.append(row)
        print(row, flush=True)
    write_result("train_accuracy", {"dataset": "digits (scikit-learn), 1,437 train / 360 test",
                                    "architecture": "64-256-256-10", "runs": rows})


if __name__ == "__main__":
    sys.exit(main())
