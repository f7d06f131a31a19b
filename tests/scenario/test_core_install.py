"""A core install needs no torch: every command but ``train`` runs in a process where torch,
Brevitas, qonnx and onnxscript cannot be imported, and none of them is even tried."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from lowbit.sw.synthetic import binary_mlp

import lowbit

EXTRAS = ("torch", "brevitas", "qonnx", "onnxscript")
BLOCKER = f"""
import sys
log = sys.argv[1]
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {EXTRAS!r}:
            with open(log, "a") as f:
                f.write(name + "\\n")
            raise ImportError(f"{{name}} is blocked: not part of the core install")
        return None
sys.meta_path.insert(0, Blocker())
del sys.argv[1]
from lowbit.cli import main
sys.exit(main(sys.argv[1:]))
"""


def core(tmp_path, *args, timeout=1800, may_try=False) -> subprocess.CompletedProcess:
    """``lowbit ARGS`` with the extras blocked; fails the test if any was tried (unless
    ``may_try``: a command that needs an extra looks for it)."""
    log = tmp_path / "imports.log"
    proc = subprocess.run([sys.executable, "-c", BLOCKER, str(log), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=tmp_path)
    tried = log.read_text().split() if log.exists() else []
    assert may_try or tried == [], f"lowbit {args[0]} tried to import {sorted(set(tried))}"
    return proc


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(binary_mlp((32, 16, 10), seed=4), path)
    np.save(tmp_path / "x.npy", np.random.default_rng(0).random((6, 32), dtype=np.float32))
    return path


def test_the_blocker_itself_catches_an_import(tmp_path):
    log = tmp_path / "imports.log"
    proc = subprocess.run([sys.executable, "-c", BLOCKER.replace(
        "from lowbit.cli import main", "import torch"), str(log)], capture_output=True,
        text=True)
    assert proc.returncode != 0 and log.read_text().split() == ["torch"]


def test_inspect_run_compile_and_simulate_need_no_extra(tmp_path, model):
    for args in (["inspect", model],
                 ["run", model, "--inputs", "x.npy", "--out", "y.npy"],
                 ["run", model, "--inputs", "x.npy", "--out", "y_rtl.npy", "--engine", "rtl"],
                 ["compile", model, "-o", "out"],
                 ["simulate", model, "--rtl", "--frames", "3", "--json"]):
        proc = core(tmp_path, *args)
        assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), np.load(tmp_path / "y_rtl.npy"))
    assert json.loads(proc.stdout)["rtl"]["outputs_equal_reference"]


def test_board_run_needs_no_extra(tmp_path, model):
    design = lowbit.compile(model)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "folding.json").write_text(json.dumps(design.folding.to_json()))
    (tmp_path / "b" / "build.json").write_text(json.dumps({"board": "icebreaker",
                                                            "baud": 115200}))
    proc = core(tmp_path, "board", "run", model, "--build", "b", "--port",
                "socket://127.0.0.1:9", "--inputs", "x.npy", "--out", "y.npy")
    assert proc.returncode == 2 and "--port socket://127.0.0.1:9" in proc.stderr


def test_train_says_which_extra_it_needs(tmp_path):
    proc = core(tmp_path, "train", "--method", "bnn", "-o", "m.onnx", may_try=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "lowbit: error: training needs the 'train' extra, which is not installed: "
        "pip install -e '.[train]' (or pip install 'lowbit[train]')"]


@pytest.mark.slow
def test_synth_build_and_demo_need_no_extra(tmp_path, model):
    proc = core(tmp_path, "synth", model, "--target", "ice40-up5k", "-o", "s", "--lut-budget",
                "500", "--quiet")
    assert proc.returncode == 0, proc.stderr
    proc = core(tmp_path, "build", model, "--board", "icebreaker", "-o", "b", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "b" / "lowbit.bin").is_file()
    proc = core(tmp_path, "demo", "-o", "d")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "[7/7]" in proc.stdout
