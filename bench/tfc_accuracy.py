"""TFC networks on all 10,000 MNIST test images: lowbit's reference against qonnx's executor.

For each model lowbit can import, records both top-1 accuracies, how many images get the same
argmax, and how many float outputs are bit-identical. qonnx runs frame by frame (minutes).
Writes bench/results/tfc_accuracy.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from _common import SHARED, require, write_result
from lowbit.sw import reference
from lowbit.sw.datasets import load_mnist_idx
from lowbit.sw.onnx_import import import_model

from lowbit.errors import LowbitError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def main():
    from oracles import qonnx_run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--models", nargs="*", default=["TFC_1W1A", "TFC_1W2A", "TFC_2W2A"])
    args = parser.parse_args()
    images, labels = load_mnist_idx(require(SHARED / "data" / "mnist"))
    x = (images[: args.images].astype(np.float32) / 255).reshape(-1, 1, 28, 28)
    labels = labels[: args.images]
    rows = []
    for name in args.models:
        path = require(SHARED / "models" / "tfc" / f"{name}.onnx")
        try:
            net = import_model(path)
        except LowbitError as exc:
            rows.append({"model": name, "imported": False, "error": str(exc)})
            print(rows[-1], flush=True)
            continue
        y = reference.run(net, x)
        start = time.perf_counter()
        y_q, _ = qonnx_run(path, x)
        rows.append({
            "model": name, "imported": True, "images": len(x),
            "lowbit_top1": float((y.argmax(1) == labels).mean()),
            "qonnx_top1": float((y_q.argmax(1) == labels).mean()),
            "same_argmax": int((y.argmax(1) == y_q.argmax(1)).sum()),
            "bit_identical_outputs": int(np.all(y == y_q, axis=1).sum()),
            "qonnx_seconds": round(time.perf_counter() - start, 1),
        })
        print(rows[-1], flush=True)
    write_result("tfc_accuracy", {"runs": rows})


if __name__ == "__main__":
    main()
