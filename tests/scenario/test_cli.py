"""`lowbit inspect` and `lowbit run` as a user runs them."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
from lowbit.sw.synthetic import binary_mlp
from oracles import qonnx_run


def lowbit(*args, module: bool = False) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "lowbit"] if module else ["lowbit"]
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_inspect_prints_one_row_per_layer(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(binary_mlp((100, 48, 10), input_shape=(1, 10, 10)), path)
    proc = lowbit("inspect", path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    head = lines.index(next(line for line in lines if line.startswith("layer")))
    rows = lines[head + 2 :]
    assert [r.split()[0] for r in rows] == ["quant_in", "fc0", "fc1"]
    assert rows[1].split() == ["fc0", "binary", "100", "->", "48", "1", "1", "1", "1", "8", "4800"]
    assert rows[2].split()[:6] == ["fc1", "binary", "48", "->", "10", "1"]
    for title in ("in bits", "out bits", "w bits", "thresholds", "acc bits", "weight mem bits"):
        assert title in lines[head]


def test_run_writes_exactly_what_the_onnx_model_outputs(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(binary_mlp((64, 32, 10), input_shape=(1, 8, 8), seed=3), path)
    x = np.random.default_rng(0).random((40, 1, 8, 8), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    proc = lowbit("run", path, "--inputs", tmp_path / "x.npy", "--out", tmp_path / "y.npy",
                  module=True)
    assert proc.returncode == 0, proc.stderr
    assert "40 frames" in proc.stdout and "frames/s" in proc.stdout
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.float32 and y.shape == (40, 10)
    np.testing.assert_array_equal(y, qonnx_run(path, x)[0])


def test_run_on_tfc_matches_qonnx(tmp_path, tfc_model, mnist_test):
    images, _ = mnist_test
    np.save(tmp_path / "x.npy", images[:50])
    proc = lowbit("run", tfc_model("TFC_1W1A"), "--inputs", tmp_path / "x.npy",
                  "--out", tmp_path / "y.npy", "--engine", "reference")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"),
                                  qonnx_run(tfc_model("TFC_1W1A"), images[:50])[0])


@pytest.mark.slow
def test_demo_runs_end_to_end_and_the_rtl_matches(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lowbit", "demo", "-o", str(tmp_path / "d")],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout
    for step in range(1, 8):
        assert f"[{step}/7]" in out
    assert "RTL outputs == reference on all 360 images" in out
    assert ": equal" in out  # measured II and latency == the model
    accuracy = float(out.split("digits test images: ")[1].split("= ")[1].split("%")[0])
    assert accuracy >= 90.0
    assert "fmax" in out and "frames/s" in out
    assert (tmp_path / "d" / "hw" / "lowbit_top.v").is_file()
    page = (tmp_path / "d" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "digits test top-1" in page
