"""lowbit.hw.engines: which datapath runs a layer, from the kind import decided."""

from __future__ import annotations

import numpy as np
import pytest
from lowbit.hw.engines import bit_planes, engine, ternary_magnitudes
from lowbit.sw.ir import BIPOLAR, MatVec, Thresholds, ValueSet, WeightKind


def _layer(kind, weights, values, out=BIPOLAR):
    w = np.array(weights, dtype=np.int8)
    act = Thresholds("q", "a", np.zeros((len(w), len(out.levels) - 1), np.int64),
                     np.ones(len(w), np.int8), out)
    return MatVec("fc", kind, w, np.ones(len(w)), values, (w.shape[1],), activation=act)


@pytest.mark.parametrize("kind,weights,values,out,expected", [
    (WeightKind.BINARY, [[1, -1]], BIPOLAR, BIPOLAR, "xnor"),
    (WeightKind.BINARY, [[1, -1]], ValueSet((0, 1, 2, 3)), BIPOLAR, "addsub"),
    (WeightKind.BINARY, [[1, -1]], BIPOLAR, ValueSet((0, 1, 2, 3)), "addsub"),
    (WeightKind.TERNARY, [[0, 3, -2]], BIPOLAR, BIPOLAR, "ternary"),
    (WeightKind.TERNARY, [[0, 3, -2], [0, 1, -2]], BIPOLAR, BIPOLAR, "multiply"),
    (WeightKind.POW2, [[0, 4, -1]], BIPOLAR, BIPOLAR, "shift"),
    (WeightKind.INT, [[3, -5]], BIPOLAR, BIPOLAR, "multiply"),
])
def test_engine_follows_the_weight_kind_and_the_value_sets(kind, weights, values, out, expected):
    assert engine(_layer(kind, weights, values, out)) == expected


def test_ternary_magnitudes_are_one_positive_and_one_negative_value():
    assert ternary_magnitudes(np.array([[0, 3, -2, 3]])) == (3, 2)
    assert ternary_magnitudes(np.array([[0, 3, 1]])) is None


@pytest.mark.parametrize("levels,planes", [
    ((-1, 1), 1),  # binary: one plane beside the plain input sum
    ((-15, -9, -5, -1, 1, 5, 9, 15), 3),  # ABC-Net, M = 3: ±3 ± 5 ± 7 (two's complement: 5)
    ((-3, -1, 1, 3), 2),  # ±1 ± 2 (two's complement: 3)
    ((0, 1, 2, 3, 4, 5, 6, 7), 3),  # unsigned: its bits
    ((-1, 0, 1), 2),  # ternary: two's complement
    ((-128, 0, 5, 127), 8),  # int8
])
def test_bit_planes_rebuild_every_weight_from_the_fewest_planes(levels, planes):
    rng = np.random.default_rng(len(levels))
    w = rng.choice(levels, (6, 40))
    w[0, :len(levels)] = levels  # every level present
    p, coefficients, ones = bit_planes(w)
    assert p.shape == (planes, 6, 40) and len(coefficients) == planes
    rebuilt = sum(c * p[m].astype(np.int64) for m, c in enumerate(coefficients)) + ones
    assert (rebuilt == w).all()
