"""The compile-time schedule of a unit: which synapse fold each input lane reads at each step.

Without zero skipping every neuron fold takes ``SF`` steps in the plain order. With it (layers
whose weights have zeros, on :class:`lowbit.hw.mvau.MVAU`), each lane walks only the folds where
a weight of the neuron fold is non-zero, so a neuron fold takes as many steps as its busiest
lane. The MVAU stores the schedule in its ROM; the cycle model counts its steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from lowbit.sw.ir import MatVec

from .engines import engine

__all__ = ["Schedule", "layer_schedule"]


@dataclass(frozen=True, eq=False)
class Schedule:
    """The compute steps of one layer, fixed at compile time.

    Neuron fold ``nf`` takes ``steps[nf]`` consecutive steps. At step ``t`` input lane ``l``
    reads synapse fold ``select[t, l]`` (element ``select[t, l]·simd + l``) when ``active[t, l]``;
    an inactive lane contributes 0. Without zero skipping ``steps[nf] = SF`` and lane ``l`` reads
    fold ``t − start(nf)``. With it, each lane walks only the folds where some weight of the
    neuron fold's ``pe`` rows is non-zero, so ``steps[nf]`` is the busiest lane's count (at least
    1); every weight of a skipped position is 0, so nothing is lost.
    """

    steps: tuple[int, ...]
    select: np.ndarray  # (T, simd) int
    active: np.ndarray  # (T, simd) bool
    dense: bool  # no position skipped: the plain NF × SF order
    passes: int = 1  # a bit-plane unit walks a neuron fold's SF folds once per input-plane group

    @property
    def cycles(self) -> int:
        return sum(self.steps)

    @property
    def rom_words(self) -> int:
        """Words of the unit's weight ROM: one per step, or per step of one pass."""
        return self.cycles // self.passes


def layer_schedule(layer: MatVec, pe: int, simd: int, zero_skip: bool | None = True,
                   passes: int = 1) -> Schedule:
    """The schedule of ``layer`` at ``pe``/``simd``; ``passes`` > 1 (a bit-plane unit taking
    its input planes in groups) is the dense order with each neuron fold's SF steps repeated
    once per group."""
    mh, mw = layer.out_features, layer.in_features
    nf, sf = mh // pe, mw // simd
    if passes > 1:
        select = np.tile(np.arange(sf), nf * passes)[:, None].repeat(simd, axis=1)
        return Schedule((sf * passes,) * nf, select, np.ones_like(select, dtype=bool), True,
                        passes)
    needed = (layer.weights.reshape(nf, pe, sf, simd) != 0).any(axis=1)  # (NF, SF, SIMD)
    counts = needed.sum(axis=1)  # (NF, SIMD)
    if zero_skip is False or engine(layer) == "xnor" or counts.min() == sf:
        select = np.tile(np.arange(sf), nf)[:, None].repeat(simd, axis=1)
        return Schedule((sf,) * nf, select, np.ones_like(select, dtype=bool), True)
    steps = np.maximum(counts.max(axis=1), 1)
    total = int(steps.sum())
    select = np.zeros((total, simd), dtype=np.int64)
    active = np.zeros((total, simd), dtype=bool)
    t0 = 0
    for n in range(nf):
        for lane in range(simd):
            folds = np.flatnonzero(needed[n, :, lane])
            select[t0:t0 + len(folds), lane] = folds
            active[t0:t0 + len(folds), lane] = True
        t0 += int(steps[n])
    return Schedule(tuple(int(v) for v in steps), select, active, False)
