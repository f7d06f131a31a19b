"""Which datapath runs a layer, decided from the weight kind import found.

``xnor`` runs on :class:`lowbit.hw.mvtu.MVTU`; the others are the engines of
:class:`lowbit.hw.mvau.MVAU`:

- ``xnor``: binary weights on bipolar inputs into a sign or the output (XNOR-popcount);
- ``addsub``: binary weights otherwise (add or subtract each input level);
- ``ternary``: weights 0, +a or −b with one ``a`` and ``b`` per layer (zero-skip);
- ``shift``: weights ±2^e or 0 (shift-add);
- ``multiply``: integer weights.
"""

from __future__ import annotations

import numpy as np
from lowbit.sw.ir import MatVec, WeightKind

__all__ = ["MVAU_ENGINES", "ENGINES", "engine", "ternary_magnitudes"]

MVAU_ENGINES = ("addsub", "ternary", "shift", "multiply")
ENGINES = ("xnor", *MVAU_ENGINES)


def ternary_magnitudes(weights: np.ndarray) -> tuple[int, int] | None:
    """``(a, b)`` when every weight is 0, +a or −b with one ``a`` and ``b`` for the layer."""
    w = np.asarray(weights)
    pos, neg = np.unique(w[w > 0]), np.unique(-w[w < 0])
    if len(pos) > 1 or len(neg) > 1:
        return None
    return (int(pos[0]) if len(pos) else 1), (int(neg[0]) if len(neg) else 1)


def engine(layer: MatVec) -> str:
    """The datapath of ``layer``, one of :data:`ENGINES`."""
    kind = layer.weight_kind
    act = layer.activation
    if (kind is WeightKind.BINARY and layer.in_values.bipolar
            and (act is None or act.out.bipolar)):
        return "xnor"
    if kind is WeightKind.BINARY:
        return "addsub"
    if kind is WeightKind.TERNARY:
        return "ternary" if ternary_magnitudes(layer.weights) is not None else "multiply"
    if kind is WeightKind.POW2:
        return "shift"
    return "multiply"
