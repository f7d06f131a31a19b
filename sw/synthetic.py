"""Small QONNX networks built with ``onnx.helper``: for tests, examples and the demo.

They follow the shape of a Brevitas export (input scaling, ``BipolarQuant`` on weights and
activations, ``MatMul`` + ``BatchNormalization`` per hidden layer, a float scale at the end) but
need no torch.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["binary_mlp"]

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
