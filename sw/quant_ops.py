"""The QONNX quantizer operators, as numpy functions on float32 arrays.

These are the semantics of ``BipolarQuant`` and ``Quant`` (QONNX spec; Brevitas exports them in
the ``qonnx.custom_op.general`` domain, and old models in ``onnx.brevitas``). onnxruntime has no
kernel for them, so lowbit applies them itself: to weight constants while importing, and to the
float values that reach an activation quantizer.
"""

from __future__ import annotations

import numpy as np

__all__ = ["QUANT_DOMAINS", "bipolar_quant", "int_quant", "ROUNDING_MODES"]

QUANT_DOMAINS = frozenset(
    {"qonnx.custom_op.general", "onnx.brevitas", "finn.custom_op.general", "qonnx.custom_op"}
)


def bipolar_quant(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``BipolarQuant``: ``+scale`` where ``x >= 0`` (−0.0 included), else ``-scale``."""
    return np.where(x >= 0, np.float32(1), np.float32(-1)) * scale


def _round_half_up(x):
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def _round_half_down(x):
    return np.sign(x) * np.ceil(np.abs(x) - 0.5)


ROUNDING_MODES = {
    "ROUND": np.round,  # half to even
    "HALF_EVEN": np.round,
    "CEIL": np.ceil,
    "FLOOR": np.floor,
    "UP": lambda x: np.sign(x) * np.ceil(np.abs(x)),
    "DOWN": np.fix,
    "ROUND_TO_ZERO": np.fix,
    "HALF_UP": _round_half_up,
    "HALF_DOWN": _round_half_down,
}


def int_quant_range(bit_width: int, signed: bool, narrow: bool) -> tuple[int, int]:
    if signed:
        lo, hi = -(1 << (bit_width - 1)), (1 << (bit_width - 1)) - 1
        return (lo + 1 if narrow else lo), hi
    return 0, (1 << bit_width) - 1 - (1 if narrow else 0)


def int_quant(
    x: np.ndarray,
    scale: np.ndarray,
    zero_point: np.ndarray,
    bit_width: int,
    signed: bool,
    narrow: bool,
    rounding_mode: str,
) -> np.ndarray:
    """``Quant``: scale, shift, clamp, round, shift back, rescale (QONNX order: clamp first).

    Returns the integer level ``q`` (as float); the real value is ``(q - zero_point) * scale``.
    """
    y = x / scale + zero_point
    if bit_width == 1 and signed:
        return np.where(y >= 0, 1.0, -1.0).astype(y.dtype)
    lo, hi = int_quant_range(bit_width, signed, narrow)
    y = np.clip(y, lo, hi)
    return ROUNDING_MODES[rounding_mode.upper()](y)
