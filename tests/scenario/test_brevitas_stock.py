"""Brevitas as people configure it: stock quantizers with float scales (tests/brevitas_models.
stock_matrix), both export paths, MLP and CNN. The integers come from the Quant nodes
themselves, so no float rounding of k·s decides whether a model imports.

Every configuration: every hidden quantized tensor == qonnx's; the output within float32
rounding of the last sum (the one stated tolerance: the ONNX float MatMul rounds when a scale is
not a power of two). The export path alternates between configurations here (bench/
brevitas_matrix.py runs both for all, and the RTL for all); a subset runs in Verilator.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from brevitas_models import brevitas_stock, export_brevitas, stock_matrix
from helpers import run_rtl
from lowbit.sim.auto import auto_folding
from lowbit.sw import reference
from lowbit.sw.onnx_import import import_model
from oracles import qonnx_run

pytest.importorskip("brevitas")

MATRIX = stock_matrix()
RTL = ["mlp-Int8WeightPerTensorFloat-w4", "mlp-Int8WeightPerChannelFloat-w3",
       "mlp-Int8WeightPerTensorFloat-w8", "mlp-Int8WeightPerTensorFixedPoint-w4",
       "mlp-SignedBinaryWeightPerTensorConst", "mlp-SignedTernaryWeightPerTensorConst",
       "mlp-Int8ActPerTensorFloat-a4", "mlp-QuantHardTanh-a3", "mlp-Int32Bias-w3-per-channel",
       "mlp-float-bias", "cnn-Int8WeightPerChannelFloat-w4", "cnn-Uint8ActPerTensorFloat-a2",
       "cnn-input-4-bit"]


def _export(tmp_path, kwargs, dynamo):
    module, shape = brevitas_stock(**kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return export_brevitas(module, shape, tmp_path / "m.onnx", dynamo), shape


@pytest.mark.parametrize("index", range(len(MATRIX)), ids=[name for name, _ in MATRIX])
def test_reference_equals_qonnx_on_every_hidden_tensor(tmp_path, index):
    name, kwargs = MATRIX[index]
    path, shape = _export(tmp_path, kwargs, dynamo=bool(index % 2))
    net = import_model(path)
    x = np.random.default_rng(index).random((24, *shape), dtype=np.float32)
    y, inter = reference.run(net, x, intermediates=True)
    hidden = [layer.activation.tensor for layer in net.layers[:-1]]
    y_q, tensors_q = qonnx_run(path, x, hidden)
    for layer in net.layers[:-1]:
        t = layer.activation.tensor
        ours = inter[t].astype(np.float32) * np.float32(layer.activation.out.scale)
        if layer.window is not None:  # ours stream in HWC order
            ours = reference.onnx_order(ours, tensors_q[t].shape[1:])
        assert len(np.unique(inter[t])) > 1, f"{t} is constant: the test would mean nothing"
        np.testing.assert_array_equal(ours.reshape(len(x), -1),
                                      tensors_q[t].reshape(len(x), -1), err_msg=t)
    # the last sum: fan-in terms (and a bias) rounded in float32
    ulp = np.spacing(np.float32(np.abs(y_q).max() + 1))
    assert np.abs(y - y_q).max() <= (net.layers[-1].in_features + 2) * ulp


@pytest.mark.parametrize("name", RTL)
def test_rtl_equals_reference_and_cycles_equal_model(tmp_path, name):
    kwargs = dict(MATRIX)[name]
    path, shape = _export(tmp_path, kwargs, dynamo=False)
    net = import_model(path)
    x = np.random.default_rng(7).random((4, *shape), dtype=np.float32)
    y, _, result, perf = run_rtl(net, auto_folding(net), x)
    np.testing.assert_array_equal(y, reference.run(net, x))
    assert result.latency_cycles(perf.in_beats, perf.out_beats) == perf.latency_cycles
    assert result.ii_cycles(perf.out_beats) == perf.ii_cycles
