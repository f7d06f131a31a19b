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
           "text"]


def attributes(node: onnx.NodeProto) -> dict:
    """A node's attributes as Python values."""
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def text(value) -> str:
    """A string attribute (bytes in the protobuf) as ``str``."""
    return value.decode() if isinstance(value, bytes) else str(value)


def fold_node(node: onnx.NodeProto, inputs: list, opset: int, what: str) -> list[np.ndarray]:
    """Evaluate one standard node on constant inputs (``None`` for an absent optional input)."""
    from onnx.reference import ReferenceEvaluator

    names = [f"in{k}" if i is not None else "" for k, i in enumerate(inputs)]
    outs = [f"out{k}" for k in range(len(node.output))]
    single = helper.make_node(node.op_type, names, outs)
    single.attribute.extend(node.attribute)
    feeds = {n: v for n, v in zip(names, inputs) if n}
    graph = helper.make_graph(
        [single], "fold",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
         for n, v in feeds.items()],
        [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in outs],
    )
    try:
        ref = ReferenceEvaluator(
            helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        )
        values = ref.run(None, feeds)
    except Exception as exc:
        raise UnsupportedError(
            f"node {what!r}: cannot fold constant {node.op_type} "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        ) from None
    return [np.asarray(v) for v in values]


def constant_node_value(node: onnx.NodeProto) -> np.ndarray:
    """The value of a ``Constant`` node."""
    from onnx.reference import ReferenceEvaluator

    single = helper.make_node("Constant", [], ["out"])
    single.attribute.extend(node.attribute)
    return np.asarray(ReferenceEvaluator(single).run(None, {})[0])


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

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
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
