"""lowbit.hw.label_select: numpy's argmax (first maximum wins), with back-pressure."""

from __future__ import annotations

import numpy as np
import pytest
from lowbit.hw.label_select import LabelSelect
from streams import pack, stream_through


@pytest.mark.parametrize("count,lanes", [(10, 1), (10, 5), (12, 4), (7, 7), (32, 16)])
@pytest.mark.parametrize("stalls", [(0.0, 0.0), (0.3, 0.6)], ids=["free", "stalled"])
def test_label_select_is_numpy_argmax_with_first_maximum(count, lanes, stalls):
    bits = 6
    dut = LabelSelect(count, lanes, bits)
    rng = np.random.default_rng(count * lanes)
    frames = rng.integers(-4, 4, (12, count))  # small range: many ties
    frames[0] = 3  # all equal: index 0
    beats = [pack(f[b * lanes:(b + 1) * lanes], bits)
             for f in frames for b in range(count // lanes)]
    got, t_in, t_out = stream_through(dut, beats, len(frames), stall_in=stalls[0],
                                      stall_out=stalls[1], seed=1)
    assert got == list(frames.argmax(axis=1))
    if stalls == (0.0, 0.0):
        per = count // lanes
        assert t_out == [t_in[(k + 1) * per - 1] + LabelSelect.LATENCY
                         for k in range(len(frames))]


def test_the_comparison_chain_grows_linearly_with_the_lanes():
    # each lane's running maximum is a wire: with an expression used twice per lane the
    # Verilog doubled per lane (17 MB at 16 lanes, found by bench/fuzz_rtl.py)
    from amaranth.back import verilog

    size = {lanes: len(verilog.convert(LabelSelect(lanes, lanes, 8), name="t"))
            for lanes in (8, 32)}
    assert size[32] < 4 * size[8]


def test_label_select_rejects_bad_lanes():
    with pytest.raises(ValueError, match="lanes=3 must divide count=10"):
        LabelSelect(10, 3, 8)
