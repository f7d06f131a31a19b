"""Each hardware component in Amaranth's simulator, against a plain Python model, with stalls."""

from __future__ import annotations

import random

import numpy as np
import pytest
from amaranth.sim import Simulator
from lowbit.hw.label_select import LabelSelect
from lowbit.hw.mvtu import MVTU
from lowbit.hw.popcount import Popcount, popcount_levels


def _run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6, if_exists=True)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("style", ["carry", "wallace"])
@pytest.mark.parametrize("width,stages", [(1, 0), (5, 0), (13, 1), (64, 2), (100, 3), (9, 3)])
def test_popcount_counts_ones_after_its_stages_and_holds_when_disabled(width, stages, style):
    stages = min(stages, popcount_levels(width))
    dut = Popcount(width, stages, style)
    rng = random.Random(width * 7 + stages)
    inputs = [rng.getrandbits(width) for _ in range(40)] + [0, (1 << width) - 1]
    enables = [rng.random() < 0.7 for _ in inputs]
    seen = []

    async def bench(ctx):
        pipe = []  # values inside the pipeline, advanced only when enabled
        for value, en in zip(inputs + [0] * (stages + 2), enables + [True] * (stages + 2)):
            ctx.set(dut.i, value)
            ctx.set(dut.en, en)
            if stages == 0:
                expected = bin(value).count("1")
            else:
                expected = pipe[0] if len(pipe) == stages else None
            if expected is not None:
                assert ctx.get(dut.o) == expected
                seen.append(expected)
            if stages:
                await ctx.tick()
            else:
                await ctx.delay(1e-6)
            if stages and en:
                pipe = (pipe + [bin(value).count("1")])[-stages:]

    _run(dut, bench)
    assert len(seen) >= len(inputs) // 2


def test_popcount_rejects_bad_parameters():
    with pytest.raises(ValueError, match="width must be at least 1, not 0"):
        Popcount(0)
    with pytest.raises(ValueError, match=r"stages must be 0..3, not 4"):
        Popcount(8, 4)
    with pytest.raises(ValueError, match=r"style must be one of \('carry', 'wallace'\), not 'x'"):
        Popcount(8, 0, "x")


def _mvtu_model(weights, thresholds, ge, frame):
    matches = (~(weights ^ frame[None, :])).sum(axis=1)
    if thresholds is None:
        return 2 * matches - weights.shape[1]
    return np.where(ge, matches >= thresholds, matches <= thresholds).astype(int)


def _stream_mvtu(dut, frames, stall_in, stall_out, seed):
    """Drive ``frames`` through ``dut``; returns output beats and transfer cycles."""
    rng = random.Random(seed)
    beats = []
    for frame in frames:
        for j in range(dut.in_beats):
            chunk = frame[j * dut.in_width:(j + 1) * dut.in_width]
            beats.append(int("".join("1" if b else "0" for b in chunk[::-1]), 2))
    outs, t_in, t_out = [], [], []
    want = len(frames) * dut.neuron_fold

    async def bench(ctx):
        i = cycle = 0
        offering = False
        while len(outs) < want and cycle < 20000:
            if not offering and i < len(beats):
                offering = rng.random() >= stall_in
            ctx.set(dut.i.valid, offering)
            if offering:
                ctx.set(dut.i.payload, beats[i])
            ctx.set(dut.o.ready, rng.random() >= stall_out)
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                outs.append(ctx.get(dut.o.payload))
                t_out.append(cycle)
            if offering and ctx.get(dut.i.ready):
                t_in.append(cycle)
                i += 1
                offering = False
            await ctx.tick()
            cycle += 1

    _run(dut, bench)
    return outs, t_in, t_out


def _lanes(value, lanes, bits, signed):
    out = []
    for k in range(lanes):
        v = (value >> (k * bits)) & ((1 << bits) - 1)
        if signed and v >= 1 << (bits - 1):
            v -= 1 << bits
        out.append(v)
    return out


MVTU_CASES = [
    # mh, mw, pe, simd, in_width, stages, thresholds?
    (8, 12, 2, 4, 3, 1, True),
    (6, 10, 6, 10, 10, 0, True),   # one ROM word: constant weights
    (4, 9, 1, 1, 9, 0, True),      # fully folded
    (5, 16, 5, 8, 4, 2, False),    # accumulator output
    (3, 7, 1, 7, 7, 3, False),
]


@pytest.mark.parametrize("case", MVTU_CASES, ids=[str(c[:6]) for c in MVTU_CASES])
@pytest.mark.parametrize("stalls", [(0.0, 0.0), (0.4, 0.5)], ids=["free", "stalled"])
def test_mvtu_equals_its_model_and_its_timing(case, stalls):
    mh, mw, pe, simd, in_width, stages, with_thresholds = case
    rng = np.random.default_rng(sum(case[:6]))
    weights = rng.random((mh, mw)) < 0.5
    thresholds = rng.integers(-1, mw + 2, mh) if with_thresholds else None
    ge = rng.random(mh) < 0.6
    dut = MVTU(weights, pe=pe, simd=simd, in_width=in_width, thresholds=thresholds,
               greater_equal=ge, popcount_stages=stages)
    frames = [rng.random(mw) < 0.5 for _ in range(5)]
    outs, t_in, t_out = _stream_mvtu(dut, frames, *stalls, seed=3)
    bits = 1 if with_thresholds else dut.acc_bits
    got = np.array([_lanes(o, pe, bits, not with_thresholds) for o in outs])
    got = got.reshape(len(frames), mh)
    expected = np.array([_mvtu_model(weights, thresholds, ge, f) for f in frames])
    np.testing.assert_array_equal(got, expected)
    if stalls == (0.0, 0.0):
        nf_, sf_, ib = dut.neuron_fold, dut.synapse_fold, dut.in_beats
        # output beat nf of frame 0 (see MVTU docstring and lowbit.sim.perf)
        assert t_out[:nf_] == [ib + (n + 1) * sf_ + 1 + stages for n in range(nf_)]
        ends = t_out[nf_ - 1 :: nf_]
        assert set(np.diff(ends)) == {max(ib, nf_ * sf_)}


@pytest.mark.parametrize("kwargs,message", [
    (dict(pe=3, simd=4, in_width=4), "pe=3 must divide 8"),
    (dict(pe=2, simd=5, in_width=4), "simd=5 must divide 12"),
    (dict(pe=2, simd=4, in_width=5), "in_width=5 must divide 12"),
    (dict(pe=2, simd=4, in_width=4, popcount_stages=9), r"popcount_stages must be 0..2, not 9"),
])
def test_mvtu_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MVTU(np.zeros((8, 12), bool), **kwargs)


@pytest.mark.parametrize("count,lanes", [(10, 1), (10, 5), (12, 4), (7, 7)])
@pytest.mark.parametrize("stall_out", [0.0, 0.6])
def test_label_select_is_numpy_argmax_with_first_maximum(count, lanes, stall_out):
    bits = 6
    dut = LabelSelect(count, lanes, bits)
    rng = np.random.default_rng(count * lanes)
    frames = rng.integers(-4, 4, (12, count))  # small range: many ties
    frames[0] = 3  # all equal: index 0
    beats = []
    for f in frames:
        for b in range(count // lanes):
            beats.append(sum((int(v) & 63) << (k * bits)
                             for k, v in enumerate(f[b * lanes:(b + 1) * lanes])))
    got = []
    r = random.Random(1)

    async def bench(ctx):
        i = 0
        for _ in range(2000):
            ctx.set(dut.i.valid, i < len(beats))
            if i < len(beats):
                ctx.set(dut.i.payload, beats[i])
            ctx.set(dut.o.ready, r.random() >= stall_out)
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                got.append(ctx.get(dut.o.payload))
            if i < len(beats) and ctx.get(dut.i.ready):
                i += 1
            await ctx.tick()
            if len(got) == len(frames):
                break

    _run(dut, bench)
    assert got == list(frames.argmax(axis=1))


def test_label_select_rejects_bad_lanes():
    with pytest.raises(ValueError, match="lanes=3 must divide count=10"):
        LabelSelect(10, 3, 8)
