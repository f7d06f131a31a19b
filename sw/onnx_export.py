"""Trained :class:`lowbit.sw.train.QuantMLP` networks written as QONNX.

The graph is ``Quant (input) → [Conv → BatchNormalization → BipolarQuant | Quant (→ MaxPool)] ×
convolutions (→ Flatten) → [MatMul → BatchNormalization → BipolarQuant | Quant] × hidden →
MatMul → Mul``, weights as initializers holding the quantized values. Everything is laid out so
the exported model's own float32 arithmetic is exact where lowbit turns it into integers:

- each layer's weights are ``integers × 2^e`` per output channel. A method whose step is not a
  power of two (XNOR's α, TWN's α, DoReFa's 2/(2^k − 1)) exports the same integers with the
  nearest power-of-two step ``s'``; the layer's output is then ``r = s'/s`` times the trained one,
  and the BatchNorm after it takes ``r·mean`` and ``r²·(var + eps)`` (epsilon 0), which gives the
  same normalized value. The last layer divides by ``r`` in its float tail.
- k-bit activations (DoReFa, PACT) quantize at a power-of-two step: the BatchNorm's gamma and beta
  are scaled so the quantizer sees ``s'/s_a`` times its input, the same integer levels come out,
  and the next layer's ``r`` takes the ratio.
- TTQ's learned Wp and Wn share no grid in general: they are rounded to multiples of
  ``max(Wp, Wn) / 16`` (the export says so); every other method exports its own values.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from lowbit.errors import LowbitError

from .weight_grid import integer_grid

__all__ = ["export_qonnx", "ExportInfo"]

QONNX = "qonnx.custom_op.general"


class ExportInfo(dict):
    """What the export changed: ``snapped`` layers (TTQ), the power-of-two ``ratios``."""


def _grid(w: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Integers and a step per output channel with ``ints·step == w`` (to float32 precision)."""
    steps, divisors = integer_grid(w, rtol=1e-5)
    if not np.all(divisors > 0):
        return None
    return np.round(w / steps[:, None]).astype(np.int64), steps


def _pow2(x: np.ndarray) -> np.ndarray:
    return np.exp2(np.round(np.log2(x)))


def export_qonnx(model, data, path) -> ExportInfo:
    """Write ``model`` (a trained :class:`~lowbit.sw.train.QuantMLP`) for ``data``'s inputs."""
    import torch

    if model.method == "float":
        raise LowbitError("float is the baseline: it has no low-bit export", param="method")
    model.train_mode(False)
    inits, nodes = [], []
    info = ExportInfo(snapped=[], ratios=[])

    def const(name: str, value) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    zero = const("zero", np.float32(0))
    nodes.append(helper.make_node(
        "Quant", ["x", const("in_scale", np.float32(data.input_step)), zero,
                  const("in_bits", np.float32(data.input_bits))], ["a0"], domain=QONNX,
        signed=0, narrow=0, rounding_mode="ROUND", name="quant_in"))
    act, rho = "a0", 1.0  # the input's scale ratio against training
    last = len(model.linears) - 1
    convs = len(model.convs)
    for k in range(len(model.linears)):
        with torch.no_grad():
            w = model.weight(k).detach().double().numpy()
        shape = w.shape
        w = w.reshape(shape[0], -1)  # a convolution's weights: a row per output channel
        grid = _grid(w)
        if grid is None:  # TTQ: snap Wp/Wn to a 5-bit grid of the layer
            g = np.abs(w).max() / 16
            w = np.round(w / g) * g
            grid = _grid(w)
            info["snapped"].append(k)
        ints, steps = grid
        new_steps = _pow2(steps)
        ratio = new_steps / steps * rho  # exported z = ratio · trained z, per channel
        info["ratios"].append(ratio.tolist())
        exported = ints * new_steps[:, None]
        if k < convs:
            const(f"w{k}", exported.reshape(shape).astype(np.float32))
            nodes.append(helper.make_node("Conv", [act, f"w{k}"], [f"acc{k}"],
                                          kernel_shape=list(shape[2:]), name=f"conv{k}"))
        else:
            if k == convs and convs:
                nodes.append(helper.make_node("Flatten", [act], [f"flat{k}"], axis=1,
                                              name="flatten"))
                act = f"flat{k}"
            const(f"w{k}", exported.T.astype(np.float32))
            nodes.append(helper.make_node("MatMul", [act, f"w{k}"], [f"acc{k}"], name=f"fc{k}"))
        if k == last:
            nodes.append(helper.make_node("Mul", [f"acc{k}", const(
                "out_scale", (1 / ratio).astype(np.float32))], ["y"], name="out_scale"))
            break
        bn = model.norms[k]
        mean = bn.running_mean.double().numpy() * ratio
        var = (bn.running_var.double().numpy() + bn.eps) * ratio ** 2
        gamma = bn.weight.detach().double().numpy()
        beta = bn.bias.detach().double().numpy()
        out = f"a{k + 1}"
        if model.method in ("bnn", "xnor"):
            nodes += _bn(k, const, gamma, beta, mean, var)
            nodes.append(helper.make_node("BipolarQuant", [f"bn{k}", const(
                f"one{k}", np.float32(1))], [out], domain=QONNX, name=f"quant_a{k + 1}"))
            rho = 1.0
        else:
            bits = model.pact[k].k if model.method == "pact" else model.act_bits
            levels = 2 ** bits - 1
            top = float(model.pact[k].alpha.detach()) if model.method == "pact" else 1.0
            s_a = top / levels
            s_new = float(_pow2(np.array([s_a]))[0])
            c = s_new / s_a
            nodes += _bn(k, const, gamma * c, beta * c, mean, var)
            nodes.append(helper.make_node(
                "Quant", [f"bn{k}", const(f"s_a{k + 1}", np.float32(s_new)), zero,
                          const(f"b_a{k + 1}", np.float32(bits))], [out], domain=QONNX,
                signed=0, narrow=0, rounding_mode="ROUND", name=f"quant_a{k + 1}"))
            rho = c
        act = out
        if k < convs and model.convs[k][1]:
            nodes.append(helper.make_node("MaxPool", [act], [f"pool{k}"], kernel_shape=[2, 2],
                                          strides=[2, 2], name=f"pool{k}"))
            act = f"pool{k}"
    in_shape = [1, *model.image] if convs else [1, model.sizes[0]]
    graph = helper.make_graph(
        nodes, f"lowbit_{model.method}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, model.sizes[-1]])],
        initializer=inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                         helper.make_opsetid(QONNX, 1)])
    onnx_model.ir_version = 8
    onnx_model.producer_name = "lowbit"
    onnx.save(onnx_model, str(path))
    return info


def _bn(k, const, gamma, beta, mean, var) -> list:
    names = [const(f"bn{k}_{p}", v.astype(np.float32)) for p, v in
             (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var))]
    return [helper.make_node("BatchNormalization", [f"acc{k}", *names], [f"bn{k}"],
                             epsilon=0.0, name=f"bn{k}")]
