"""lowbit.sw.weight_grid: integers and steps from float weights, and the weight kind."""

from __future__ import annotations

import numpy as np
import pytest
from lowbit.sw.ir import WeightKind
from lowbit.sw.weight_grid import (
    QuantizedWeights,
    classify_quantized,
    classify_weights,
    integer_grid,
)

from lowbit.errors import UnsupportedError


@pytest.mark.parametrize("ints,kind", [
    ([[1, -1, 1], [-1, -1, 1]], WeightKind.BINARY),
    ([[1, 0, -1], [0, 0, 1]], WeightKind.TERNARY),
    ([[2, 0, -3], [0, 2, -3]], WeightKind.TERNARY),  # TTQ: +a / −b on one grid
    ([[1, -4, 8], [2, 16, -1]], WeightKind.POW2),
    ([[3, -5, 7], [1, 2, -6]], WeightKind.INT),
])
def test_kind_and_integers_are_recovered_from_scaled_weights(ints, kind):
    ints = np.array(ints, dtype=np.float64)
    step = np.array([0.25, 0.03125])[:, None]
    got_kind, got_ints, got_step = classify_weights(ints * step, "fc")
    assert got_kind is kind
    np.testing.assert_array_equal(got_ints * got_step[:, None], ints * step)


def test_integer_grid_takes_float32_rounding_only_when_asked():
    ints = np.array([[3, -5, 7, 1]], dtype=np.float64)
    w = (ints * 0.1).astype(np.float32).astype(np.float64)  # float32(k·s) is not k·s
    _, exact = integer_grid(w)
    step, tolerant = integer_grid(w, rtol=1e-6)
    assert tolerant[0] == 1 and exact[0] != 1
    np.testing.assert_array_equal(np.round(w / step[:, None]), ints)


@pytest.mark.parametrize("w,message", [
    (np.array([[np.nan, 1.0]]), "NaN or infinity"),
    (np.array([[1.0, np.pi, 0.001]]), "not on an integer grid of at most 8 bits"),
])
def test_weights_without_a_grid_are_refused_naming_the_node(w, message):
    with pytest.raises(UnsupportedError, match=f"node 'fc7': .*{message}"):
        classify_weights(w, "fc7")


def test_quantized_weights_keep_the_quantizers_own_integers_whatever_the_float_scale():
    ints = np.array([[3, -7, 0, 5], [-1, 2, 7, -7]])
    scale = np.array([[0.0373], [0.1]]).repeat(4, axis=1)  # not powers of two
    kind, got, step = classify_quantized(QuantizedWeights(ints, scale, "q", 4), "fc")
    assert kind is WeightKind.INT
    np.testing.assert_array_equal(got * step[:, None], ints * scale)


@pytest.mark.parametrize("ints,scale,needle", [
    (np.array([[300, -2]]), np.full((1, 2), 0.01), "16-bit integers (-2..300, scale 0.01); "
                                                   "lowbit takes weights of at most 8 bits"),
    (np.array([[3, -2]]), np.array([[0.1, 0.2]]), "varies along the 2 inputs of an output "
                                                  "channel"),
    (np.array([[3, -2]]), np.full((1, 2), -0.1), "not a positive finite number"),
])
def test_quantized_weights_lowbit_cannot_take_are_refused_saying_what_they_are(ints, scale,
                                                                               needle):
    with pytest.raises(UnsupportedError, match="node 'fc3'") as info:
        classify_quantized(QuantizedWeights(ints, scale, "quant_w3", 16), "fc3")
    assert needle in str(info.value)


def test_float_weights_off_any_grid_are_refused_with_what_was_found():
    w = np.array([[0.1, 0.2, 0.3], [0.5, np.pi / 10, 0.7]])
    with pytest.raises(UnsupportedError) as info:
        classify_weights(w, "fc")
    assert "output channel 1 (3 distinct values from 0.3142 to 0.7)" in str(info.value)
    assert "quantize the weights in the model" in str(info.value)
