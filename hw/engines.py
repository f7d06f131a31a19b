"""Which datapath runs a layer, decided from the weight kind import found.

``xnor`` runs on :class:`lowbit.hw.mvtu.MVTU`; the others are the engines of
:class:`lowbit.hw.mvau.MVAU`:

- ``xnor``: binary weights on bipolar inputs into a sign or the output (XNOR-popcount);
- ``addsub``: binary weights otherwise (add or subtract each input level);
- ``ternary``: weights 0, +a or −b with one ``a`` and ``b`` per layer (zero-skip);
- ``shift``: weights ±2^e or 0 (shift-add);
- ``multiply``: integer weights;
- ``bitplane``: any integer weights as binary planes with constant coefficients
  (:func:`bit_planes`), the input level indices as their bit planes: per PE and input plane
  one AND-popcount per weight plane, shifted and added; the input planes are taken in groups,
  all at once or one per pass (bit-serial). Chosen by the folding (``planes_per_cycle``),
  never by the weight kind.
"""

from __future__ import annotations

import numpy as np
from lowbit.sw.ir import MatVec, WeightKind, signed_bits

__all__ = ["MVAU_ENGINES", "ENGINES", "bit_planes", "engine", "ternary_magnitudes"]

MVAU_ENGINES = ("addsub", "ternary", "shift", "multiply", "bitplane")
ENGINES = ("xnor", *MVAU_ENGINES)


def ternary_magnitudes(weights: np.ndarray) -> tuple[int, int] | None:
    """``(a, b)`` when every weight is 0, +a or −b with one ``a`` and ``b`` for the layer."""
    w = np.asarray(weights)
    pos, neg = np.unique(w[w > 0]), np.unique(-w[w < 0])
    if len(pos) > 1 or len(neg) > 1:
        return None
    return (int(pos[0]) if len(pos) else 1), (int(neg[0]) if len(neg) else 1)


def bit_planes(weights: np.ndarray) -> tuple[np.ndarray, tuple[int, ...], int]:
    """``(planes, coefficients, ones)`` with ``w = Σ_m coefficients[m]·planes[m] + ones``:
    ``planes`` is ``(M, *shape)`` bool. Weights ±1 are one plane (``w > 0``) with coefficient
    2 and ``ones = −1``; non-negative weights their unsigned bits; others their two's
    complement (the top plane's coefficient −2^(M−1)). ``ones`` multiplies the plain sum of
    the inputs, which a unit counts once for all its PEs."""
    w = np.asarray(weights, dtype=np.int64)
    if w.size and np.all(np.abs(w) == 1):
        return (w > 0)[None], (2,), -1
    lo, hi = int(w.min(initial=0)), int(w.max(initial=0))
    if lo >= 0:
        m = max(1, hi.bit_length())
        return np.stack([(w >> b) & 1 for b in range(m)]).astype(bool), \
            tuple(1 << b for b in range(m)), 0
    m = signed_bits(lo, hi)
    u = w & ((1 << m) - 1)
    coefficients = tuple(1 << b for b in range(m - 1)) + (-(1 << (m - 1)),)
    return np.stack([(u >> b) & 1 for b in range(m)]).astype(bool), coefficients, 0


def engine(layer: MatVec) -> str:
    """The datapath of ``layer`` by its weight kind, one of :data:`ENGINES` but ``bitplane``
    (which a folding chooses)."""
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
