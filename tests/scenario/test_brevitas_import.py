"""Reference == qonnx on real Brevitas 0.13 exports, both export paths."""

from __future__ import annotations

import numpy as np
import pytest
from brevitas_models import brevitas_binary_mlp, export_brevitas
from lowbit.sw import reference
from lowbit.sw.ir import WeightKind
from lowbit.sw.onnx_import import import_model
from oracles import assert_equal_to_oracle, qonnx_run

pytest.importorskip("brevitas")

CASES = [
    # sizes, per-sample input shape: fan-ins 70, 100, 130 and 200 are not multiples of 64
    ((70, 30, 20, 10), (1, 7, 10)),
    ((100, 64, 10), (100,)),
    ((130, 200, 48, 7), (130,)),
    ((64, 128, 10), (1, 8, 8)),
]


@pytest.mark.parametrize("dynamo", [True, False], ids=["dynamo", "torchscript"])
@pytest.mark.parametrize("sizes,shape", CASES, ids=[str(c[0]) for c in CASES])
def test_reference_equals_qonnx_on_brevitas_mlp(tmp_path, sizes, shape, dynamo):
    module, shape = brevitas_binary_mlp(sizes, seed=sum(sizes), input_shape=shape)
    path = export_brevitas(module, shape, tmp_path / "mlp.onnx", dynamo)
    net = import_model(path)
    assert [layer.weight_kind for layer in net.layers] == [WeightKind.BINARY] * (len(sizes) - 1)
    assert any((layer.activation.direction < 0).any() for layer in net.layers[:-1]), \
        "the BatchNorms should include negative gammas"
    x = np.random.default_rng(1).random((64, *shape), dtype=np.float32)
    y, inter = reference.run(net, x, intermediates=True)
    hidden = [layer.activation.tensor for layer in net.layers[:-1]]
    y_q, tensors_q = qonnx_run(path, x, hidden)
    assert_equal_to_oracle(net, y, inter, y_q, tensors_q)


def test_dynamo_export_writes_external_data_and_it_is_read(tmp_path):
    module, shape = brevitas_binary_mlp((100, 64, 10), seed=3)
    path = export_brevitas(module, shape, tmp_path / "ext.onnx", dynamo=True)
    if not (tmp_path / "ext.onnx.data").exists():
        pytest.skip("this Brevitas/torch wrote no external data file")
    net = import_model(path)
    x = np.random.default_rng(2).random((16, *shape), dtype=np.float32)
    np.testing.assert_array_equal(reference.run(net, x), qonnx_run(path, x)[0])


def test_non_power_of_two_weight_scale_is_stated_and_within_float32_rounding(tmp_path):
    """Brevitas's default binary weight scale is 0.1: the ONNX float MatMul then rounds.

    The hidden activations stay identical; the final float output may differ from qonnx by
    float32 rounding of the accumulation (the one tolerance lowbit allows), and import says so.
    """
    module, shape = brevitas_binary_mlp((100, 64, 10), seed=4, weight_scale=0.1)
    path = export_brevitas(module, shape, tmp_path / "s.onnx", dynamo=False)
    net = import_model(path)
    assert not net.layers[-1].exact_float
    assert any("not powers of two" in note for note in net.notes)
    x = np.random.default_rng(3).random((64, *shape), dtype=np.float32)
    y, inter = reference.run(net, x, intermediates=True)
    hidden = [layer.activation.tensor for layer in net.layers[:-1]]
    y_q, tensors_q = qonnx_run(path, x, hidden)
    for t in hidden:
        np.testing.assert_array_equal(inter[t].reshape(64, -1), tensors_q[t].reshape(64, -1))
    ulp = np.spacing(np.float32(np.abs(y_q).max() + 1))
    assert np.abs(y - y_q).max() <= 64 * ulp  # 64 = fan-in of the last layer
