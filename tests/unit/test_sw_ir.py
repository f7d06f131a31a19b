"""lowbit.sw.ir: value sets, widths and the output tail's lookup."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lowbit.sw.ir import MatVec, OutputTail, ValueSet, WeightKind, signed_bits


@given(st.integers(-300, 300), st.integers(0, 300))
def test_signed_bits_is_the_narrowest_twos_complement_width(lo, span):
    hi = lo + span
    bits = signed_bits(lo, hi)
    assert -(1 << (bits - 1)) <= lo and hi < (1 << (bits - 1))
    assert bits == 1 or not (-(1 << (bits - 2)) <= lo and hi < (1 << (bits - 2)))


def test_value_set_levels_must_be_sorted_and_distinct():
    with pytest.raises(ValueError, match="levels must be sorted and distinct"):
        ValueSet((1, 0))
    assert ValueSet((-1, 1)).bits == 1 and ValueSet((0, 1, 2)).bits == 2


def test_accumulator_range_holds_every_dot_product():
    rng = np.random.default_rng(0)
    w = rng.integers(-3, 4, (5, 7)).astype(np.int8)
    layer = MatVec("fc", WeightKind.INT, w, np.ones(5), ValueSet((-2, 0, 1, 5)), (7,))
    lo, hi = layer.acc_range
    x = rng.choice([-2, 0, 1, 5], (2000, 7))
    acc = x @ w.T.astype(np.int64)
    assert lo <= acc.min() and acc.max() <= hi
    assert signed_bits(lo, hi) == layer.acc_bits


def test_output_tail_lookup_reads_the_table_per_channel():
    table = np.arange(12, dtype=np.float32).reshape(2, 6)
    tail = OutputTail("y", acc_min=-5, acc_step=2, table=table, scale=np.zeros(2),
                      bias=np.zeros(2), affine_max_error=0.0)
    acc = np.array([[-5, 5], [1, -3]])
    np.testing.assert_array_equal(tail.lookup(acc), [[0, 11], [3, 7]])
