"""lowbit.hw.mvtu: the XNOR-popcount unit against a numpy model, with stalls, and its timing."""

from __future__ import annotations

import numpy as np
import pytest
from lowbit.hw.banks import InputBanks
from lowbit.hw.mvtu import MVTU
from streams import beats_of, memories, stream_through, unpack


def _model(weights, thresholds, ge, frame):
    matches = (~(weights ^ frame[None, :])).sum(axis=1)
    if thresholds is None:
        return 2 * matches - weights.shape[1]
    return np.where(ge, matches >= thresholds, matches <= thresholds).astype(int)


CASES = [
    # mh, mw, pe, simd, in_width, stages, thresholds?, operand register[, lut weights]
    (8, 12, 2, 4, 3, 1, True, False),
    (8, 12, 2, 4, 3, 1, True, False, True),  # a 12-word weight ROM in logic
    (6, 10, 6, 10, 10, 0, True, False),   # one ROM word: constant weights
    (4, 9, 1, 1, 9, 0, True, True),       # fully folded
    (5, 16, 5, 8, 4, 2, False, False),    # accumulator output
    (3, 7, 1, 7, 7, 3, False, True),
    (4, 64, 2, 16, 16, 1, True, False),   # input banks in block RAM (in_width == simd)
]


@pytest.mark.parametrize("case", CASES, ids=[str(c[:6]) + ("-lut" if c[8:] else "")
                                              for c in CASES])
@pytest.mark.parametrize("stalls", [(0.0, 0.0), (0.4, 0.5)], ids=["free", "stalled"])
def test_mvtu_equals_its_model_and_its_timing(case, stalls):
    mh, mw, pe, simd, in_width, stages, with_thresholds, operand = case[:8]
    lut = bool(case[8:])
    rng = np.random.default_rng(sum(case[:6]))
    weights = rng.random((mh, mw)) < 0.5
    thresholds = rng.integers(-1, mw + 2, mh) if with_thresholds else None
    ge = rng.random(mh) < 0.6
    bram = InputBanks.storage(in_width, simd, 1, mw) == "bram"
    dut = MVTU(weights, pe=pe, simd=simd, in_width=in_width, thresholds=thresholds,
               greater_equal=ge, popcount_stages=stages, input_bram=bram,
               operand_register=operand, lut_weights=lut)
    words = dut.neuron_fold * dut.synapse_fold
    rom = memories(dut).get("weights")  # block RAM, or (lut) marked for logic over two words
    assert (rom is None) == (words <= 2)
    if rom is not None:
        assert rom.attrs["rom_style"] == ("logic" if lut else "block")
    frames = [rng.random(mw) < 0.5 for _ in range(5)]
    beats = [b for f in frames for b in beats_of(f.astype(int), 1, in_width)]
    outs, t_in, t_out = stream_through(dut, beats, len(frames) * dut.neuron_fold, seed=3,
                                       stall_in=stalls[0], stall_out=stalls[1])
    bits = 1 if with_thresholds else dut.acc_bits
    got = np.array([unpack(o, pe, bits, not with_thresholds) for o in outs])
    expected = np.array([_model(weights, thresholds, ge, f) for f in frames])
    np.testing.assert_array_equal(got.reshape(len(frames), mh), expected)
    if stalls == (0.0, 0.0):
        nf, sf, ib = dut.neuron_fold, dut.synapse_fold, dut.in_beats
        start = t_in[ib - 1] + InputBanks.READ_DELAY  # the unit's stated timing
        tail = MVTU.pipeline_depth(operand) + stages
        assert t_out[:nf] == [start + (n + 1) * sf + tail for n in range(nf)]
        ends = t_out[nf - 1::nf]
        assert set(np.diff(ends)) == {max(ib, nf * sf)}


def test_rom_shape_is_what_the_unit_stores():
    dut = MVTU(np.zeros((8, 12), bool), pe=2, simd=4, in_width=4)
    words = dut._weight_words()
    assert MVTU.rom_shape(8, 12, 2, 4) == (len(words), 2 * 4)
    assert max(words).bit_length() <= 8


def test_rom_columns_are_the_bits_of_the_words_the_unit_builds():
    weights = np.random.default_rng(5).random((8, 12)) < 0.5
    words = MVTU(weights, pe=2, simd=4, in_width=4)._weight_words()
    bits = np.array([[(w >> b) & 1 for b in range(8)] for w in words], dtype=bool)
    assert (MVTU.rom_columns(weights, 2, 4) == bits).all()


@pytest.mark.parametrize("kwargs,message", [
    (dict(pe=3, simd=4, in_width=4), "pe=3 must divide 8"),
    (dict(pe=2, simd=5, in_width=4), "simd=5 must divide 12"),
    (dict(pe=2, simd=4, in_width=5), "in_width=5 must divide 12"),
    (dict(pe=2, simd=4, in_width=4, popcount_stages=9), r"popcount_stages must be 0..2, not 9"),
    (dict(pe=2, simd=4, in_width=2, input_bram=True), "input_bram needs in_width == simd"),
])
def test_mvtu_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MVTU(np.zeros((8, 12), bool), **kwargs)
