"""lowbit.sw.quant_ops: QONNX's Quant and BipolarQuant, against a direct reading of the spec."""

from __future__ import annotations

import numpy as np
import pytest
from lowbit.sw.quant_ops import ROUNDING_MODES, bipolar_quant, int_quant, int_quant_range


def _spec_quant(x, scale, zero, bits, signed, narrow, mode):
    """QONNX: y = x / s + z, clamped to the integer range, rounded; the level q."""
    lo = -(2 ** (bits - 1)) + narrow if signed else 0
    hi = 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1 - narrow
    y = min(max(x / scale + zero, lo), hi)
    rounders = {"ROUND": lambda v: float(np.round(v)), "FLOOR": np.floor, "CEIL": np.ceil,
                "HALF_UP": lambda v: np.sign(v) * np.floor(abs(v) + 0.5),
                "HALF_DOWN": lambda v: np.sign(v) * np.ceil(abs(v) - 0.5),
                "ROUND_TO_ZERO": np.trunc, "UP": lambda v: np.sign(v) * np.ceil(abs(v))}
    return rounders[mode](y)


@pytest.mark.parametrize("mode", ["ROUND", "FLOOR", "CEIL", "HALF_UP", "HALF_DOWN",
                                  "ROUND_TO_ZERO", "UP"])
@pytest.mark.parametrize("bits,signed,narrow", [(2, True, True), (3, False, False),
                                                (4, True, False), (8, False, True)])
def test_int_quant_is_the_qonnx_definition(mode, bits, signed, narrow):
    x = np.float32(np.linspace(-3, 3, 241))
    scale, zero = np.float32(0.25), np.float32(0)
    got = int_quant(x, scale, zero, bits, signed, narrow, mode)
    want = [_spec_quant(float(v), 0.25, 0.0, bits, signed, narrow, mode) for v in x]
    np.testing.assert_array_equal(got, want)
    lo, hi = int_quant_range(bits, signed, narrow)
    assert got.min() >= lo and got.max() <= hi
    assert mode in ROUNDING_MODES


def test_bipolar_quant_maps_zero_and_negative_zero_to_plus_one():
    x = np.array([-1.5, -0.0, 0.0, 2.0], dtype=np.float32)
    np.testing.assert_array_equal(bipolar_quant(x, np.float32(0.5)), [-0.5, 0.5, 0.5, 0.5])
