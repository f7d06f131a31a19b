"""Data sets that need no download: scikit-learn's digits, and MNIST read from IDX files.

Nothing here needs torch: the demo and the Python API use these on a core install."""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lowbit.errors import InputFileError

__all__ = ["read_idx", "load_mnist_idx", "Dataset", "load_digits_split", "load_mnist_split"]


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise InputFileError(f"{path}: cannot read IDX file ({exc})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise InputFileError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(dims)):
        raise InputFileError(f"{path}: IDX header says {dims}, file size disagrees")
    return np.frombuffer(data, np.uint8, offset=offset).reshape(dims)


def load_mnist_idx(folder: str | os.PathLike, split: str = "t10k") -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 28, 28)`` uint8 and labels ``(N,)`` from ``{split}-images-idx3-ubyte[.gz]``."""
    folder = Path(folder)

    def find(stem: str) -> Path:
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
        raise InputFileError(f"{folder}: no {stem}[.gz] (MNIST in IDX format)")

    images = read_idx(find(f"{split}-images-idx3-ubyte"))
    labels = read_idx(find(f"{split}-labels-idx1-ubyte"))
    if images.shape[0] != labels.shape[0]:
        raise InputFileError(f"{folder}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images, labels


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray  # (N, features) float32 in [0, 1]
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_bits: int  # the input quantizer's width; its step is 2^-(input_bits - 1) or 1/256
    input_step: float
    input_shape: tuple = field(default=())

    @property
    def image(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of one input: the features as a square grey image."""
        side = int(round(self.x_train.shape[1] ** 0.5))
        return (1, side, side)


def load_digits_split(seed: int = 0) -> Dataset:
    """scikit-learn's 1,797 digits, value / 16, split 80 / 20 (stratified, fixed seed)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.data / 16).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, data.target, test_size=0.2, random_state=seed,
                                          stratify=data.target)
    return Dataset("digits", xtr, ytr, xte, yte, 5, 1 / 16, (64,))


def has_mnist_train(folder) -> bool:
    """``folder`` holds MNIST's training files (``train-*-idx*-ubyte[.gz]``) too."""
    folder = Path(folder)
    return all(any((folder / f"train-{kind}-ubyte{gz}").is_file() for gz in ("", ".gz"))
               for kind in ("images-idx3", "labels-idx1"))


def load_mnist_split(folder, seed: int = 0) -> Dataset:
    """MNIST IDX files in ``folder``: with the training files, train on them and test on the
    whole test set; with the test set alone (all a user may have), split it 80 / 20."""
    from sklearn.model_selection import train_test_split

    images, labels = load_mnist_idx(folder)
    x = (images.reshape(len(images), -1).astype(np.float32) / 255)
    if has_mnist_train(folder):
        train_images, train_labels = load_mnist_idx(folder, "train")
        xtr = train_images.reshape(len(train_images), -1).astype(np.float32) / 255
        return Dataset("mnist", xtr, train_labels, x, labels, 8, 1 / 256, (784,))
    classes = len(np.unique(labels))
    counts = np.bincount(labels)
    if len(x) < 5 * classes or counts[counts > 0].min() < 2:
        raise InputFileError(f"{folder}: {len(x)} images of {classes} classes are too few to "
                             f"split 80/20 with every class on both sides")
    xtr, xte, ytr, yte = train_test_split(x, labels, test_size=0.2, random_state=seed,
                                          stratify=labels)
    return Dataset("mnist", xtr, ytr, xte, yte, 8, 1 / 256, (784,))
