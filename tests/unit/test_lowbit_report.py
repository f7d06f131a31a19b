"""lowbit.report: the per-layer table names every buffer's bits, as the units build them."""

from __future__ import annotations

from amaranth.hdl import Shape
from amaranth.lib.memory import Memory
from lowbit.hw.plan import Folding, LayerFolding
from lowbit.sw.synthetic import conv_net

import lowbit
from lowbit.report import buffer_bits, perf_rows, report_markdown


def _memory_bits(component) -> int:
    module = component.elaborate(None)
    total = 0
    for entry in module._named_submodules.values():
        sub = entry[0] if isinstance(entry, tuple) else entry
        if isinstance(sub, Memory) and not any(sub.init):  # a buffer, not a weight ROM
            total += sub.depth * Shape.cast(sub.shape).width
    return total


def test_buffer_bits_per_layer_are_the_memories_and_banks_built():
    net = lowbit.load(conv_net((2, 8, 8), (("conv", 4, 3, 1, 1), ("pool", 2), ("fc", 6)),
                               seed=3))
    folding = Folding((LayerFolding(net.layers[0].name, 2, 6),
                       LayerFolding(net.layers[1].name, 1, 16)))
    design = lowbit.compile(net, folding)
    top = design.component().elaborate(None)
    parts = {}
    for name, entry in top._named_submodules.items():
        sub = entry[0] if isinstance(entry, tuple) else entry
        parts[name] = sub
    rows = perf_rows(design.perf)
    total = 0
    for lp, row, layer_perf in zip(design.plan.layers, rows, design.perf.layers):
        mine = [sub for name, sub in parts.items() if name.startswith(f"l{lp.index}_")]
        built = sum(_memory_bits(sub) for sub in mine)
        if lp.input_storage == "registers":  # flip-flop banks: two frames of the unit's input
            built += 2 * lp.layer.in_features * lp.layer.in_values.bits
        assert row["buffer_bits"] == built, lp.name
        total += built
        assert layer_perf.window_storage_bits + layer_perf.pool_storage_bits \
            + layer_perf.bank_storage_bits == built
    assert buffer_bits(design.perf) == total > 0
    assert "buffer bits" in report_markdown(net, design.perf)
