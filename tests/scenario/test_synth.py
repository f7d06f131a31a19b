"""`lowbit synth` with the real YoWASP yosys and nextpnr (slow: the first run compiles WASM)."""

from __future__ import annotations

import json
import subprocess
import sys

import onnx
import pytest
from helpers import assert_user_error
from lowbit.sw.synthetic import binary_mlp, quant_mlp


def lowbit(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lowbit", *map(str, args)],
                          capture_output=True, text=True, timeout=1800)


@pytest.fixture
def small_model(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(binary_mlp((64, 32, 10), seed=1), path)
    return path


@pytest.mark.slow
def test_synth_reports_resources_fmax_and_frames_per_second(tmp_path, small_model):
    proc = lowbit("synth", small_model, "--target", "ice40-up5k", "-o", tmp_path / "s",
                  "--lut-budget", "600", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    for key in ("luts", "ffs", "fmax_mhz", "frames_per_s", "ii_cycles", "latency_cycles",
                "bram_blocks", "logic_cells", "estimated_luts"):
        assert key in data, key
    assert 0 < data["luts"] <= 5280 and data["fmax_mhz"] > 0
    assert data["frames_per_s"] == pytest.approx(data["fmax_mhz"] * 1e6 / data["ii_cycles"],
                                                 rel=1e-3)
    assert (tmp_path / "s" / "synth.json").is_file()
    assert "yosys" in proc.stderr  # progress goes to stderr; stdout is the JSON alone


@pytest.mark.slow
def test_synth_asic_gives_transistors_and_logic_depth(tmp_path, small_model):
    proc = lowbit("synth", small_model, "--target", "asic", "-o", tmp_path / "a",
                  "--lut-budget", "600", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["transistors"] > 1000 and data["logic_depth"] > 3


def test_a_model_far_too_big_for_the_device_is_a_one_line_error(tmp_path):
    path = tmp_path / "big.onnx"
    onnx.save(binary_mlp((512, 256, 10), seed=2), path)
    folding = tmp_path / "f.json"
    folding.write_text(json.dumps({"layers": [{"pe": 256, "simd": 512}, {"pe": 10, "simd": 256}]}))
    assert_user_error(lowbit("synth", path, "--target", "ice40-up5k", "-o", tmp_path / "o",
                             "--folding", folding),
                      "does not fit ice40-up5k", "estimated", "largest layer is 'fc0'",
                      "PE=256, SIMD=512", "lower its PE or SIMD")


def test_unknown_target_is_a_one_line_error(tmp_path, small_model):
    assert_user_error(lowbit("synth", small_model, "--target", "ice40-lp1k", "-o", tmp_path / "o"),
                      "--target ice40-lp1k", "ice40-up5k")


def test_a_model_that_cannot_fit_even_fully_folded_is_refused_before_synthesis(tmp_path):
    path = tmp_path / "huge.onnx"
    onnx.save(binary_mlp((4096, 512, 10), seed=3), path)
    assert_user_error(lowbit("synth", path, "--target", "ice40-up5k", "-o", tmp_path / "o"),
                      "does not fit", "block RAMs", "largest layer is 'fc0'")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command", ["synth", "build"])
def test_a_folding_over_the_block_ram_is_refused_before_any_tool_runs(tmp_path, command):
    # fully folded with zero skipping, the ROM holds each step's selects and flags: 170 blocks
    path = tmp_path / "t.onnx"
    onnx.save(quant_mlp((400, 128, 10), weights="ternary", act_bits=2, seed=5), path)
    folding = tmp_path / "f.json"
    folding.write_text(json.dumps({"layers": [{"pe": 1, "simd": 1}, {"pe": 1, "simd": 1}]}))
    where = ["--target", "ice40-up5k"] if command == "synth" else ["--board", "icebreaker"]
    assert_user_error(lowbit(command, path, *where, "-o", tmp_path / "o", "--folding", folding),
                      "does not fit ice40-up5k", "block RAMs, the device has 30",
                      "layer 'fc0'", "zero_skip")
    assert not (tmp_path / "o" / "synth.json").exists()
