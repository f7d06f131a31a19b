"""Training with lowbit: every method exports to QONNX that lowbit imports exactly (reference ==
qonnx), the hardware runs it (RTL == reference), and the digits accuracy floors hold."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from lowbit.sw import reference  # noqa: E402
from lowbit.sw.datasets import load_digits_split
from lowbit.sw.onnx_export import export_qonnx  # noqa: E402
from lowbit.sw.onnx_import import import_model  # noqa: E402
from lowbit.sw.train import METHODS, train  # noqa: E402
from oracles import qonnx_run  # noqa: E402

KIND = {"bnn": "binary", "binaryconnect": "binary", "xnor": "binary", "twn": "ternary",
        "ttq": "ternary", "inq": "pow2", "log2": "pow2", "dorefa": "int", "pact": "int"}


@pytest.fixture(scope="module")
def digits():
    return load_digits_split()


@pytest.mark.parametrize("method", [m for m in METHODS if m != "float"])
def test_trained_model_exports_to_qonnx_that_lowbit_runs_exactly(tmp_path, digits, method):
    result = train(digits, method, hidden=(64,), epochs=6)
    path = tmp_path / f"{method}.onnx"
    info = export_qonnx(result.model, digits, path)
    net = import_model(path)
    assert {layer.weight_kind.value for layer in net.layers} == {KIND[method]}
    x = digits.x_test[:120]
    y, inter = reference.run(net, x, intermediates=True)
    y_q, tensors_q = qonnx_run(path, x, [net.layers[0].activation.tensor])
    np.testing.assert_array_equal(y, y_q)
    t = net.layers[0].activation.tensor
    ours = inter[t].astype(np.float32) * np.float32(net.layers[0].activation.out.scale)
    np.testing.assert_array_equal(ours.reshape(len(x), -1), tensors_q[t].reshape(len(x), -1))
    # the export keeps the trained function: the same test accuracy (TTQ rounds Wp/Wn)
    exported = 100 * float((reference.run(net, digits.x_test).argmax(1) == digits.y_test).mean())
    assert abs(exported - result.test_accuracy) <= (2.0 if info["snapped"] else 0.3)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "float"])
def test_trained_model_rtl_equals_reference_on_the_test_split(tmp_path, digits, method):
    from helpers import run_rtl
    from lowbit.sim.auto import auto_folding

    result = train(digits, method, hidden=(48, 32), epochs=3)
    export_qonnx(result.model, digits, tmp_path / "m.onnx")
    net = import_model(tmp_path / "m.onnx")
    y, _, rtl, perf = run_rtl(net, auto_folding(net), digits.x_test)
    np.testing.assert_array_equal(y, reference.run(net, digits.x_test))
    assert rtl.ii_cycles(perf.out_beats) == perf.ii_cycles


@pytest.mark.parametrize("method,floor", [("float", 97.0), ("bnn", 90.0), ("twn", 94.0),
                                          ("inq", 95.0)])
def test_digits_accuracy_floors(digits, method, floor):
    result = train(digits, method)
    assert result.test_accuracy >= floor  # its seconds are bench/train_accuracy.py's figure


def test_lowbit_train_prints_progress_and_the_test_accuracy(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lowbit", "train", "--method", "twn", "--epochs",
                           "3", "--arch", "32", "-o", str(tmp_path / "t.onnx")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 3/3" in proc.stdout
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("test accuracy ") and last.endswith("%")
    assert float(last.split()[-1].rstrip("%")) > 50
    assert import_model(tmp_path / "t.onnx").layers[0].weight_kind.value == "ternary"


def test_lowbit_train_refuses_a_bad_arch(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lowbit", "train", "--method", "bnn", "--arch",
                           "12,x", "-o", str(tmp_path / "t.onnx")], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "--arch 12,x" in proc.stderr


def test_lowbit_train_refuses_a_missing_dataset_folder(tmp_path):
    missing = tmp_path / "no-such-folder"
    proc = subprocess.run([sys.executable, "-m", "lowbit", "train", "--method", "bnn",
                           "--dataset", f"mnist-idx:{missing}", "-o", str(tmp_path / "t.onnx")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert str(missing) in proc.stderr and not (tmp_path / "t.onnx").exists()


def test_mnist_idx_training_reads_the_files_and_exports(tmp_path, mnist_test):
    from conftest import MNIST
    from lowbit.sw.datasets import load_mnist_split

    data = load_mnist_split(MNIST)  # the mnist_test fixture skips where ../shared is absent
    assert data.x_train.shape == (8000, 784) and data.input_bits == 8
    data.x_train, data.y_train = data.x_train[:2000], data.y_train[:2000]
    result = train(data, "bnn", hidden=(64,), epochs=2)
    assert result.test_accuracy > 60
    export_qonnx(result.model, data, tmp_path / "m.onnx")
    net = import_model(tmp_path / "m.onnx")
    x = data.x_test[:50]
    np.testing.assert_array_equal(reference.run(net, x), qonnx_run(tmp_path / "m.onnx", x)[0])


CNN_ARCH = ("c8", "p", "c16", "f32")


@pytest.mark.parametrize("method", ["bnn", "twn", "dorefa", "log2"])
def test_trained_cnn_exports_to_qonnx_that_lowbit_runs_exactly(tmp_path, digits, method):
    """A CNN (3×3 convolutions, a max pool, Flatten, dense) trained on the 8×8 digits: the
    exported QONNX, run by qonnx, equals lowbit's reference on outputs and on the hidden and
    pooled tensors, and keeps the trained model's accuracy."""
    result = train(digits, method, hidden=CNN_ARCH, epochs=3)
    path = tmp_path / f"{method}-cnn.onnx"
    export_qonnx(result.model, digits, path)
    net = import_model(path)
    assert [layer.positions for layer in net.layers] == [36, 1, 1, 1]
    assert net.layers[0].pool is not None and net.layers[0].pool.kernel == 2
    x = digits.x_test[:120].reshape(-1, 1, 8, 8)
    y, inter = reference.run(net, x, intermediates=True)
    tensors = [net.layers[0].activation.tensor, net.layers[0].pool.tensor]
    y_q, tensors_q = qonnx_run(path, x, tensors)
    np.testing.assert_array_equal(y, y_q)
    act = net.layers[0].activation
    ours = inter[act.tensor].astype(np.float32) * np.float32(act.out.scale)
    theirs = tensors_q[act.tensor].transpose(0, 2, 3, 1)  # NCHW → the reference's HWC
    np.testing.assert_array_equal(ours.reshape(len(x), -1), theirs.reshape(len(x), -1))
    exported = reference.run(net, digits.x_test.reshape(-1, 1, 8, 8)).argmax(1)
    assert abs(100 * float((exported == digits.y_test).mean()) - result.test_accuracy) <= 0.3


def test_trained_cnn_rtl_equals_reference_on_the_test_split(tmp_path, digits):
    from helpers import run_rtl
    from lowbit.sim.auto import auto_folding

    result = train(digits, "twn", hidden=CNN_ARCH, epochs=2)
    export_qonnx(result.model, digits, tmp_path / "cnn.onnx")
    net = import_model(tmp_path / "cnn.onnx")
    x = digits.x_test.reshape(-1, 1, 8, 8)
    y, _, rtl, perf = run_rtl(net, auto_folding(net), x)
    assert perf.layers[0].line_buffer and perf.layers[1].line_buffer
    np.testing.assert_array_equal(y, reference.run(net, x))
    assert rtl.latency_cycles(perf.in_beats, perf.out_beats) == perf.latency_cycles
    assert rtl.ii_cycles(perf.out_beats) == perf.ii_cycles


@pytest.mark.parametrize("method,bits", [("twn", 2), ("pact", 3)])
def test_activation_bits_set_the_levels_and_export_exactly(tmp_path, digits, method, bits):
    """``act_bits`` sizes the activations (2^k levels, so 2^k − 1 thresholds per channel):
    the export carries them and qonnx runs it as lowbit's reference does."""
    result = train(digits, method, hidden=(32,), epochs=2, act_bits=bits)
    path = tmp_path / "m.onnx"
    export_qonnx(result.model, digits, path)
    net = import_model(path)
    assert len(net.layers[0].activation.out.levels) == 2 ** bits
    x = digits.x_test[:120]
    np.testing.assert_array_equal(reference.run(net, x), qonnx_run(path, x)[0])


@pytest.mark.parametrize("args,words", [(["--method", "bnn", "--act-bits", "2"],
                                         "bnn has no multi-bit activations"),
                                        (["--method", "twn", "--act-bits", "9"],
                                         "activation bits from 2 to 8")])
def test_lowbit_train_refuses_bad_activation_bits(tmp_path, args, words):
    proc = subprocess.run([sys.executable, "-m", "lowbit", "train", *args, "-o",
                           str(tmp_path / "t.onnx")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "act-bits" in lines[0], proc.stderr
    assert not (tmp_path / "t.onnx").exists()


@pytest.mark.parametrize("arch,words", [("c8,f16,c8", "convolutions come before"),
                                        ("p,f16", "a pool must follow a convolution"),
                                        ("c8,c8,c8,c8", "too small for a 3×3 window"),
                                        ("c8,x3", "'x3': expected N or fN")])
def test_an_architecture_that_does_not_fit_gets_one_line_and_exit_2(tmp_path, arch, words):
    proc = subprocess.run([sys.executable, "-m", "lowbit", "train", "--method", "twn", "--arch",
                           arch, "-o", str(tmp_path / "t.onnx")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "arch" in lines[0], proc.stderr
    assert not (tmp_path / "t.onnx").exists()
