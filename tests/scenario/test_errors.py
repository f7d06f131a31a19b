"""Every user error: one line naming the node, op or parameter, exit code 2, no traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from helpers import assert_user_error
from lowbit.sw.synthetic import binary_mlp
from onnx import TensorProto, helper, numpy_helper

from lowbit.cli import main


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lowbit", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def _edit(model: onnx.ModelProto, op: str, **changes) -> onnx.ModelProto:
    for node in model.graph.node:
        if node.name == op:
            for key, value in changes.items():
                if key == "op_type":
                    node.op_type = value
                elif key == "domain":
                    node.domain = value
            return model
    raise KeyError(op)


def _save(tmp_path, model, name="m.onnx"):
    path = tmp_path / name
    onnx.save(model, path)
    return path


def test_unsupported_op_names_the_node(tmp_path):
    model = _edit(binary_mlp((16, 8, 4)), "scale_in", op_type="Max")  # valid, not lowbit's
    assert_user_error(run_cli("inspect", _save(tmp_path, model)), "'scale_in'", "operator Max")


def test_unsupported_attribute_names_the_node(tmp_path):
    model = binary_mlp((16, 8, 4))
    for node in model.graph.node:
        if node.name == "fc0":
            node.op_type = "Gemm"
            node.attribute.extend([helper.make_attribute("alpha", 2.0)])
    assert_user_error(run_cli("inspect", _save(tmp_path, model)), "'fc0'", "alpha=2.0")


def _quant_activation(model, zero=0.0, bits=4.0, scale_name="one"):
    model.graph.initializer.extend([
        numpy_helper.from_array(np.float32(zero), "zero"),
        numpy_helper.from_array(np.float32(bits), "bits"),
    ])
    for node in model.graph.node:
        if node.name == "quant_a1":
            node.op_type = "Quant"
            node.input[1] = scale_name
            node.input.extend(["zero", "bits"])
            node.attribute.extend([helper.make_attribute("signed", 0),
                                   helper.make_attribute("narrow", 0),
                                   helper.make_attribute("rounding_mode", "ROUND")])
    return model


def test_unsupported_quantizer_names_the_node(tmp_path):
    model = _quant_activation(binary_mlp((16, 8, 4)), zero=0.5)
    assert_user_error(run_cli("inspect", _save(tmp_path, model)), "'quant_a1'", "zero point 0.5")


def test_per_channel_activation_scale_is_not_supported_yet(tmp_path):
    model = binary_mlp((16, 8, 4))
    model.graph.initializer.append(numpy_helper.from_array(np.ones(8, np.float32), "scales"))
    model = _quant_activation(model, scale_name="scales")
    assert_user_error(run_cli("inspect", _save(tmp_path, model)), "'quant_a1'", "per-channel",
                      "not supported yet")


def test_multibit_activations_import_and_compile_to_multi_threshold_units(tmp_path):
    path = _save(tmp_path, _quant_activation(binary_mlp((16, 8, 4))))
    proc = run_cli("inspect", path)
    assert proc.returncode == 0, proc.stderr
    assert "15" in proc.stdout.splitlines()[-2]  # 4-bit: 15 threshold levels for fc0
    proc = run_cli("compile", path, "-o", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    # multi-threshold units: add/subtract, or the bit-plane engine where auto finds it cheaper
    assert {layer["engine"] for layer in report["layers"]} <= {"addsub", "bitplane"}
    assert report["layers"][0]["out_lane_bits"] == 4


def test_unknown_quantizer_op_names_the_node(tmp_path):
    model = _edit(binary_mlp((16, 8, 4)), "quant_a1", op_type="Trunc")
    assert_user_error(run_cli("inspect", _save(tmp_path, model)), "'quant_a1'", "Trunc")


def _with_weights(values, seed=0):
    model = binary_mlp((16, 8, 4))
    for node in model.graph.node:
        if node.name == "quant_w0":
            node.op_type = "Identity"
            node.domain = ""
            del node.input[1:]
    for init in model.graph.initializer:
        if init.name == "w0":
            w = np.random.default_rng(seed).choice(np.array(values, dtype=np.float32), (16, 8))
            init.CopyFrom(numpy_helper.from_array(w, "w0"))
    return model


@pytest.mark.parametrize("values,kind,engine", [
    ([0.0, 1.0, -1.0], "ternary", "ternary"),
    ([0.0, 0.75, -0.5], "ternary", "ternary"),  # asymmetric (TTQ): {-2, 0, +3} x 0.25
    ([0.5, -2.0, 1.0, -0.25], "pow2", "shift"),
    ([3.0, -1.0, 2.0, -7.0, 0.0, 5.0], "int", "multiply"),
])
def test_weight_kinds_are_recognized_and_compiled_on_their_engine(tmp_path, values, kind,
                                                                  engine):
    path = _save(tmp_path, _with_weights(values))
    proc = run_cli("inspect", path)
    assert proc.returncode == 0, proc.stderr
    row = next(line.split() for line in proc.stdout.splitlines() if line.startswith("fc0 "))
    assert row[1] == kind
    proc = run_cli("compile", path, "-o", tmp_path / "o")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["layers"][0]["engine"] == engine


def test_asymmetric_ternary_weights_without_a_common_grid_are_refused(tmp_path):
    path = _save(tmp_path, _with_weights([0.0, 0.1 * np.pi, -0.37]))
    assert_user_error(run_cli("inspect", path), "'fc0'", "asymmetric ternary", "common")


def test_weights_off_any_integer_grid_are_refused(tmp_path):
    path = _save(tmp_path, _with_weights([0.1, 0.1 * np.pi, -0.37, 1.0]))
    assert_user_error(run_cli("inspect", path), "'fc0'", "not on an integer grid")


def test_missing_model_file(tmp_path):
    assert_user_error(run_cli("inspect", tmp_path / "nope.onnx"), "nope.onnx", "no such")


def test_corrupt_model_file(tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\x00\x01 this is not protobuf \xff" * 10)
    assert_user_error(run_cli("inspect", path), "bad.onnx")


def test_truncated_model_file(tmp_path):
    good = binary_mlp((16, 8, 4)).SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(good[: len(good) // 2])
    assert_user_error(run_cli("inspect", path), "cut.onnx")


def test_external_data_outside_the_model_folder_is_refused(tmp_path):
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "m.onnx"
    onnx.save(binary_mlp((16, 8, 4)), path, save_as_external_data=True,
              all_tensors_to_one_file=True, location="w.data", size_threshold=0)
    (tmp_path / "sub" / "w.data").rename(tmp_path / "w.data")
    model = onnx.load(path, load_external_data=False)
    for init in model.graph.initializer:
        for entry in init.external_data:
            if entry.key == "location":
                entry.value = "../w.data"
    path.write_bytes(model.SerializeToString())
    assert_user_error(run_cli("inspect", path), "outside")


def test_missing_external_data_file(tmp_path):
    model = binary_mlp((16, 8, 4))
    onnx.save(model, tmp_path / "m.onnx", save_as_external_data=True,
              all_tensors_to_one_file=True, location="m.onnx.data", size_threshold=0)
    (tmp_path / "m.onnx.data").unlink()
    assert_user_error(run_cli("inspect", tmp_path / "m.onnx"), "m.onnx.data", "missing")


def test_input_shape_mismatch_says_expected_and_got(tmp_path):
    model_path = _save(tmp_path, binary_mlp((16, 8, 4)))
    np.save(tmp_path / "x.npy", np.zeros((3, 15), np.float32))
    proc = run_cli("run", model_path, "--inputs", tmp_path / "x.npy", "--out", tmp_path / "y.npy")
    assert_user_error(proc, "input 'x'", "expected shape (N, 16)", "got (3, 15)")
    assert not (tmp_path / "y.npy").exists()


def test_inputs_that_are_not_npy(tmp_path):
    model_path = _save(tmp_path, binary_mlp((16, 8, 4)))
    (tmp_path / "x.npy").write_text("1,2,3\n")
    proc = run_cli("run", model_path, "--inputs", tmp_path / "x.npy", "--out", tmp_path / "y.npy")
    assert_user_error(proc, "--inputs", "x.npy")


def test_out_never_overwrites_the_inputs(tmp_path):
    model_path = _save(tmp_path, binary_mlp((16, 8, 4)))
    x = np.zeros((3, 16), np.float32)
    np.save(tmp_path / "x.npy", x)
    proc = run_cli("run", model_path, "--inputs", tmp_path / "x.npy", "--out", tmp_path / "x.npy")
    assert_user_error(proc, "--out", "refusing")
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), x)


def test_multi_input_graph_is_rejected(tmp_path):
    model = binary_mlp((16, 8, 4))
    model.graph.input.append(helper.make_tensor_value_info("x9", TensorProto.FLOAT, [1, 16]))
    assert_user_error(run_cli("inspect", _save(tmp_path, model)), "one data input", "x9")


def test_errors_return_2_in_process_too(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "missing.onnx")]) == 2
    assert "missing.onnx" in capsys.readouterr().err
