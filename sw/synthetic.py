"""Small QONNX networks built with ``onnx.helper``: for tests, examples and the demo.

They follow the shape of a Brevitas export (input scaling, ``BipolarQuant`` on weights and
activations, ``MatMul`` + ``BatchNormalization`` per hidden layer, a float scale at the end) but
need no torch.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["binary_mlp", "quant_mlp", "WEIGHTS"]

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


WEIGHTS = ("binary", "ternary", "ttq", "pow2", "int4")


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
    ({−b·s, 0, +a·s}, asymmetric), ``pow2`` ({0, ±s·2^e}, e in −3..0) or ``int4`` (a 4-bit
    narrow ``Quant``); a fraction ``sparsity`` of ternary, ttq and pow2 weights is 0.
    ``act_bits``: 1 is ``BipolarQuant``; more is ``Relu`` + unsigned ``Quant`` (or a signed
    narrow ``Quant`` with ``act_signed``). ``in_bits``: 1 is ``2x − 1`` + ``BipolarQuant`` on the
    [0, 1] input, more an unsigned ``Quant`` with scale ``2^−in_bits``.
    """
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, not {weights!r}")
    rng = np.random.default_rng(seed)
    inits, nodes = [], []

    def const(name: str, value) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    one, zero = const("one", np.float32(1.0)), const("zero", np.float32(0.0))

    def quant(src, dst, scale, bits, signed, narrow, node):
        nodes.append(helper.make_node(
            "Quant", [src, const(f"{node}_scale", np.float32(scale)), zero,
                      const(f"{node}_bits", np.float32(bits))], [dst], domain=QONNX,
            signed=int(signed), narrow=int(narrow), rounding_mode="ROUND", name=node))

    if in_bits == 1:
        nodes.append(helper.make_node("Mul", ["x", const("two", np.float32(2))], ["x2"],
                                      name="scale_in"))
        nodes.append(helper.make_node("Sub", ["x2", one], ["x2m1"], name="shift_in"))
        nodes.append(helper.make_node("BipolarQuant", ["x2m1", one], ["a0"], domain=QONNX,
                                      name="quant_in"))
        x_rms = 1.0
    else:
        quant("x", "a0", 2.0 ** -in_bits, in_bits, False, False, "quant_in")
        x_rms = 0.58
    act = "a0"
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shape = (fan_in, fan_out)
        keep = rng.random(shape) >= sparsity
        sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
        if weights == "binary":
            const(f"w{k}", (sign * rng.uniform(0.1, 1, shape)).astype(np.float32))
            nodes.append(helper.make_node("BipolarQuant", [f"w{k}", const(f"ws{k}", np.float32(
                0.5))], [f"wq{k}"], domain=QONNX, name=f"quant_w{k}"))
        elif weights == "ternary":
            const(f"w{k}", (sign * keep * rng.uniform(0.2, 0.4, shape)).astype(np.float32))
            quant(f"w{k}", f"wq{k}", 0.25, 2, True, True, f"quant_w{k}")
        elif weights == "ttq":
            a, b = [(3, 2), (1, 2), (5, 3)][k % 3]
            const(f"wq{k}", (np.where(sign > 0, a, -b) * keep * 0.125).astype(np.float32))
        elif weights == "pow2":
            exps = rng.integers(-3, 1, shape)
            const(f"wq{k}", (sign * keep * np.exp2(exps) * 0.5).astype(np.float32))
        else:
            const(f"w{k}", rng.normal(0, 0.5, shape).astype(np.float32))
            quant(f"w{k}", f"wq{k}", 0.125, 4, True, True, f"quant_w{k}")
        nodes.append(helper.make_node("MatMul", [act, f"wq{k}"], [f"acc{k}"], name=f"fc{k}"))
        if k == len(sizes) - 2:
            nodes.append(helper.make_node("Mul", [f"acc{k}", const("out_scale",
                                          np.float32(0.5))], ["y"], name="out_scale"))
            break
        spread = np.sqrt(fan_in) * 0.3 * x_rms
        gamma = rng.uniform(0.5, 2.0, fan_out) * np.where(rng.random(fan_out) < 0.25, -1, 1)
        bn = [const(f"bn{k}_{p}", v.astype(np.float32)) for p, v in (
            ("gamma", gamma), ("beta", rng.normal(0.5, 0.5, fan_out)),
            ("mean", rng.normal(0, spread / 2, fan_out)),
            ("var", rng.uniform(0.5, 2.0, fan_out) * spread ** 2))]
        nodes.append(helper.make_node("BatchNormalization", [f"acc{k}", *bn], [f"bn{k}"],
                                      epsilon=1e-5, name=f"bn{k}"))
        out = f"a{k + 1}"
        if act_bits == 1:
            nodes.append(helper.make_node("BipolarQuant", [f"bn{k}", one], [out], domain=QONNX,
                                          name=f"quant_a{k + 1}"))
        elif act_signed:
            quant(f"bn{k}", out, 2.0 ** (2 - act_bits), act_bits, True, True, f"quant_a{k + 1}")
        else:
            nodes.append(helper.make_node("Relu", [f"bn{k}"], [f"r{k}"], name=f"relu{k}"))
            quant(f"r{k}", out, 2.0 ** (2 - act_bits), act_bits, False, False,
                  f"quant_a{k + 1}")
        act = out
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, sizes[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, sizes[-1]])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX, 1)]
    )
    model.ir_version = 8
    return model
