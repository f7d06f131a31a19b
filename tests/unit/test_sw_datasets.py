"""lowbit.sw.datasets: IDX files read exactly, refused when damaged; the digits split."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from lowbit.sw.datasets import load_digits_split, read_idx

from lowbit.errors import InputFileError


def _idx(array: np.ndarray) -> bytes:
    head = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return head + array.astype(np.uint8).tobytes()


def test_idx_round_trips_plain_and_gzipped(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (5, 3, 4)).astype(np.uint8)
    (tmp_path / "a.idx").write_bytes(_idx(a))
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(_idx(a)))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), a)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx.gz"), a)


def test_a_truncated_idx_file_is_refused(tmp_path):
    a = np.zeros((5, 3), np.uint8)
    (tmp_path / "a.idx").write_bytes(_idx(a)[:-1])
    with pytest.raises(InputFileError, match="file size disagrees"):
        read_idx(tmp_path / "a.idx")


def test_digits_split_needs_no_torch_and_is_stratified():
    data = load_digits_split()
    assert data.x_train.shape[1] == 64 and len(data.x_test) == 360
    assert set(np.unique(data.y_test)) == set(range(10))
    assert data.x_train.min() >= 0 and data.x_train.max() <= 1
