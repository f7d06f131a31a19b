"""`lowbit compile` / `lowbit simulate` / `lowbit run --engine rtl`, Verilog determinism, names."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import onnx
import pytest
from helpers import assert_user_error
from lowbit.export.verilog import generate
from lowbit.hw.plan import Folding, LayerFolding
from lowbit.sim.perf import analyze
from lowbit.sw import reference
from lowbit.sw.onnx_import import import_model
from lowbit.sw.synthetic import binary_mlp


def lowbit(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lowbit", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def model(tmp_path):
    m = binary_mlp((32, 16, 10), seed=5)
    weird = {"fc0": "fc/0:weird name\\x", "fc1": "Gemm.1 (out)"}
    for node in m.graph.node:
        node.name = weird.get(node.name, node.name)
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    return path


def test_compile_writes_the_five_files_and_the_verilog_is_deterministic(tmp_path, model):
    for out in ("a", "b"):
        proc = lowbit("compile", model, "-o", tmp_path / out, "--lut-budget", "1200")
        assert proc.returncode == 0, proc.stderr
        for name in ("lowbit_top.v", "folding.json", "report.json", "report.md", "report.html"):
            assert (tmp_path / out / name).is_file()
            assert (tmp_path / out / name).stat().st_mode & 0o044  # not mkstemp's 0600
    a, b = (tmp_path / d / "lowbit_top.v" for d in ("a", "b"))
    assert a.read_bytes() == b.read_bytes()
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    for key in ("ii_cycles", "latency_cycles", "estimated_luts", "layers"):
        assert key in report
    assert {"schedule_steps", "ii_cycles", "weight_memory_bits", "estimated_luts"} <= set(
        report["layers"][0])
    assert "| layer |" in (tmp_path / "a" / "report.md").read_text()
    page = (tmp_path / "a" / "report.html").read_text()
    layers = report["layers"]
    assert all(f"<td>{layer['name']}</td>" in page for layer in layers)
    assert page.count('<img alt="') == 2 and page.count("data:image/png;base64,") == 2


def test_no_onnx_name_reaches_the_verilog_unescaped(model):
    net = import_model(model)
    text = generate(analyze(net, Folding(tuple(LayerFolding(layer.name, 2, 4)
                                               for layer in net.layers))))
    assert "weird" in text and "l0_fc_0_weird_name_x" in text and "l1_gemm_1_out" in text
    for raw in ("fc/0:weird name", "Gemm.1 (out)", "\\x"):
        assert raw not in text
    # every identifier is plain or a Verilog escaped identifier built from safe characters
    for ident in re.findall(r"\\(\S+)", text):
        assert re.fullmatch(r"[A-Za-z0-9_.$:\[\]]+", ident), ident


def test_folding_json_round_trips_and_drives_compile(tmp_path, model):
    assert lowbit("compile", model, "-o", tmp_path / "a").returncode == 0
    folding = tmp_path / "a" / "folding.json"
    proc = lowbit("compile", model, "-o", tmp_path / "b", "--folding", folding)
    assert proc.returncode == 0, proc.stderr
    a, b = (tmp_path / d / "lowbit_top.v" for d in ("a", "b"))
    assert a.read_bytes() == b.read_bytes()


def test_simulate_json_has_model_and_rtl_and_they_agree(model):
    proc = lowbit("simulate", model, "--lut-budget", "600", "--rtl", "--json", "--frames", "5")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == {"model", "rtl"}
    assert {"ii_cycles", "latency_cycles", "layers"} <= set(data["model"])
    assert data["rtl"]["ii_cycles"] == data["model"]["ii_cycles"]
    assert data["rtl"]["latency_cycles"] == data["model"]["latency_cycles"]


def test_simulate_prints_the_model_beside_the_measurement(model):
    proc = lowbit("simulate", model, "--rtl", "--frames", "4")
    assert proc.returncode == 0, proc.stderr
    assert "RTL measured II" in proc.stdout and "equal" in proc.stdout


def test_run_engine_rtl_writes_what_the_reference_writes(tmp_path, model):
    x = np.random.default_rng(0).random((25, 32), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    proc = lowbit("run", model, "--inputs", tmp_path / "x.npy", "--out", tmp_path / "y.npy",
                  "--engine", "rtl", "--lut-budget", "700")
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"),
                                  reference.run(import_model(model), x))


@pytest.mark.parametrize("content,needle", [
    ("{not json", "not valid JSON"),
    ('{"layers": [{"pe": 1, "simd": 1}]}', "folding has 1 layers, the network 2"),
    ('{"layers": [{"pe": 3, "simd": 1}, {"pe": 1, "simd": 1}]}', "pe=3 must divide its 16"),
    ('{"layers": [{"pe": 1, "simd": 5}, {"pe": 1, "simd": 1}]}', "simd=5 must divide its 32"),
    ('{"layers": [{"pe": 1, "simd": 1, "speed": 3}, {"pe": 1, "simd": 1}]}', "unknown keys"),
    ('{"layers": [{"pe": "2", "simd": 1}, {"pe": 1, "simd": 1}]}', "whole numbers"),
    ('{"layers": [{"pe": 1, "simd": 2, "popcount_stages": 7}, {"pe": 1, "simd": 1}]}',
     "tree_stages=7 must be 0..2"),
    ('{"layers": [{"pe": 1, "simd": 1, "planes_per_cycle": 2}, {"pe": 1, "simd": 1}]}',
     "planes_per_cycle=2 must divide its 1 input bits"),
    ('{"layers": [{"pe": 1, "simd": 1, "planes_per_cycle": 1, "zero_skip": true}, '
     '{"pe": 1, "simd": 1}]}', "the bit-plane engine has no zero-skip schedule"),
])
def test_bad_foldings_are_one_line_errors(tmp_path, model, content, needle):
    path = tmp_path / "f.json"
    path.write_text(content)
    assert_user_error(lowbit("compile", model, "-o", tmp_path / "o", "--folding", path), needle)


def test_missing_folding_file(tmp_path, model):
    assert_user_error(lowbit("compile", model, "-o", tmp_path / "o", "--folding",
                             tmp_path / "nope.json"), "nope.json", "no such file")


def test_compile_never_overwrites_the_users_folding(tmp_path, model):
    out = tmp_path / "o"
    assert lowbit("compile", model, "-o", out).returncode == 0
    mine = out / "folding.json"
    before = mine.read_text()
    assert_user_error(lowbit("compile", model, "-o", out, "--folding", mine), "overwrite")
    assert mine.read_text() == before


def test_ternary_sign_input_runs_in_rtl_as_the_reference_does(tmp_path):
    """ONNX Sign keeps 0: a ternary input, run on the add/subtract engine."""
    import numpy as np
    from helpers import run_rtl
    from lowbit.sim.auto import auto_folding
    from lowbit.sw import reference
    from lowbit.sw.onnx_import import import_model

    m = binary_mlp((16, 8, 4))
    for node in m.graph.node:
        if node.name == "quant_in":
            node.op_type, node.domain = "Sign", ""
            del node.input[1:]
    path = tmp_path / "sign.onnx"
    onnx.save(m, path)
    net = import_model(path)
    x = np.random.default_rng(0).integers(0, 3, (20, 16)).astype(np.float32) / 2  # Sign(0) = 0
    y, _, _, perf = run_rtl(net, auto_folding(net), x)
    assert perf.layers[0].engine == "addsub"
    np.testing.assert_array_equal(y, reference.run(net, x))


def test_compile_out_that_is_a_file_is_refused(tmp_path, model):
    (tmp_path / "taken").write_text("mine")
    assert_user_error(lowbit("compile", model, "-o", tmp_path / "taken"), "-o", "not a folder")
    assert (tmp_path / "taken").read_text() == "mine"


def test_run_engine_rtl_refuses_a_label_select_folding(tmp_path, model):
    np.save(tmp_path / "x.npy", np.zeros((2, 32), np.float32))
    folding = tmp_path / "f.json"
    folding.write_text(json.dumps({"layers": [{"pe": 1, "simd": 1}, {"pe": 1, "simd": 1}],
                                   "label_select": True}))
    proc = lowbit("run", model, "--inputs", tmp_path / "x.npy", "--out", tmp_path / "y.npy",
                  "--engine", "rtl", "--folding", folding)
    assert_user_error(proc, "--engine rtl", "label_select")
    assert not (tmp_path / "y.npy").exists()
