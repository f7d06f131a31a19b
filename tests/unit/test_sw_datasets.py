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


def test_mnist_with_its_training_files_trains_on_them_and_tests_on_all_of_t10k(tmp_path,
                                                                                 mnist_test):
    # a folder with train-* files beside t10k-*: the training set is those, the test set the
    # whole t10k (here the train files hold t10k's first 600 images, rearranged real data)
    from lowbit.sw.datasets import has_mnist_train, load_mnist_split

    images, labels = mnist_test
    pixels = np.round(images.reshape(-1, 28, 28) * 255).astype(np.uint8)
    for split, lo, hi in (("t10k", 0, len(labels)), ("train", 0, 600)):
        (tmp_path / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(pixels[lo:hi])))
        (tmp_path / f"{split}-labels-idx1-ubyte").write_bytes(_idx(labels[lo:hi]))
    assert has_mnist_train(tmp_path)
    data = load_mnist_split(tmp_path)
    assert (len(data.x_train), len(data.x_test)) == (600, len(labels))
    np.testing.assert_array_equal(data.y_test, labels)
    np.testing.assert_array_equal(data.y_train, labels[:600])
    (tmp_path / "train-labels-idx1-ubyte").unlink()  # without them: t10k split 80 / 20
    assert not has_mnist_train(tmp_path)
    assert len(load_mnist_split(tmp_path).x_test) == len(labels) // 5
