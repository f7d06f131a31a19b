"""Shared fixtures: the real models and data in ../shared, and the independent oracles."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LOWBIT_SHARED", REPO.parent / "shared"))
TFC = SHARED / "models" / "tfc"
MNIST = SHARED / "data" / "mnist"


def shared_file(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: ../shared (or LOWBIT_SHARED) holds the real models "
                    f"and data")
    return path


@pytest.fixture(scope="session")
def tfc_model():
    return lambda name: shared_file(TFC / f"{name}.onnx")


@pytest.fixture(scope="session")
def mnist_test():
    """MNIST test images as float32 in [0, 1], shape (10000, 1, 28, 28), and labels."""
    shared_file(MNIST / "t10k-images-idx3-ubyte.gz")
    from lowbit.sw.datasets import load_mnist_idx

    images, labels = load_mnist_idx(MNIST)
    return (images.astype(np.float32) / 255).reshape(-1, 1, 28, 28), labels.astype(np.int64)
