"""Integer thresholds and output tails from the model's own float32 results.

A layer's accumulator can take only the integers in a small range (its bounds from the weights
and input levels). The importer evaluates the model's float nodes after the accumulator on every
one of them; this module turns what came out into :class:`~lowbit.sw.ir.Thresholds` (where a
quantizer reads it) or an :class:`~lowbit.sw.ir.OutputTail` (at the graph output).
"""

from __future__ import annotations

import numpy as np

from lowbit.errors import NotSupportedYet, UnsupportedError

from .ir import BIPOLAR, MatVec, OutputTail, Quantizer, Thresholds, ValueSet

__all__ = ["MAX_TABLE", "reachable_accumulators", "accumulator_floats", "per_channel",
           "thresholds_from_floats", "output_tail"]

MAX_TABLE = 1 << 26  # accumulator values × channels tabulated (float32): 256 MB at most


def reachable_accumulators(layer: MatVec) -> np.ndarray:
    """Every integer the layer's accumulator can take, in order (a progression of its step)."""
    lo, hi = layer.acc_range
    step = layer.acc_step
    count = (hi - lo) // step + 1
    if count * layer.out_features > MAX_TABLE:
        raise NotSupportedYet(
            f"node {layer.name!r}: accumulator range {lo}..{hi} is too wide to tabulate"
        )
    return np.arange(lo, hi + 1, step, dtype=np.int64)


def accumulator_floats(layer: MatVec, accs: np.ndarray) -> np.ndarray:
    """What the ONNX MatMul (or Conv) outputs for each reachable accumulator, per channel:
    ``(R, C)``, or ``(R, C, 1, 1)`` for a convolution."""
    real = accs[:, None].astype(np.float64) * (layer.in_values.scale
                                               * layer.weight_scale[None, :])
    real = real.astype(np.float32)
    if layer.window is not None:
        real = real.reshape(*real.shape, 1, 1)
    return real


def per_channel(layer: MatVec, y: np.ndarray, rows: int, what: str) -> np.ndarray:
    """``y`` as ``(rows, channels)``; refuses float ops that differ between map positions."""
    y = y.reshape(rows, -1)
    if y.shape[1] != layer.out_features:
        raise UnsupportedError(
            f"node {what!r}: the float ops after {layer.name!r} differ between positions of the "
            f"map ({y.shape[1]} values for {layer.out_features} channels); only per-channel "
            f"constants can become thresholds")
    return y


def thresholds_from_floats(layer: MatVec, accs: np.ndarray, pre: np.ndarray,
                           quantizer: Quantizer, values: ValueSet, *, name: str,
                           tensor: str) -> Thresholds:
    """Thresholds from the quantizer's input ``pre`` ``(R, C)`` at every accumulator ``accs``.

    Each channel's output level must be a monotone function of the accumulator (rising, or
    falling for a negative BatchNorm gamma). A ``Sign`` that never sees an exact 0 gives a
    bipolar tensor, otherwise a ternary one."""
    if np.isnan(pre).any():
        raise UnsupportedError(f"node {name!r}: its input is NaN for some accumulator values")
    index = quantizer.index(pre).astype(np.int64)
    direction = np.ones(index.shape[1], dtype=np.int8)
    up = np.all(np.diff(index, axis=0) >= 0, axis=0)
    down = np.all(np.diff(index, axis=0) <= 0, axis=0)
    if not np.all(up | down):
        bad = int(np.flatnonzero(~(up | down))[0])
        raise UnsupportedError(
            f"node {name!r}: output channel {bad} is not a monotone function of the "
            f"accumulator of {layer.name!r}, so it is not a threshold"
        )
    direction[~up] = -1
    levels = len(values.levels)
    if quantizer.kind == "sign" and not np.any(index == 1):
        # Sign never yields 0 here: the tensor is bipolar.
        index = index // 2
        levels, values = 2, BIPOLAR
    thresholds = np.empty((index.shape[1], levels - 1), dtype=np.int64)
    for c in range(index.shape[1]):
        key = accs * direction[c]
        order = np.argsort(key, kind="stable")
        key, idx = key[order], index[order, c]
        for j in range(1, levels):
            hit = np.flatnonzero(idx >= j)
            thresholds[c, j - 1] = key[hit[0]] if hit.size else key[-1] + 1
    return Thresholds(name=name, tensor=tensor, thresholds=thresholds, direction=direction,
                      out=values)


def output_tail(accs: np.ndarray, y: np.ndarray, tensor: str) -> OutputTail:
    """The table of the model's float32 outputs ``y`` ``(R, C)`` at accumulators ``accs``, with
    the affine map closest to it for reports."""
    table = np.ascontiguousarray(y.T.astype(np.float32))
    span = float(accs[-1] - accs[0])
    t64 = table.astype(np.float64)
    scale = (t64[:, -1] - t64[:, 0]) / span if span else np.zeros(len(table))
    bias = t64[:, 0] - scale * accs[0]
    err = float(np.abs(accs[None, :] * scale[:, None] + bias[:, None] - t64).max())
    return OutputTail(tensor=tensor, acc_min=int(accs[0]),
                      acc_step=int(accs[1] - accs[0]) if len(accs) > 1 else 1, table=table,
                      scale=scale, bias=bias, affine_max_error=err)
