"""lowbit.hw.mvau: every engine against a numpy model of the layer, dense and zero-skip
schedules, thresholds and accumulator outputs, with stalls, and the unit's own timing."""

from __future__ import annotations

import numpy as np
import pytest
from lowbit.hw.banks import InputBanks
from lowbit.hw.mvau import MVAU
from lowbit.hw.schedule import layer_schedule
from lowbit.sw.ir import MatVec, ValueSet, WeightKind, signed_bits
from streams import beats_of, memories, stream_through, unpack

KIND = {"addsub": WeightKind.BINARY, "ternary": WeightKind.TERNARY, "shift": WeightKind.POW2,
        "multiply": WeightKind.INT, "abc": WeightKind.INT}


def _weights(engine: str, shape, rng) -> np.ndarray:
    if engine == "addsub":
        return rng.choice([-1, 1], shape)
    if engine == "ternary":
        return rng.choice([0, 0, 3, -2], shape)  # TTQ's +a / −b
    if engine == "shift":
        return rng.choice([0, 1, -2, 4, -8, 16], shape)
    if engine == "abc":  # ABC-Net's Σ α_m B_m on an integer grid: ±3 ± 5 ± 7
        return sum(a * rng.choice([-1, 1], shape) for a in (3, 5, 7))
    return rng.integers(-7, 8, shape)


def _model(w, index, scale, offset, thresholds, direction):
    """acc = Σ w·(scale·index + offset); with thresholds the output level index."""
    acc = (w * (scale * index[None, :] + offset)).sum(axis=1)
    if thresholds is None:
        return acc
    return (direction[:, None] * acc[:, None] >= thresholds).sum(axis=1)


CASES = [
    # engine, mh, mw, pe, simd, in_bits, bipolar input, stages, thresholds (levels), zero_skip
    # [, lut weights[, elements per input beat (default SIMD)]]
    ("addsub", 6, 12, 2, 4, 2, False, 1, 1, True),
    ("ternary", 8, 16, 2, 4, 2, False, 0, 3, True, True),  # a zero-skip ROM in logic
    ("addsub", 4, 8, 4, 8, 1, True, 0, None, True),  # bipolar input, constants, accumulators
    ("ternary", 8, 16, 2, 4, 2, False, 0, 3, True),  # zero-skip schedule
    ("ternary", 8, 16, 2, 4, 2, False, 2, 3, False),  # the same, dense
    ("shift", 6, 9, 3, 3, 3, False, 1, 2, True),
    ("shift", 4, 6, 1, 1, 2, False, 0, None, True),  # fully folded, accumulators
    ("multiply", 5, 10, 5, 2, 2, False, 1, 1, True),
    ("multiply", 4, 32, 2, 8, 2, False, 2, 3, False),  # input banks in block RAM
    ("ternary", 4, 256, 2, 2, 2, False, 1, 3, True),  # zero-skip: a block RAM per lane
    ("ternary", 3, 128, 1, 1, 2, False, 0, None, True),  # the same, fully folded
    ("ternary", 4, 512, 2, 4, 2, False, 0, 3, True, False, 1),  # the same, a lane per beat
    ("shift", 2, 768, 1, 6, 3, False, 1, 1, True, False, 2),  # two lanes per beat
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}x{c[2]}-{c[3]}x{c[4]}-{c[9]}"
                                             + ("-lut" if c[10:11] == (True,) else "")
                                             + (f"-beat{c[11]}" if c[11:] else "")
                                             for c in CASES])
@pytest.mark.parametrize("stalls", [(0.0, 0.0), (0.35, 0.5)], ids=["free", "stalled"])
def test_mvau_equals_its_model_and_its_timing(case, stalls):
    engine, mh, mw, pe, simd, in_bits, bipolar, stages, levels, zero_skip = case[:10]
    _check_unit(engine, engine, mh, mw, pe, simd, in_bits, bipolar, stages, levels, zero_skip,
                case[10:11] == (True,), case[11] if case[11:] else simd, stalls)


BITPLANE_CASES = [
    # weights, mh, mw, pe, simd, in_bits, bipolar input, stages, thresholds, planes per pass, lut
    ("addsub", 4, 16, 2, 8, 8, False, 0, 1, 1, False),  # BinaryNet's 8-bit first layer, serial
    ("addsub", 4, 16, 2, 8, 8, False, 2, 1, 4, True),  # two passes of four planes
    ("addsub", 4, 16, 4, 16, 8, False, 1, None, 8, False),  # all planes at once, constants
    ("multiply", 6, 12, 3, 4, 2, False, 1, 3, 1, False),  # int4 weights, 2-bit inputs, serial
    ("multiply", 6, 12, 3, 4, 2, False, 0, None, 2, True),  # all at once, accumulators
    ("ternary", 4, 8, 4, 8, 3, False, 0, 3, 1, False),  # constant weights, three passes
    ("shift", 2, 6, 1, 2, 1, True, 0, 1, 1, False),  # bipolar input: one plane
    ("abc", 4, 12, 2, 4, 2, False, 1, 3, 1, False),  # three ±1 bases, not five bit planes
    ("abc", 4, 12, 4, 12, 2, False, 0, None, 2, False),  # the same, constants
]


@pytest.mark.parametrize("case", BITPLANE_CASES,
                         ids=[f"{c[0]}-{c[1]}x{c[2]}-{c[3]}x{c[4]}-a{c[5]}-g{c[9]}"
                              for c in BITPLANE_CASES])
@pytest.mark.parametrize("stalls", [(0.0, 0.0), (0.35, 0.5)], ids=["free", "stalled"])
def test_bitplane_engine_equals_the_model_at_every_planes_per_pass(case, stalls):
    weights, mh, mw, pe, simd, in_bits, bipolar, stages, levels, planes, lut = case
    _check_unit("bitplane", weights, mh, mw, pe, simd, in_bits, bipolar, stages, levels, False,
                lut, simd, stalls, planes)


def _check_unit(engine, weights, mh, mw, pe, simd, in_bits, bipolar, stages, levels, zero_skip,
                lut, per_beat, stalls, planes=None):
    rng = np.random.default_rng(mh * mw + pe)
    w = _weights(weights, (mh, mw), rng)
    values = ValueSet((-1, 1)) if bipolar else ValueSet(tuple(range(-1, (1 << in_bits) - 1)))
    layer = MatVec("fc", KIND[weights], w.astype(np.int8), np.ones(mh), values, (mw,))
    passes = in_bits // planes if planes else 1
    schedule = layer_schedule(layer, pe, simd, zero_skip, passes)
    scale, offset = MVAU.lane_value(values)
    lo, hi = layer.acc_range
    thresholds = direction = None
    if levels is not None:
        thresholds = np.sort(rng.integers(lo - 1, hi + 2, (mh, levels)), axis=1)
        direction = rng.choice([-1, 1], mh)
    out_bits = 1 if levels is None else max(1, levels.bit_length())
    acc_bits = signed_bits(lo, hi)
    in_width = per_beat * in_bits
    bram = InputBanks.storage(in_width, simd, in_bits, mw, schedule.dense) == "bram"
    dut = MVAU(w, engine=engine, pe=pe, simd=simd, in_bits=in_bits, in_width=in_width,
               in_scale=scale, in_offset=offset, schedule=schedule, thresholds=thresholds,
               direction=direction, out_bits=out_bits, acc_bits=acc_bits, stages=stages,
               input_bram=bram, lut_weights=lut, planes=planes)
    built = memories(dut)
    rom = built.get("weights")  # block RAM, or (lut) marked for logic when over two words
    assert (rom is None) == (schedule.rom_words <= 2)
    if rom is not None:
        assert rom.attrs["rom_style"] == ("logic" if lut else "block")
    banks = sorted(name for name in built if name.startswith("input_banks"))
    lanes = simd if bram and not schedule.dense and simd > 1 else 1
    assert banks == ([] if not bram else ["input_banks"] if lanes == 1
                     else [f"input_banks{lane}" for lane in range(lanes)])
    frames = [rng.integers(0, len(values.levels), mw) for _ in range(4)]
    beats = [b for f in frames for b in beats_of(f, in_bits, per_beat)]
    nf = mh // pe
    outs, t_in, t_out = stream_through(dut, beats, len(frames) * nf, seed=5,
                                       stall_in=stalls[0], stall_out=stalls[1])
    bits = acc_bits if levels is None else out_bits
    got = np.array([unpack(o, pe, bits, levels is None) for o in outs]).reshape(len(frames), mh)
    expected = np.array([_model(w, f, scale, offset, thresholds, direction) for f in frames])
    np.testing.assert_array_equal(got, expected)
    if stalls == (0.0, 0.0):  # the unit's stated timing
        ib = dut.in_beats
        start = t_in[ib - 1] + InputBanks.READ_DELAY
        done = np.cumsum(schedule.steps)
        assert t_out[:nf] == [start + int(done[n]) + MVAU.PIPELINE_DEPTH + stages
                              for n in range(nf)]
        ends = t_out[nf - 1::nf]
        assert set(np.diff(ends)) == {max(ib, schedule.cycles)}


def test_zero_skip_saves_steps_on_sparse_weights():
    w = np.zeros((4, 16), dtype=np.int8)
    w[:, :3] = 1
    layer = MatVec("fc", WeightKind.TERNARY, w, np.ones(4), ValueSet((0, 1, 2, 3)), (16,))
    skip, dense = layer_schedule(layer, 1, 4, True), layer_schedule(layer, 1, 4, False)
    assert dense.cycles == 4 * 4 and skip.cycles == 4 * 1


def test_rom_layout_is_the_word_the_unit_stores():
    rng = np.random.default_rng(1)
    w = _weights("ternary", (8, 16), rng)
    layer = MatVec("fc", WeightKind.TERNARY, w.astype(np.int8), np.ones(8),
                   ValueSet((0, 1, 2, 3)), (16,))
    for zero_skip in (True, False):
        schedule = layer_schedule(layer, 2, 4, zero_skip)
        dut = MVAU(w, engine="ternary", pe=2, simd=4, in_bits=2, in_width=8, in_scale=1,
                   in_offset=0, schedule=schedule)
        words, fields = dut._rom_words()
        layout = MVAU.rom_layout("ternary", w, 2, 4, schedule)
        assert (layout.depth, layout.width) == (len(words), fields["width"])
        assert max(words).bit_length() <= layout.width
        bits = np.array([[(word >> b) & 1 for b in range(layout.width)] for word in words],
                        dtype=bool)
        assert (layout.columns("ternary", w, 2, 4, schedule) == bits).all()


@pytest.mark.parametrize("engine,weights,message", [
    ("addsub", [[1, 2]], "engine 'addsub' takes weights ±1"),
    ("shift", [[3, 1]], "engine 'shift' takes weights 0 and ±2\\^e"),
    ("ternary", [[1, 2]], "engine 'ternary' takes weights 0, \\+a and −b"),
    ("xnor", [[1, -1]], "engine must be one of"),
])
def test_mvau_rejects_weights_its_engine_cannot_take(engine, weights, message):
    w = np.array(weights)
    layer = MatVec("fc", WeightKind.INT, w.astype(np.int8), np.ones(1), ValueSet((0, 1)), (2,))
    with pytest.raises(ValueError, match=message):
        MVAU(w, engine=engine, pe=1, simd=2, in_bits=1, in_width=2, in_scale=1, in_offset=0,
             schedule=layer_schedule(layer, 1, 2, False))
