"""Plain ONNX from torch.onnx.export of a sign-STE network: reference == onnxruntime.

ONNX ``Sign(0)`` is 0. lowbit treats Sign as a three-level quantizer: a Sign on the input is a
ternary input; a hidden Sign is bipolar only when no reachable accumulator makes its input 0.
"""

from __future__ import annotations

import numpy as np
import pytest
from brevitas_models import export_plain, sign_ste_mlp
from lowbit.sw import reference
from lowbit.sw.ir import BIPOLAR, TERNARY_SIGN
from lowbit.sw.onnx_import import import_model
from oracles import onnxruntime_run, qonnx_run

pytest.importorskip("torch")


def _inputs(n_in: int) -> np.ndarray:
    x = np.random.default_rng(5).normal(size=(200, n_in)).astype(np.float32)
    x[::3, ::2] = 0.0  # Sign(0) = 0 on the input
    return x


def test_sign_ste_network_with_batchnorm_is_exact(tmp_path):
    path = export_plain(sign_ste_mlp((40, 30, 24, 10), seed=2), 40, tmp_path / "plain.onnx")
    net = import_model(path)
    assert net.input.out == TERNARY_SIGN
    # BatchNorm with random statistics never lands exactly on 0: the hidden tensors are bipolar
    assert all(layer.activation.out == BIPOLAR for layer in net.layers[:-1])
    x = _inputs(40)
    y = reference.run(net, x)
    np.testing.assert_array_equal(y, onnxruntime_run(path, x))
    np.testing.assert_array_equal(y, qonnx_run(path, x)[0])


def test_sign_of_an_exact_zero_accumulator_gives_a_ternary_hidden_tensor(tmp_path):
    # Identity BatchNorm (mean 0, var 1, gamma 1, beta 0): an even fan-in on bipolar inputs
    # can reach accumulator 0, where Sign outputs 0.
    path = export_plain(sign_ste_mlp((40, 30, 10), seed=3, zero_bias_bn=True), 40,
                        tmp_path / "zero.onnx")
    net = import_model(path)
    assert net.layers[0].activation.out == TERNARY_SIGN
    x = _inputs(40)
    y, inter = reference.run(net, x, intermediates=True)
    assert (inter[net.layers[0].activation.tensor] == 0).any(), "no zero reached: weak test"
    np.testing.assert_array_equal(y, onnxruntime_run(path, x))
