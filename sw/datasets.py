"""Data sets read from local files (no downloads): MNIST in IDX format."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from lowbit.errors import InputFileError

__all__ = ["read_idx", "load_mnist_idx"]


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
