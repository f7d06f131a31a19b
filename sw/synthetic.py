"""Small QONNX networks built with ``onnx.helper``: for tests, examples and the demo.

They follow the shape of a Brevitas export (input scaling, ``BipolarQuant`` on weights and
activations, ``MatMul`` + ``BatchNormalization`` per hidden layer, a float scale at the end) but
need no torch.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["binary_mlp", "quant_mlp", "conv_net", "WEIGHTS"]

QONNX = "qonnx.custom_op.general"


def binary_mlp(
    sizes: tuple[int, ...] = (64, 32, 32, 10),
    *,
    input_shape: tuple[int, ...] | None = None,
    seed: int = 0,
    negative_gammas: float = 0.25,
    out_scale: float = 0.5,
    name: str = "binary_mlp",
) -> onnx.ModelProto:
    """A binary MLP ``sizes[0] → … → sizes[-1]`` as QONNX, with random BatchNorm statistics.

    The input is float in [0, 1] (``input_shape`` per sample, default ``(sizes[0],)``), mapped by
    ``2x - 1`` and ``BipolarQuant``. A fraction ``negative_gammas`` of BatchNorm gammas is negative.
    """
    rng = np.random.default_rng(seed)
    input_shape = tuple(input_shape or (sizes[0],))
    if int(np.prod(input_shape)) != sizes[0]:
        raise ValueError(f"input_shape {input_shape} does not hold {sizes[0]} features")
    inits, nodes = [], []

    def const(name: str, value) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    one = const("one", np.float32(1.0))
    x = "x"
    if len(input_shape) > 1:
        nodes.append(helper.make_node("Flatten", [x], ["flat"], axis=1, name="flatten"))
        x = "flat"
    nodes.append(helper.make_node("Mul", [x, const("two", np.float32(2))], ["x2"], name="scale_in"))
    nodes.append(helper.make_node("Sub", ["x2", one], ["x2m1"], name="shift_in"))
    nodes.append(helper.make_node("BipolarQuant", ["x2m1", one], ["a0"], domain=QONNX,
                                  name="quant_in"))
    act = "a0"
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = np.where(rng.random((fan_in, fan_out)) < 0.5, -1.0, 1.0).astype(np.float32)
        w *= rng.normal(size=(fan_in, fan_out)).astype(np.float32)  # float shadow weights
        const(f"w{k}", w)
        nodes.append(helper.make_node("BipolarQuant", [f"w{k}", one], [f"wq{k}"], domain=QONNX,
                                      name=f"quant_w{k}"))
        nodes.append(helper.make_node("MatMul", [act, f"wq{k}"], [f"acc{k}"], name=f"fc{k}"))
        if k == len(sizes) - 2:
            nodes.append(helper.make_node("Mul", [f"acc{k}", const("out_scale",
                                          np.float32(out_scale))], ["y"], name="out_scale"))
            break
        spread = np.sqrt(fan_in)
        gamma = rng.uniform(0.5, 2.0, fan_out) * np.where(
            rng.random(fan_out) < negative_gammas, -1, 1)
        beta = rng.normal(0, 0.5, fan_out)
        mean = rng.normal(0, spread / 2, fan_out)
        var = rng.uniform(0.5, 2.0, fan_out) * fan_in
        bn = [const(f"bn{k}_{p}", v.astype(np.float32))
              for p, v in (("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var))]
        nodes.append(helper.make_node("BatchNormalization", [f"acc{k}", *bn], [f"bn{k}"],
                                      epsilon=1e-5, name=f"bn{k}"))
        nodes.append(helper.make_node("BipolarQuant", [f"bn{k}", one], [f"a{k + 1}"],
                                      domain=QONNX, name=f"quant_a{k + 1}"))
        act = f"a{k + 1}"
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, *input_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, sizes[-1]])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX, 1)]
    )
    model.ir_version = 8
    return model


WEIGHTS = ("binary", "ternary", "ttq", "pow2", "int4", "int2", "int3", "abc3")


class _Builder:
    """The parts :func:`quant_mlp` and :func:`conv_net` share: constants, quantizers, the input
    stage, BatchNorm with random statistics, activations and weights of each kind."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.inits, self.nodes = [], []
        self.one = self.const("one", np.float32(1.0))
        self.zero = self.const("zero", np.float32(0.0))

    def const(self, name: str, value) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, ins: list, outs: list, **attrs) -> None:
        if op in ("Quant", "BipolarQuant"):
            attrs["domain"] = QONNX
        self.nodes.append(helper.make_node(op, ins, outs, **attrs))

    def quant(self, src, dst, scale, bits, signed, narrow, name) -> None:
        self.node("Quant", [src, self.const(f"{name}_scale", np.float32(scale)), self.zero,
                            self.const(f"{name}_bits", np.float32(bits))], [dst],
                  signed=int(signed), narrow=int(narrow), rounding_mode="ROUND", name=name)

    def input_stage(self, in_bits: int) -> float:
        """``x`` → ``a0``: ``2x − 1`` and ``BipolarQuant``, or an unsigned ``Quant``; returns the
        rms of the quantized input."""
        if in_bits == 1:
            self.node("Mul", ["x", self.const("two", np.float32(2))], ["x2"], name="scale_in")
            self.node("Sub", ["x2", self.one], ["x2m1"], name="shift_in")
            self.node("BipolarQuant", ["x2m1", self.one], ["a0"], name="quant_in")
            return 1.0
        self.quant("x", "a0", 2.0 ** -in_bits, in_bits, False, False, "quant_in")
        return 0.58

    def weights(self, weights: str, shape: tuple, k: int, sparsity: float) -> None:
        """Layer ``k``'s weights of ``shape`` as the tensor ``wq{k}`` (behind a quantizer where
        the kind has one)."""
        rng, const = self.rng, self.const
        keep = rng.random(shape) >= sparsity
        sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
        if weights == "binary":
            const(f"w{k}", (sign * rng.uniform(0.1, 1, shape)).astype(np.float32))
            self.node("BipolarQuant", [f"w{k}", const(f"ws{k}", np.float32(0.5))], [f"wq{k}"],
                      name=f"quant_w{k}")
        elif weights == "ternary":
            const(f"w{k}", (sign * keep * rng.uniform(0.2, 0.4, shape)).astype(np.float32))
            self.quant(f"w{k}", f"wq{k}", 0.25, 2, True, True, f"quant_w{k}")
        elif weights == "ttq":
            a, b = [(3, 2), (1, 2), (5, 3)][k % 3]
            const(f"wq{k}", (np.where(sign > 0, a, -b) * keep * 0.125).astype(np.float32))
        elif weights == "pow2":
            exps = rng.integers(-3, 1, shape)
            const(f"wq{k}", (sign * keep * np.exp2(exps) * 0.5).astype(np.float32))
        elif weights == "abc3":  # ABC-Net's Σ α_m B_m, M = 3, on an integer grid
            bases = sum(a * np.where(rng.random(shape) < 0.5, -1, 1) for a in (3, 5, 7))
            const(f"wq{k}", (bases * 0.0625).astype(np.float32))
        elif weights == "int4":
            const(f"w{k}", rng.normal(0, 0.5, shape).astype(np.float32))
            self.quant(f"w{k}", f"wq{k}", 0.125, 4, True, True, f"quant_w{k}")
        else:  # int2, int3: the full two's-complement range (DoReFa-style, not narrow)
            bits = int(weights[3:])
            const(f"w{k}", rng.normal(0, 0.5, shape).astype(np.float32))
            self.quant(f"w{k}", f"wq{k}", 0.5 ** (bits - 1), bits, True, False, f"quant_w{k}")

    def batchnorm(self, k: int, channels: int, fan_in: int, x_rms: float) -> str:
        """``acc{k}`` → ``bn{k}`` with statistics that keep the activations varied."""
        rng = self.rng
        spread = np.sqrt(fan_in) * 0.3 * x_rms
        gamma = rng.uniform(0.5, 2.0, channels) * np.where(rng.random(channels) < 0.25, -1, 1)
        bn = [self.const(f"bn{k}_{p}", v.astype(np.float32)) for p, v in (
            ("gamma", gamma), ("beta", rng.normal(0.5, 0.5, channels)),
            ("mean", rng.normal(0, spread / 2, channels)),
            ("var", rng.uniform(0.5, 2.0, channels) * spread ** 2))]
        self.node("BatchNormalization", [f"acc{k}", *bn], [f"bn{k}"], epsilon=1e-5,
                  name=f"bn{k}")
        return f"bn{k}"

    def activate(self, src: str, k: int, act_bits: int, act_signed: bool = False) -> str:
        """``src`` → ``a{k+1}``: ``BipolarQuant``, a signed narrow ``Quant``, or ``Relu`` and an
        unsigned one."""
        out = f"a{k + 1}"
        if act_bits == 1:
            self.node("BipolarQuant", [src, self.one], [out], name=f"quant_a{k + 1}")
        elif act_signed:
            self.quant(src, out, 2.0 ** (2 - act_bits), act_bits, True, True, f"quant_a{k + 1}")
        else:
            self.node("Relu", [src], [f"r{k}"], name=f"relu{k}")
            self.quant(f"r{k}", out, 2.0 ** (2 - act_bits), act_bits, False, False,
                       f"quant_a{k + 1}")
        return out

    def finish(self, k: int, name: str, in_shape: tuple, out_features: int) -> onnx.ModelProto:
        """Close with ``y = acc{k} · 0.5`` and return the model."""
        self.node("Mul", [f"acc{k}", self.const("out_scale", np.float32(0.5))], ["y"],
                  name="out_scale")
        graph = helper.make_graph(
            self.nodes, name,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, *in_shape])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, out_features])],
            initializer=self.inits,
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX, 1)]
        )
        model.ir_version = 8
        return model


def quant_mlp(
    sizes: tuple[int, ...] = (32, 16, 8),
    *,
    weights: str = "ternary",
    act_bits: int = 2,
    act_signed: bool = False,
    in_bits: int = 1,
    sparsity: float = 0.5,
    seed: int = 0,
    name: str = "quant_mlp",
) -> onnx.ModelProto:
    """A low-bit MLP as QONNX with any weight kind, activation and input width.

    ``weights``: ``binary`` (±s), ``ternary`` ({0, ±s}, a 2-bit narrow QONNX ``Quant``), ``ttq``
    ({−b·s, 0, +a·s}, asymmetric), ``pow2`` ({0, ±s·2^e}, e in −3..0), ``int4`` (a 4-bit
    narrow ``Quant``), ``int2`` or ``int3`` (a signed ``Quant`` of the full range) or ``abc3``
    (``s·(±3 ± 5 ± 7)``, three binary bases as ABC-Net's, plain floats); a fraction
    ``sparsity`` of ternary, ttq and pow2 weights is 0.
    ``act_bits``: 1 is ``BipolarQuant``; more is ``Relu`` + unsigned ``Quant`` (or a signed
    narrow ``Quant`` with ``act_signed``). ``in_bits``: 1 is ``2x − 1`` + ``BipolarQuant`` on the
    [0, 1] input, more an unsigned ``Quant`` with scale ``2^−in_bits``.
    """
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, not {weights!r}")
    b = _Builder(seed)
    x_rms = b.input_stage(in_bits)
    act = "a0"
    k = 0
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        b.weights(weights, (fan_in, fan_out), k, sparsity)
        b.node("MatMul", [act, f"wq{k}"], [f"acc{k}"], name=f"fc{k}")
        if k == len(sizes) - 2:
            break
        act = b.activate(b.batchnorm(k, fan_out, fan_in, x_rms), k, act_bits, act_signed)
    return b.finish(k, name, (sizes[0],), sizes[-1])


def conv_net(
    in_shape: tuple[int, int, int] = (2, 8, 8),
    layers: tuple = (("conv", 4, 3, 1, 1), ("pool", 2), ("fc", 10)),
    *,
    weights: str = "binary",
    act_bits: int = 1,
    in_bits: int = 1,
    sparsity: float = 0.5,
    seed: int = 0,
    name: str = "conv_net",
) -> onnx.ModelProto:
    """A low-bit CNN as QONNX: ``layers`` of ``("conv", channels, kernel, stride, pad)``,
    ``("pool", k)`` (after a convolution's activation) and ``("fc", features)`` (the first one
    after a ``Flatten``); the last must be ``fc``. Weights, activations and the input as in
    :func:`quant_mlp`; every convolution and hidden dense layer has a BatchNorm."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, not {weights!r}")
    if not layers or layers[-1][0] != "fc":
        raise ValueError("the last layer must be ('fc', features)")
    b = _Builder(seed)
    x_rms = b.input_stage(in_bits)
    act, (c, h, w) = "a0", in_shape
    flattened = False
    for k, spec in enumerate(layers):
        if spec[0] == "conv":
            _, oc, kernel, stride, pad = spec
            b.weights(weights, (oc, c, kernel, kernel), k, sparsity)
            b.node("Conv", [act, f"wq{k}"], [f"acc{k}"], kernel_shape=[kernel, kernel],
                   strides=[stride] * 2, pads=[pad] * 4, name=f"conv{k}")
            act = b.activate(b.batchnorm(k, oc, c * kernel * kernel, x_rms), k, act_bits)
            h = (h + 2 * pad - kernel) // stride + 1
            w = (w + 2 * pad - kernel) // stride + 1
            c = oc
        elif spec[0] == "pool":
            b.node("MaxPool", [act], [f"p{k}"], kernel_shape=[spec[1]] * 2,
                   strides=[spec[1]] * 2, name=f"pool{k}")
            act, h, w = f"p{k}", h // spec[1], w // spec[1]
        else:
            if not flattened:
                b.node("Flatten", [act], ["flat"], axis=1, name="flatten")
                act, flattened = "flat", True
                c, h, w = c * h * w, 1, 1
            b.weights(weights, (c, spec[1]), k, sparsity)
            b.node("MatMul", [act, f"wq{k}"], [f"acc{k}"], name=f"fc{k}")
            if k == len(layers) - 1:
                return b.finish(k, name, in_shape, spec[1])
            act = b.activate(b.batchnorm(k, spec[1], c, x_rms), k, act_bits)
            c = spec[1]
        x_rms = 1.0 if act_bits == 1 else 0.58
    raise AssertionError("unreachable: the last layer is fc")
