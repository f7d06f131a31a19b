"""Property tests of the bit-packed kernels against plain integer arithmetic."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from lowbit.sw.reference import binary_dot, pack_bits


@st.composite
def bipolar_operands(draw):
    n = draw(st.integers(1, 9))
    c = draw(st.integers(1, 9))
    k = draw(st.integers(1, 300))
    a = draw(arrays(np.bool_, (n, k)))
    w = draw(arrays(np.bool_, (c, k)))
    return a, w


@settings(max_examples=200, deadline=None)
@given(bipolar_operands())
def test_binary_dot_equals_integer_matmul(operands):
    a, w = operands
    k = a.shape[1]
    expected = (np.where(a, 1, -1).astype(np.int64) @ np.where(w, 1, -1).astype(np.int64).T)
    got = binary_dot(pack_bits(a), pack_bits(w), k)
    np.testing.assert_array_equal(got, expected)


@settings(max_examples=100, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 5), st.integers(1, 200))))
def test_pack_bits_is_little_endian_with_zero_padding(bits):
    words = pack_bits(bits)
    assert words.dtype == np.dtype("<u8")
    assert words.shape == (bits.shape[0], -(-bits.shape[1] // 64))
    for row, packed in zip(bits, words):
        value = sum(int(b) << i for i, b in enumerate(row))
        assert value == sum(int(v) << (64 * j) for j, v in enumerate(packed))
