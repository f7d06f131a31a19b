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

import functools

import numpy as np
from lowbit.sw.ir import MatVec, WeightKind, signed_bits

__all__ = ["MVAU_ENGINES", "ENGINES", "bit_planes", "engine", "plane_codes",
           "plane_coefficients", "signed_basis", "ternary_magnitudes"]

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
    ``planes`` is ``(M, *shape)`` bool, the bits of :func:`plane_codes`."""
    codes, coefficients, ones = plane_codes(weights)
    planes = np.stack([(codes >> b) & 1 for b in range(len(coefficients))]).astype(bool)
    return planes, coefficients, ones


def plane_codes(weights: np.ndarray) -> tuple[np.ndarray, tuple[int, ...], int]:
    """``(codes, coefficients, ones)``: per weight its planes as the bits of an integer code
    (bit ``m`` of plane ``m``), as :func:`plane_coefficients` decomposes its level."""
    w = np.asarray(weights, dtype=np.int64)
    levels = _levels(w)
    coefficients, ones, code_of = _plane_basis(levels)
    table = np.array([code_of[v] for v in levels], dtype=np.int64)
    return table[np.searchsorted(levels, w)], coefficients, ones


def plane_coefficients(weights: np.ndarray) -> tuple[tuple[int, ...], int]:
    """``(coefficients, ones)`` of the weights' planes: ``w = Σ_m coefficients[m]·plane_m +
    ones``, where ``ones`` multiplies the plain sum of the inputs (a unit counts it once for
    all its PEs). The fewest planes of: a signed basis (every level ``c + Σ ±a_m``,
    :func:`signed_basis`: ±1 weights are one plane with coefficient 2 and ``ones = −1``;
    ABC-Net's or Network Sketching's ``Σ α_m B_m`` on an integer grid, M planes of
    coefficients ``2a_m``), the unsigned bits of non-negative weights, or the two's complement
    (the top plane's coefficient −2^(M−1))."""
    return _plane_basis(_levels(np.asarray(weights, dtype=np.int64)))[:2]


def _levels(w: np.ndarray) -> tuple[int, ...]:
    return tuple(int(v) for v in np.unique(w)) or (0,)


@functools.lru_cache(maxsize=512)
def _plane_basis(levels: tuple[int, ...]) -> tuple[tuple[int, ...], int, dict]:
    """``(coefficients, ones, {level: code})`` of :func:`plane_coefficients`."""
    lo, hi = min(levels[0], 0), max(levels[-1], 0)
    if lo >= 0:
        m = max(1, hi.bit_length())
        coefficients, code_of = tuple(1 << b for b in range(m)), {v: v for v in levels}
    else:
        m = signed_bits(lo, hi)
        coefficients = tuple(1 << b for b in range(m - 1)) + (-(1 << (m - 1)),)
        code_of = {v: v & ((1 << m) - 1) for v in levels}
    basis = signed_basis(levels, min(m - 1, 4))
    if basis is None:
        return coefficients, 0, code_of
    parts, centre, signs = basis
    return tuple(2 * a for a in parts), centre - sum(parts), signs


@functools.lru_cache(maxsize=512)
def signed_basis(levels: tuple[int, ...], most: int) -> tuple[tuple[int, ...], int, dict] | None:
    """The fewest positive coefficients ``a_1 ≥ … ≥ a_M`` (``M ≤ most``) and an integer centre
    ``c`` such that every one of ``levels`` (sorted, distinct) is ``c + Σ s_m·a_m`` with signs
    ``s_m = ±1``: ``(coefficients, c, {level: sign bits})`` (bit ``m`` set for ``s_m = +1``), or
    None."""
    lo, hi = levels[0], levels[-1]
    if (lo + hi) % 2 or hi == lo:
        return None
    centre, half = (lo + hi) // 2, (hi - lo) // 2  # the coefficients add up to half
    for m in range(1, most + 1):
        for parts in _partitions(half, m, half):
            reach = {0: 0}
            for k, a in enumerate(parts):
                reach = {v + s * a: bits | (1 << k if s > 0 else 0)
                         for v, bits in reach.items() for s in (1, -1)}
            if all(v - centre in reach for v in levels):
                return parts, centre, {v: reach[v - centre] for v in levels}
    return None


def _partitions(total: int, parts: int, largest: int):
    """``total`` as ``parts`` positive integers, largest first, none above ``largest``."""
    if parts == 1:
        if 0 < total <= largest:
            yield (total,)
        return
    for first in range(min(total - parts + 1, largest), 0, -1):
        if first * parts < total:
            break
        for rest in _partitions(total - first, parts - 1, first):
            yield (first, *rest)


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
