"""lowbit.hw.schedule: each lane visits every non-zero weight of its neuron fold exactly once,
in as few steps as the busiest lane needs."""

from __future__ import annotations

import numpy as np
from lowbit.hw.schedule import layer_schedule
from lowbit.sw.onnx_import import import_model
from lowbit.sw.synthetic import quant_mlp


def test_schedule_skips_only_positions_whose_weights_are_all_zero():
    net = import_model(quant_mlp((48, 24, 8), weights="ternary", sparsity=0.6, seed=2))
    layer = net.layers[0]
    for pe, simd in [(1, 1), (2, 4), (3, 6), (24, 48)]:
        s = layer_schedule(layer, pe, simd)
        nf, sf = layer.out_features // pe, layer.in_features // simd
        starts = np.cumsum((0,) + s.steps)
        for n in range(nf):
            rows = layer.weights[n * pe:(n + 1) * pe]
            seen = np.zeros(layer.in_features, dtype=bool)
            for t in range(starts[n], starts[n + 1]):
                cols = s.select[t] * simd + np.arange(simd)
                seen[cols[s.active[t]]] = True
            assert np.all(seen | (rows == 0).all(axis=0))  # every non-zero column visited once
            assert s.steps[n] == max(1, max(int(np.count_nonzero(
                (rows[:, lane::simd] != 0).any(axis=0))) for lane in range(simd)))
        assert s.cycles <= nf * sf


def test_without_zero_skipping_the_schedule_is_the_plain_order():
    net = import_model(quant_mlp((12, 6, 4), weights="ternary", sparsity=0.5, seed=1))
    s = layer_schedule(net.layers[0], 2, 3, zero_skip=False)
    assert s.dense and s.steps == (4, 4, 4)
    np.testing.assert_array_equal(s.select[:, 0], np.tile(np.arange(4), 3))
