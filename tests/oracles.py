"""The independent oracles: qonnx's executor and onnxruntime, run on the original model."""

from __future__ import annotations

import warnings

import numpy as np
from lowbit.sw.reference import onnx_order


def qonnx_run(model_path, x: np.ndarray, tensors: list[str] = ()) -> tuple[np.ndarray, dict]:
    """qonnx ``execute_onnx`` frame by frame (batch 1, as it runs); output and named tensors."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ModelWrapper(str(model_path)).transform(InferShapes())
        inp, out = model.graph.input[0].name, model.graph.output[0].name
        ys, kept = [], {t: [] for t in tensors}
        for row in x:
            ctx = execute_onnx(model, {inp: row[None]}, return_full_exec_context=bool(tensors))
            ys.append(ctx[out][0])
            for t in tensors:
                kept[t].append(ctx[t][0])
    return np.stack(ys), {t: np.stack(v) for t, v in kept.items()}


def onnxruntime_run(model_path, x: np.ndarray) -> np.ndarray:
    """onnxruntime with graph optimizations off (plain ONNX models only), batch 1 per frame."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return np.stack([sess.run(None, {name: row[None]})[0][0] for row in x])


def assert_equal_to_oracle(net, y_ref, inter, y_oracle, tensors_oracle):
    """'Equal': identical argmax per row, identical hidden activations, outputs equal (==)."""
    assert y_ref.shape == y_oracle.shape
    np.testing.assert_array_equal(y_ref.argmax(-1), y_oracle.argmax(-1))
    for layer in net.layers:
        if layer.activation is not None:
            for t in (layer.activation.tensor,) + ((layer.pool.tensor,) if layer.pool else ()):
                if t not in tensors_oracle:
                    continue
                ours = inter[t].astype(np.float32) * np.float32(layer.activation.out.scale)
                theirs = tensors_oracle[t].reshape(len(ours), -1)
                if layer.window is not None:  # ours stream in HWC order
                    ours = onnx_order(ours, tensors_oracle[t].shape[1:])
                np.testing.assert_array_equal(ours.reshape(len(ours), -1), theirs, err_msg=t)
    np.testing.assert_array_equal(y_ref, y_oracle)
