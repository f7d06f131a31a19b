"""Integer weights and their steps: the grid search, and the weight kind decided from it.

A weight matrix ``(out, in)`` of floats is read as integers times a real step per output
channel. :func:`integer_grid` finds, per channel, the coarsest step (the smallest magnitude
divided by 1, 2, ...) on which every weight is an integer of at most 8 bits;
:func:`classify_weights` decides from the integers which datapath the layer needs. Both the
importer and lowbit's own exporter use the same search.
"""

from __future__ import annotations

import numpy as np

from lowbit.errors import UnsupportedError

from .ir import WeightKind

__all__ = ["MAX_WEIGHT", "integer_grid", "classify_weights"]

MAX_WEIGHT = 127  # integer weights are at most 8 bits (int8)


def integer_grid(w: np.ndarray, *, rtol: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``w`` the coarsest step ``smallest |w| / d`` (``d`` = 1 … 127) on which every
    weight is an integer of magnitude at most :data:`MAX_WEIGHT`.

    With ``rtol == 0`` the quotients must be integers exactly; otherwise ``round(w/step)·step``
    may differ from ``w`` by ``rtol·|w|``. Returns the steps and the divisors ``d``; a row with
    no such grid has divisor 0. An all-zero row gets step 1.
    """
    w = np.asarray(w, dtype=np.float64)
    mag = np.abs(w)
    smallest = np.where(mag > 0, mag, np.inf).min(axis=1)
    smallest[~np.isfinite(smallest)] = 1.0
    step = np.zeros_like(smallest)
    divisors = np.zeros(len(w), dtype=np.int64)
    for divisor in range(1, MAX_WEIGHT + 1):
        open_ = divisors == 0
        if not open_.any():
            break
        trial = smallest[open_] / divisor
        ints = w[open_] / trial[:, None]
        rounded = np.round(ints)
        if rtol:
            on_grid = np.abs(rounded * trial[:, None] - w[open_]) <= rtol * np.abs(w[open_])
        else:
            on_grid = ints == rounded
        fits = np.all(on_grid, axis=1) & (np.abs(rounded).max(axis=1) <= MAX_WEIGHT)
        rows = np.flatnonzero(open_)[fits]
        step[rows], divisors[rows] = trial[fits], divisor
    return step, divisors


def classify_weights(w: np.ndarray, node: str) -> tuple[WeightKind, np.ndarray, np.ndarray]:
    """Decide the weight kind of a float weight matrix ``(out, in)`` from its values.

    Returns the kind, the integer weights (int8) and the real value of one integer step per
    output channel: BINARY {±s}, TERNARY {0, ±s} or asymmetric {−sn, 0, +sp} (TTQ; integers
    {−b, 0, +a} on a common grid), POW2 {0, ±s·2^e}, INT (a uniform grid).
    """
    w = np.asarray(w, dtype=np.float64)
    if not np.all(np.isfinite(w)):
        raise UnsupportedError(f"node {node!r}: weights contain NaN or infinity")
    mag = np.abs(w)
    pos_max = np.where(w > 0, w, 0).max(axis=1)
    neg_max = np.where(w < 0, -w, 0).max(axis=1)
    pos_min = np.where(w > 0, w, np.inf).min(axis=1)
    neg_min = np.where(w < 0, -w, np.inf).min(axis=1)
    one_pos = np.all((pos_max == pos_min) | (pos_max == 0))
    one_neg = np.all((neg_max == neg_min) | (neg_max == 0))
    symmetric = np.all((pos_max == neg_max) | (pos_max == 0) | (neg_max == 0))
    scale = mag.max(axis=1)
    scale[scale == 0] = 1.0
    if one_pos and one_neg and symmetric:
        ints = np.sign(w)
        kind = WeightKind.TERNARY if (w == 0).any() else WeightKind.BINARY
        return kind, ints.astype(np.int8), scale
    if one_pos and one_neg:
        # asymmetric ternary (TTQ trains one +sp and one −sn per layer): one grid for the whole
        # layer keeps the integer weights {−b, 0, +a} the same in every channel
        least = float(np.min(mag[mag > 0], initial=1.0))
        for divisor in range(1, MAX_WEIGHT + 1):
            ints = w / (least / divisor)
            if np.all(ints == np.round(ints)) and np.abs(ints).max() <= MAX_WEIGHT:
                return (WeightKind.TERNARY, np.round(ints).astype(np.int8),
                        np.full(len(w), least / divisor))
    step, divisors = integer_grid(w)
    if np.all(divisors > 0):
        ints = w / step[:, None]
        magnitudes = np.abs(ints[ints != 0]).astype(np.int64)
        pow2 = np.all(divisors == 1) and np.all(magnitudes & (magnitudes - 1) == 0)
        kind = (WeightKind.TERNARY if one_pos and one_neg
                else WeightKind.POW2 if pow2 else WeightKind.INT)
        return kind, np.round(ints).astype(np.int8), step
    if one_pos and one_neg:
        raise UnsupportedError(
            f"node {node!r}: asymmetric ternary weights +sp/−sn (TTQ) without a common integer "
            f"grid of at most 8 bits; quantize sp and sn to multiples of one step"
        )
    raise UnsupportedError(
        f"node {node!r}: weights are not on a uniform integer grid of at most 8 bits per "
        f"channel; quantize them (QONNX Quant) before export"
    )
