"""The model's own float32 arithmetic, evaluated exactly as the model states it.

Two evaluators: onnx's ``ReferenceEvaluator`` folds nodes whose inputs are all constants, and
onnxruntime (graph optimizations off: its fusions change float32 rounding) runs the float
segments between a quantizer and the next, with a free batch dimension. Sessions are cached by
the serialized segment, so a segment used for many frames is built once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import onnx
from onnx import helper, numpy_helper

from lowbit.errors import UnsupportedError

__all__ = ["run_float_model", "segment_model", "fold_node", "constant_node_value", "attributes",
           "text", "layout_shape"]


def attributes(node: onnx.NodeProto) -> dict:
    """A node's attributes as Python values."""
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def text(value) -> str:
    """A string attribute (bytes in the protobuf) as ``str``."""
    return value.decode() if isinstance(value, bytes) else str(value)


def fold_node(node: onnx.NodeProto, inputs: list, opset: int, what: str) -> list[np.ndarray]:
    """Evaluate one standard node on constant inputs (``None`` for an absent optional input)
    with onnxruntime, as the model's own runtime computes it (its C++ kernels and numpy's
    differ on edge cases such as ``Pow(−inf, 0.5)``)."""
    import onnxruntime as ort

    names = [f"in{k}" if i is not None else "" for k, i in enumerate(inputs)]
    outs = [f"out{k}" for k in range(len(node.output))]
    single = helper.make_node(node.op_type, names, outs)
    single.attribute.extend(node.attribute)
    feeds = {n: np.asarray(v) for n, v in zip(names, inputs) if n}
    try:
        graph = helper.make_graph(
            [single], "fold",
            [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
             for n, v in feeds.items()],
            [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in outs],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = min(model.ir_version, 10)
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        typed = {v.name: v for v in model.graph.value_info}
        for out in model.graph.output:
            if out.name in typed:
                out.CopyFrom(typed[out.name])
        _quiet(ort)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        opts.log_severity_level = 4
        sess = ort.InferenceSession(model.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
        values = sess.run(None, feeds)
    except Exception as exc:
        raise UnsupportedError(
            f"node {what!r}: cannot fold constant {node.op_type} "
            f"({str(exc).strip().splitlines()[0][:160] if str(exc) else type(exc).__name__})"
        ) from None
    return [np.asarray(v) for v in values]


def constant_node_value(node: onnx.NodeProto, what: str = "Constant") -> np.ndarray:
    """The value of a ``Constant`` node."""
    single = onnx.NodeProto()
    single.CopyFrom(node)
    del single.input[:]
    return fold_node(single, [], 13, what)[0]


def _quiet(ort) -> None:
    ort.set_default_logger_severity(4)  # failures come back as one-line errors, not logs


def layout_shape(node: onnx.NodeProto, shape: tuple, constants: dict, opset: int,
                 what: str) -> tuple[int, ...]:
    """The output shape of one node on an input of ``shape`` (its other inputs constants), by
    ONNX shape inference in strict mode: invalid attributes or shapes are refused."""
    inits = [numpy_helper.from_array(np.asarray(v), n) for n, v in constants.items()]
    single = helper.make_node(node.op_type, list(node.input), [node.output[0]])
    single.attribute.extend(node.attribute)
    graph = helper.make_graph(
        [single], "shape",
        [helper.make_tensor_value_info(node.input[0], onnx.TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info(node.output[0], onnx.TensorProto.UNDEFINED, None)],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 10)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
        out = next(v for v in list(inferred.graph.value_info) + list(inferred.graph.output)
                   if v.name == node.output[0])
        dims = out.type.tensor_type.shape.dim
        if not out.type.tensor_type.HasField("shape") or \
                any(not d.HasField("dim_value") for d in dims):
            raise ValueError("the output shape is not static")
        return tuple(int(d.dim_value) for d in dims)
    except Exception as exc:
        raise UnsupportedError(
            f"node {what!r}: cannot apply {node.op_type} to shape {tuple(shape)} "
            f"({str(exc).strip().splitlines()[0][:160] if str(exc) else type(exc).__name__})"
        ) from None


def segment_model(nodes: list, input_name: str, rank: int, output: str, *,
                  constants: dict, reshape_target: Callable, opset: int) -> onnx.ModelProto:
    """The given float nodes as a model with a free batch dimension.

    ``constants`` holds every constant input by name; ``reshape_target(node)`` gives the
    per-sample shape a ``Reshape`` node produces (its batch dimension is made free)."""
    body, inits, seen = [], [], set()
    produced = {o for n in nodes for o in n.output}
    for n in nodes:
        if n.op_type == "Reshape":
            shape_name = f"{n.output[0]}::shape"
            target = reshape_target(n)
            inits.append(numpy_helper.from_array(
                np.array([-1, *target[1:]], dtype=np.int64), shape_name))
            n = helper.make_node("Reshape", [n.input[0], shape_name], list(n.output),
                                 name=n.name)
        body.append(n)
        for i in n.input:
            if i and i not in produced and i != input_name and i not in seen:
                if i in constants:
                    seen.add(i)
                    inits.append(numpy_helper.from_array(np.asarray(constants[i]), i))
    if not body or output == input_name:
        if output == input_name:
            input_name = f"{input_name}::in"
        body = [helper.make_node("Identity", [input_name], [output])]
    graph = helper.make_graph(
        body, "lowbit_float_segment",
        [helper.make_tensor_value_info(input_name, onnx.TensorProto.FLOAT, [None] * rank)],
        [helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, None)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 10)
    return model


@functools.lru_cache(maxsize=64)
def _session(model: bytes):
    import onnxruntime as ort

    _quiet(ort)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 4
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def run_float_model(model: bytes, x: np.ndarray, what: str = "") -> np.ndarray:
    """Run a float segment with onnxruntime, graph optimizations off (node-by-node float32)."""
    try:
        sess = _session(model)
        name = sess.get_inputs()[0].name
        return sess.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]
    except Exception as exc:
        raise UnsupportedError(
            f"the float operations before {what!r} cannot be evaluated ({str(exc).splitlines()[0]})"
        ) from None
