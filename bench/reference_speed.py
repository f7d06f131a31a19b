"""Frames/s on TFC_1W1A: lowbit's reference vs qonnx's executor vs PyTorch float32.

All three in one run on the same machine, on MNIST test images:
- lowbit's bit-packed reference, one batch of 10,000;
- qonnx ``execute_onnx``, one frame at a time as it runs (on the first ``--qonnx-frames``);
- PyTorch float32, the same topology (Linear, BatchNorm, sign; TensorNorm tail), batched.

Writes bench/results/reference_speed.json.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import onnx
from _common import SHARED, best_of, require, write_result
from lowbit.sw import reference
from lowbit.sw.datasets import load_mnist_idx
from lowbit.sw.onnx_import import import_model


def torch_tfc(model_path, net):
    """The same network in PyTorch float32, from the ONNX file's own parameters."""
    import torch

    init = {i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(model_path).graph.initializer}
    bns = [n for n in onnx.load(model_path).graph.node if n.op_type == "BatchNormalization"]
    weights = [torch.tensor(layer.weights, dtype=torch.float32) for layer in net.layers]
    bn = [[torch.tensor(init[i]) for i in n.input[1:]] for n in bns]
    tail = net.layers[-1].tail

    scale = torch.tensor(tail.scale, dtype=torch.float32)
    bias = torch.tensor(tail.bias, dtype=torch.float32)

    def forward(x):
        h = torch.sign(torch.sign(2 * x.reshape(len(x), -1) - 1) + 0.5)
        for k, w in enumerate(weights):
            h = h @ w.T
            if k < len(bn):
                g, b, m, v = bn[k]
                h = torch.sign(torch.nn.functional.batch_norm(h, m, v, g, b, eps=1e-5) + 1e-30)
        return h * scale + bias

    return forward


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qonnx-frames", type=int, default=500)
    args = parser.parse_args()

    model_path = require(SHARED / "models" / "tfc" / "TFC_1W1A.onnx")
    images, labels = load_mnist_idx(require(SHARED / "data" / "mnist"))
    x = (images.astype(np.float32) / 255).reshape(-1, 1, 28, 28)
    net = import_model(model_path)

    reference.run(net, x[:100])
    t_ref = best_of(lambda: reference.run(net, x))
    y_ref = reference.run(net, x)

    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    forward = torch_tfc(model_path, net)
    xt = torch.tensor(x)
    with torch.no_grad():
        forward(xt[:100])
        t_torch = best_of(lambda: forward(xt))
        agree = float((forward(xt).numpy().argmax(1) == y_ref.argmax(1)).mean())

    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = ModelWrapper(str(model_path)).transform(InferShapes())
        name = m.graph.input[0].name
        n_q = args.qonnx_frames
        start = time.perf_counter()
        for row in x[:n_q]:
            execute_onnx(m, {name: row[None]})
        t_q = time.perf_counter() - start

    ref_fps, torch_fps, q_fps = len(x) / t_ref, len(x) / t_torch, n_q / t_q
    result = {
        "model": "TFC_1W1A",
        "frames": len(x),
        "lowbit_reference_frames_per_s": round(ref_fps),
        "pytorch_float32_frames_per_s": round(torch_fps),
        "qonnx_execute_onnx_frames_per_s": round(q_fps, 1),
        "qonnx_frames_measured": n_q,
        "reference_over_pytorch": round(ref_fps / torch_fps, 2),
        "reference_over_qonnx": round(ref_fps / q_fps),
        "reference_top1": float((y_ref.argmax(1) == labels).mean()),
        "pytorch_argmax_agreement_with_reference": agree,
        "threads": os.cpu_count(),
    }
    for k, v in result.items():
        print(f"{k:42s} {v}")
    write_result("reference_speed", result)


if __name__ == "__main__":
    main()
