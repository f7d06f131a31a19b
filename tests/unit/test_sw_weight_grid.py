"""lowbit.sw.weight_grid: integers and steps from float weights, and the weight kind."""

from __future__ import annotations

import numpy as np
import pytest
from lowbit.sw.ir import WeightKind
from lowbit.sw.weight_grid import classify_weights, integer_grid

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
    (np.array([[1.0, np.pi, 0.001]]), "not on a uniform integer grid"),
])
def test_weights_without_a_grid_are_refused_naming_the_node(w, message):
    with pytest.raises(UnsupportedError, match=f"node 'fc7': .*{message}"):
        classify_weights(w, "fc7")
