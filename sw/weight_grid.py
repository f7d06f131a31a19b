"""Integer weights and their steps: the grid search, and the weight kind decided from it.

A weight matrix ``(out, in)`` of floats is read as integers times a real step per output
channel. :func:`integer_grid` finds, per channel, the coarsest step (the smallest magnitude
divided by 1, 2, ...) on which every weight is an integer of at most 8 bits;
:func:`classify_weights` decides from the integers which datapath the layer needs. Both the
importer and lowbit's own exporter use the same search.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lowbit.errors import UnsupportedError

from .ir import WeightKind

__all__ = ["MAX_WEIGHT", "FLOAT32_RTOL", "integer_grid", "classify_weights",
           "QuantizedWeights", "classify_quantized"]

MAX_WEIGHT = 127  # integer weights are at most 8 bits (int8)
# float32(k·s) is within half an ulp of k·s; the step found from a float32 weight is too
FLOAT32_RTOL = 2.0 ** -22


@dataclass(frozen=True, eq=False)
class QuantizedWeights:
    """What a weight quantizer (QONNX ``Quant`` / ``BipolarQuant``) produced, before its float
    output: integers ``q − z`` and the real value of one step, both shaped as the tensor.

    Attributes
    ----------
    ints : ndarray of int64
    scale : ndarray of float64
        The quantizer's float32 scale, broadcast to ``ints``'s shape.
    source : str
        The quantizer node.
    bits : int
        Its bit width (1 for ``BipolarQuant``).
    """

    ints: np.ndarray
    scale: np.ndarray
    source: str
    bits: int

    def map(self, fn: Callable[[np.ndarray], np.ndarray]) -> QuantizedWeights:
        """The same integers and scales through a layout change (transpose, reshape, …)."""
        return QuantizedWeights(np.asarray(fn(self.ints)), np.asarray(fn(self.scale)),
                                self.source, self.bits)


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
            off = np.abs(ints - np.round(ints))
            if np.all(off <= FLOAT32_RTOL * np.abs(ints)) and np.abs(ints).max() <= MAX_WEIGHT:
                return (WeightKind.TERNARY, np.round(ints).astype(np.int8),
                        np.full(len(w), least / divisor))
    step, divisors = integer_grid(w, rtol=FLOAT32_RTOL)
    if np.all(divisors > 0):
        ints = np.round(w / step[:, None])
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
    bad = int(np.flatnonzero(divisors == 0)[0])
    row = w[bad]
    raise UnsupportedError(
        f"node {node!r}: float weights with no quantizer in front, and output channel {bad} "
        f"({len(np.unique(row))} distinct values from {row.min():.4g} to {row.max():.4g}) is "
        f"not on an integer grid of at most 8 bits; quantize the weights in the model (a "
        f"QONNX Quant, e.g. Brevitas's weight_quant) or export integer multiples of one step"
    )


def classify_quantized(q: QuantizedWeights, node: str) -> tuple[WeightKind, np.ndarray,
                                                                 np.ndarray]:
    """The weight kind, integer weights (int8) and step per output channel of a weight matrix
    ``(out, in)`` that came from a quantizer: the integers are the quantizer's own, so no float
    rounding of ``k·s`` can disturb them. The scale must be one per output channel (or one per
    tensor), and the integers at most 8 bits."""
    ints, scale = q.ints, q.scale
    lo, hi = int(ints.min(initial=0)), int(ints.max(initial=0))
    if lo < -128 or hi > MAX_WEIGHT:
        s = float(scale.ravel()[0]) if scale.size else 1.0
        raise UnsupportedError(
            f"node {node!r}: weights from quantizer {q.source!r} are {q.bits}-bit integers "
            f"({lo}..{hi}, scale {s:.4g}); lowbit takes weights of at most 8 bits: quantize "
            f"them to 8 bits or fewer (Brevitas weight_bit_width <= 8)")
    if not np.all(scale == scale[:, :1]):
        raise UnsupportedError(
            f"node {node!r}: the scale of quantizer {q.source!r} varies along the "
            f"{ints.shape[1]} inputs of an output channel; lowbit needs one scale per output "
            f"channel or one per tensor")
    step = scale[:, 0].astype(np.float64)
    if not np.all(np.isfinite(step) & (step > 0)):
        raise UnsupportedError(f"node {node!r}: quantizer {q.source!r} has a scale that is "
                               f"not a positive finite number ({step.min():g})")
    if lo == -128:  # 8 bits without narrow range: -128 is an int8, not a grid to reduce
        return WeightKind.INT, ints.astype(np.int8), step
    kind, ints8, int_step = classify_weights(ints.astype(np.float64), node)
    return kind, ints8, int_step * step
