"""lowbit.hw.network: Verilog-safe names, thresholds moved to the match-count domain, and the
network top built from a plan (simulated whole in tests/unit/test_sim_timing.py)."""

from __future__ import annotations

import numpy as np
import pytest
from lowbit.hw.network import NetworkTop, hardware_name, popcount_thresholds
from lowbit.hw.plan import Folding, plan_network
from lowbit.sw.synthetic import binary_mlp

import lowbit


def test_hardware_names_keep_only_safe_characters():
    assert hardware_name(3, "Gemm.1 (out)/x") == "l3_gemm_1_out_x"
    assert hardware_name(0, "!!!") == "l0"


def test_match_count_thresholds_decide_as_the_accumulator_thresholds_do():
    net = lowbit.load(binary_mlp((17, 12, 4), seed=3, negative_gammas=0.5))
    layer = net.layers[0]
    t, up = popcount_thresholds(layer)
    mw = layer.in_features
    for matches in range(mw + 1):
        acc = 2 * matches - mw
        want = layer.activation.direction * acc >= layer.activation.thresholds[:, 0]
        got = np.where(up, matches >= t, matches <= t)
        np.testing.assert_array_equal(got, want)


def test_the_family_must_be_one_lowbit_builds_for():
    net = lowbit.load(binary_mlp((8, 4, 2)))
    with pytest.raises(ValueError, match="family must be one of"):
        NetworkTop(plan_network(net, Folding.uniform(net)), "virtex")
