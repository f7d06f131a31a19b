"""lowbit.sw.thresholds: thresholds read off the quantizer's input at every accumulator."""

from __future__ import annotations

import numpy as np
import pytest
from lowbit.sw.ir import MatVec, Quantizer, ValueSet, WeightKind
from lowbit.sw.thresholds import output_tail, reachable_accumulators, thresholds_from_floats

from lowbit.errors import UnsupportedError


def _layer(channels=3):
    w = np.ones((channels, 4), dtype=np.int8)
    return MatVec("fc", WeightKind.BINARY, w, np.ones(channels), ValueSet((-1, 1)), (4,))


def test_reachable_accumulators_are_the_progression_of_the_layer():
    assert list(reachable_accumulators(_layer())) == [-4, -2, 0, 2, 4]


def test_thresholds_reproduce_any_monotone_quantizer_in_either_direction():
    layer = _layer()
    accs = reachable_accumulators(layer)
    gains = np.array([0.7, -1.3, 0.2], dtype=np.float32)
    pre = accs[:, None].astype(np.float32) * gains + np.float32(0.3)
    q = Quantizer("int", 0.5, 0.0, 3, True, False, "ROUND")
    values = q.value_set()
    t = thresholds_from_floats(layer, accs, pre, q, values, name="q", tensor="a")
    index = q.index(pre).astype(np.int64)
    for c in range(3):
        for r, acc in enumerate(accs):
            assert (t.direction[c] * acc >= t.thresholds[c]).sum() == index[r, c]


def test_a_non_monotone_channel_is_refused_naming_it():
    layer = _layer()
    accs = reachable_accumulators(layer)
    pre = np.stack([accs, accs ** 2 - 5, accs], axis=1).astype(np.float32)
    with pytest.raises(UnsupportedError, match="output channel 1 is not a monotone"):
        thresholds_from_floats(layer, accs, pre, Quantizer("bipolar"), ValueSet((-1, 1)),
                               name="q", tensor="a")


def test_output_tail_holds_the_float32_values_themselves():
    accs = np.arange(-4, 5, 2)
    y = (accs[:, None] * np.float32(0.1) + np.float32([[0.0, 1.0]])).astype(np.float32)
    tail = output_tail(accs, y, "y")
    np.testing.assert_array_equal(tail.lookup(accs[:, None].repeat(2, axis=1)), y)
