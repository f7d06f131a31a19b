"""Hostile inputs: every malformed model, argument and path refused in one line with exit 2,
none misread, no user file replaced; and a slice of the mutation fuzzer (bench/fuzz_import.py)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import assert_user_error, lowbit_cli
from lowbit.sw.synthetic import binary_mlp, quant_mlp
from onnx import numpy_helper

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _save(tmp_path, model, name="m.onnx") -> Path:
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def _init(model, name):
    return next(t for t in model.graph.initializer if t.name == name)


def _set(model, name, value):
    _init(model, name).CopyFrom(numpy_helper.from_array(np.asarray(value, np.float32), name))
    return model


def _int4():
    return quant_mlp((12, 8, 4), weights="int4", act_bits=3, seed=1)


# -- the importer ---------------------------------------------------------------------------


def _corrupt_length(model):
    t = _init(model, "w0")
    t.raw_data = t.raw_data[:-4]
    return model


def _bad_utf8(model):
    raw = bytearray(model.SerializeToString())
    raw[raw.find(b"quant_in")] = 0xFF
    return onnx.load_from_string(bytes(raw))


def _duplicate(model):
    model.graph.node.insert(5, model.graph.node[4])
    return model


def _output_is_hidden(model):
    model.graph.output[0].name = "a1"
    return model


def _huge_input(model):
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[1].dim_value = 10 ** 6
    dims.add().dim_value = 10 ** 6
    return model


def _bad_reshape():
    model = binary_mlp((16, 8, 4), input_shape=(1, 4, 4))
    model.graph.node[0].op_type = "Reshape"
    del model.graph.node[0].attribute[:]
    model.graph.node[0].input.append("shape")
    model.graph.initializer.append(numpy_helper.from_array(np.array([[1, 16]], np.int64),
                                                           "shape"))
    return model


CASES = {
    "corrupt initializer": (lambda: _corrupt_length(binary_mlp((16, 8, 4))), ["'w0'"]),
    "name not UTF-8": (lambda: _bad_utf8(binary_mlp((16, 8, 4))), ["not valid UTF-8"]),
    "weight bit width NaN": (lambda: _set(_int4(), "quant_w0_bits", np.nan),
                             ["'quant_w0_bits'", "holds NaN"]),
    "weight bit width 0": (lambda: _set(_int4(), "quant_w0_bits", 0), ["'quant_w0'"]),
    "weight bit width 40": (lambda: _set(_int4(), "quant_w0_bits", 40), ["'quant_w0'"]),
    "16-bit weights": (lambda: _set(_set(_int4(), "quant_w0_bits", 16), "quant_w0_scale", 1e-4),
                       ["'fc0'", "16-bit integers", "at most 8 bits"]),
    "activation bit width inf": (lambda: _set(_int4(), "quant_a1_bits", np.inf),
                                 ["'quant_a1'", "bit_width"]),
    "activation bit width -1": (lambda: _set(_int4(), "quant_a1_bits", -1), ["'quant_a1'"]),
    "zero point NaN": (lambda: _set(_int4(), "zero", np.nan), ["'zero'", "holds NaN"]),
    "zero point 0.5": (lambda: _set(_int4(), "zero", 0.5), ["zero point 0.5"]),
    "scale infinite": (lambda: _set(_int4(), "quant_a1_scale", np.inf), ["'quant_a1'", "scale"]),
    "scale 1e38": (lambda: _set(_int4(), "quant_a1_scale", 1e38), ["'quant_a1'", "1e+30"]),
    "scale negative": (lambda: _set(_int4(), "quant_w0_scale", -0.1), ["'quant_w0'", "scale"]),
    "per-channel scale of the wrong length": (
        lambda: _set(_int4(), "quant_w0_scale", np.full((1, 5), 0.125)),
        ["'quant_w0'", "does not fit"]),
    "weights all NaN": (lambda: _set(binary_mlp((16, 8, 4)), "w0", np.full((16, 8), np.nan)),
                        ["'w0'", "holds NaN"]),
    "duplicated node": (lambda: _duplicate(binary_mlp((16, 8, 4))),
                        ["SSA", "used as output names multiple times"]),
    "output is a hidden tensor": (lambda: _output_is_hidden(binary_mlp((16, 8, 4))),
                                  ["does not contribute to the graph output 'a1'"]),
    "input of 10^6 x 10^6": (lambda: _huge_input(binary_mlp((16, 8, 4))),
                             ["more than 16,777,216 elements"]),
    "malformed Reshape constant": (_bad_reshape, ["Reshape"]),
}


@pytest.mark.parametrize("case", CASES)
def test_a_malformed_model_is_one_line_and_exit_2(tmp_path, case):
    build, needles = CASES[case]
    path = _save(tmp_path, build())
    for command in (["inspect", path], ["compile", path, "-o", tmp_path / "o"]):
        assert_user_error(lowbit_cli(*command), *needles)
    assert not (tmp_path / "o").exists()


def test_two_nodes_writing_one_tensor_are_refused(tmp_path):
    model = binary_mlp((16, 8, 4))
    model.graph.node[5].output[0] = model.graph.node[1].output[0]
    assert_user_error(lowbit_cli("inspect", _save(tmp_path, model)), "SSA")


# -- inputs ---------------------------------------------------------------------------------


def test_nan_inputs_are_refused_where_the_model_would_pass_them_on(tmp_path):
    path = _save(tmp_path, quant_mlp((12, 8, 4), weights="int4", act_bits=3, in_bits=4))
    x = np.random.default_rng(0).random((3, 12), dtype=np.float32)
    x[1, 4] = np.nan
    np.save(tmp_path / "x.npy", x)
    proc = lowbit_cli("run", path, "--inputs", tmp_path / "x.npy", "--out", tmp_path / "y.npy")
    assert_user_error(proc, "--inputs frame 1", "NaN")
    assert "Warning" not in proc.stderr and not (tmp_path / "y.npy").exists()


# -- options --------------------------------------------------------------------------------


@pytest.fixture
def model(tmp_path):
    return _save(tmp_path, binary_mlp((16, 8, 4), seed=2))


@pytest.mark.parametrize("args,needles", [
    (["--clock-mhz", "0"], ["--clock-mhz 0.0"]),
    (["--clock-mhz", "-5"], ["--clock-mhz -5.0"]),
    (["--fps", "nan"], ["--fps nan"]),
    (["--fps", "inf"], ["--fps inf"]),
    (["--fps", "-1"], ["--fps -1.0"]),
    (["--fps", "1e30"], ["--fps 1e+30: no folding", "the fastest reaches"]),
    (["--lut-budget", "0"], ["--lut-budget 0"]),
    (["--folding", "/dev/zero"], ["--folding /dev/zero: not a regular file"]),
])
def test_bad_numbers_and_files_are_refused(tmp_path, model, args, needles):
    assert_user_error(lowbit_cli("compile", model, "-o", tmp_path / "o", *args), *needles)


def test_a_non_boolean_in_a_folding_file_is_refused(tmp_path, model):
    f = tmp_path / "f.json"
    f.write_text(json.dumps({"layers": [{"pe": 1, "simd": 1}, {"pe": 1, "simd": 1}],
                             "label_select": "no"}))
    assert_user_error(lowbit_cli("compile", model, "-o", tmp_path / "o", "--folding", f),
                      "label_select must be true or false")


@pytest.mark.parametrize("args,needle", [
    (["--epochs", "0"], "--epochs 0"),
    (["--lr", "nan"], "--lr nan"),
    (["--arch", "100000000"], "--arch 100000000"),
])
def test_bad_training_options_are_refused(tmp_path, args, needle):
    pytest.importorskip("torch")
    assert_user_error(lowbit_cli("train", "--method", "bnn", "-o", tmp_path / "m.onnx", *args),
                      needle)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("content", ["{broken", json.dumps({"board": "icebreaker"})])
def test_a_broken_build_json_is_refused(tmp_path, model, content):
    build = tmp_path / "b"
    build.mkdir()
    (build / "folding.json").write_text(json.dumps(
        {"layers": [{"pe": 1, "simd": 1}, {"pe": 1, "simd": 1}]}))
    (build / "build.json").write_text(content)
    np.save(tmp_path / "x.npy", np.zeros((1, 16), np.float32))
    assert_user_error(lowbit_cli("board", "run", model, "--build", build, "--port", "loop://",
                                 "--inputs", tmp_path / "x.npy", "--out", tmp_path / "y.npy"),
                      "--build", "build.json")


def test_usage_errors_are_one_line(tmp_path):
    assert_user_error(lowbit_cli("compile"), "arguments are required")
    assert_user_error(lowbit_cli("run", "m.onnx", "--engine", "fpga", "--inputs", "x",
                                 "--out", "y"), "invalid choice")


# -- files ----------------------------------------------------------------------------------


def _inputs(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(1).random((3, 16), dtype=np.float32))
    return tmp_path / "x.npy"


def test_run_never_replaces_an_input_a_foreign_file_a_device_or_a_folder(tmp_path, model):
    x = _inputs(tmp_path)
    folding = tmp_path / "f.json"
    folding.write_text(json.dumps({"layers": [{"pe": 1, "simd": 1}, {"pe": 1, "simd": 1}]}))
    before = {p: p.read_bytes() for p in (x, folding, model)}
    for out, needle in ((x, "also an input"), (folding, "also an input"),
                        (model, "also an input"), (tmp_path, "is a folder"),
                        (Path("/dev/null"), "not a regular file")):
        assert_user_error(lowbit_cli("run", model, "--inputs", x, "--out", out, "--folding",
                                     folding, "--engine", "reference"), needle)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert_user_error(lowbit_cli("run", model, "--inputs", x, "--out", fifo),
                      "not a regular file")
    mine = tmp_path / "mine.npy"
    mine.write_bytes(b"a user's own file")
    assert_user_error(lowbit_cli("run", model, "--inputs", x, "--out", mine),
                      "exists and lowbit did not write it")
    assert mine.read_bytes() == b"a user's own file"
    assert all(p.read_bytes() == b for p, b in before.items())
    # lowbit's own output may be written again; another file only with --force
    for extra in ([], []):
        proc = lowbit_cli("run", model, "--inputs", x, "--out", tmp_path / "y.npy", *extra)
        assert proc.returncode == 0, proc.stderr
    assert lowbit_cli("run", model, "--inputs", x, "--out", mine, "--force").returncode == 0


def test_compile_synth_build_and_demo_never_write_into_a_users_folder(tmp_path, model):
    folder = tmp_path / "o"
    folder.mkdir()
    (folder / "report.md").write_text("my notes")
    for command in (["compile", model, "-o", folder], ["synth", model, "--target", "asic",
                                                        "-o", folder],
                    ["build", model, "--board", "icebreaker", "-o", folder],
                    ["demo", "-o", folder]):
        assert_user_error(lowbit_cli(*command), "not empty and lowbit did not write it")
    assert os.listdir(folder) == ["report.md"] and (folder / "report.md").read_text() == \
        "my notes"
    (folder / "notes.txt").write_text("more notes")
    proc = lowbit_cli("compile", model, "-o", folder, "--force")  # asked for: lowbit's replace
    assert proc.returncode == 0, proc.stderr
    assert (folder / "notes.txt").read_text() == "more notes"  # the rest stays


def test_compile_refuses_a_folder_where_a_file_should_be(tmp_path, model):
    out = tmp_path / "o"
    (out / "folding.json").mkdir(parents=True)
    (out / ".lowbit-manifest.json").write_text(json.dumps({"files": ["folding.json"]}))
    assert_user_error(lowbit_cli("compile", model, "-o", out), "not a regular file")


def test_train_never_replaces_the_data_set_it_reads(tmp_path):
    pytest.importorskip("torch")
    data = tmp_path / "mnist"
    data.mkdir()
    images = np.zeros((20, 28, 28), np.uint8)
    (data / "t10k-images-idx3-ubyte").write_bytes(
        bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in images.shape)
        + images.tobytes())
    labels = np.arange(20, dtype=np.uint8) % 10
    (data / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + (20).to_bytes(4, "big")
                                                  + labels.tobytes())
    before = (data / "t10k-images-idx3-ubyte").read_bytes()
    assert_user_error(lowbit_cli("train", "--method", "bnn", "--dataset", f"mnist-idx:{data}",
                                 "-o", data / "t10k-images-idx3-ubyte", "--epochs", "1"),
                      "also an input")
    assert (data / "t10k-images-idx3-ubyte").read_bytes() == before


# -- the fuzzer -----------------------------------------------------------------------------


def test_three_hundred_mutants_are_refused_or_read_exactly(monkeypatch):
    pytest.importorskip("qonnx")
    sys.path.insert(0, str(BENCH))
    import fuzz_import
    from conftest import SHARED

    result = fuzz_import.run(300, seed=2026, shared=SHARED if SHARED.exists() else None,
                             progress=False)
    assert set(result["outcomes"]) <= {"refused", "accepted"}, result["failures"][:3]
    assert result["outcomes"].get("accepted", 0) > 5  # some mutants are still models


def test_a_slice_of_random_networks_foldings_and_stalls_is_exact_in_verilator():
    """bench/fuzz_rtl.py runs 500 of these; CI runs four."""
    sys.path.insert(0, str(BENCH))
    import fuzz_rtl

    result = fuzz_rtl.run(4, seed=2026, progress=False)
    assert result["failures"] == []
