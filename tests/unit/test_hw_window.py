"""lowbit.hw.window: the window generator against a plain loop over output and kernel
positions (padding, re-coding, strides, several beats per pixel), with stalls, and its timing:
each window read as soon as the words it needs (``need_words``) are written."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Shape
from lowbit.hw.window import WindowGenerator
from lowbit.sw.ir import ConvWindow
from streams import beats_of, memories, stream_through, unpack


def _windows(frame, w: ConvWindow) -> list[int]:
    """Window vectors of an HWC frame of incoming level indices, channels innermost."""
    x = np.asarray(frame).reshape(w.height, w.width, w.channels)
    top, left = w.pads[0], w.pads[1]
    (kh, kw), (sh, sw) = w.kernel, w.stride
    out = []
    for oy in range(w.out_height):
        for ox in range(w.out_width):
            for ky in range(kh):
                for kx in range(kw):
                    iy, ix = oy * sh + ky - top, ox * sw + kx - left
                    for c in range(w.channels):
                        inside = 0 <= iy < w.height and 0 <= ix < w.width
                        out.append(w.in_map[x[iy, ix, c]] if inside else w.pad_index)
    return out


CASES = [
    # channels, height, width, kernel, stride, pads, in_bits, elements per beat, bipolar pad
    (2, 5, 5, (3, 3), (1, 1), (1, 1, 1, 1), 1, 2, True),  # bipolar padded: ternary out
    (3, 6, 5, (3, 2), (2, 1), (0, 1, 2, 0), 2, 3, False),  # asymmetric pads, stride (2, 1)
    (4, 4, 4, (2, 2), (2, 2), (0, 0, 0, 0), 2, 2, False),  # two beats per pixel
    (8, 8, 8, (3, 3), (1, 1), (0, 0, 0, 0), 2, 8, False),  # frame banks in block RAM
    (2, 8, 5, (1, 1), (2, 2), (0, 0, 0, 0), 2, 2, False),  # the stride leaves rows unread
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}x{c[1]}x{c[2]}-k{c[3]}-s{c[4]}"
                                             for c in CASES])
@pytest.mark.parametrize("stalls", [(0.0, 0.0), (0.4, 0.5)], ids=["free", "stalled"])
@pytest.mark.parametrize("line", [False, True], ids=["frames", "line"])
def test_window_generator_equals_the_loop_and_its_timing(case, stalls, line):
    c, h, wd, kernel, stride, pads, in_bits, elements, bipolar_pad = case
    if bipolar_pad:  # a padded bipolar map: bit b becomes ternary index 2b, padding index 1
        in_map, pad_index, out_bits = (0, 2), 1, 2
    else:
        in_map, pad_index, out_bits = tuple(range(1 << in_bits)), 0, in_bits
    window = ConvWindow(c, h, wd, kernel, stride, pads, in_map, pad_index if any(pads) else None)
    in_width = elements * in_bits
    dut = WindowGenerator(window, in_width=in_width, in_bits=in_bits, out_bits=out_bits,
                          line=line)
    width, per_window = WindowGenerator.out_beat(window, in_width, in_bits, out_bits)
    assert width == dut.out_width
    rng = np.random.default_rng(c * h * wd)
    frames = [rng.integers(0, len(in_map), c * h * wd) for _ in range(3)]
    beats = [b for f in frames for b in beats_of(f, in_bits, elements)]
    n_out = 3 * window.positions * per_window
    outs, t_in, t_out = stream_through(dut, beats, n_out, seed=2, stall_in=stalls[0],
                                       stall_out=stalls[1])
    got = [v for o in outs for v in unpack(o, elements, out_bits)]
    assert got == [v for f in frames for v in _windows(f, window)]
    if stalls == (0.0, 0.0):  # a window leaves once its words are in, its beats back to back
        frame_beats = len(beats) // 3
        need = WindowGenerator.need_words(window, c // elements)
        assert need.max() == frame_beats
        expected, last = [], -1
        for f in range(3):
            for n in need:
                here = t_in[f * frame_beats + n - 1] + WindowGenerator.FIRST_BEAT_DELAY
                first = max(last + 1, here)
                expected += range(first, first + per_window)
                last = expected[-1]
        assert list(t_out) == expected
        assert t_out[0] < t_in[frame_beats - 1]  # the first window before the frame's end


@pytest.mark.parametrize("channels,size,in_width,in_bits", [(8, 8, 16, 2), (1, 3, 1, 1),
                                                          (4, 6, 4, 2)])
@pytest.mark.parametrize("line", [False, True], ids=["frames", "line"])
def test_bank_facts_are_the_memory_the_generator_builds(channels, size, in_width, in_bits, line):
    window = ConvWindow(channels, size, size, (2, 2), (1, 1), (0, 0, 0, 0),
                        tuple(range(1 << in_bits)))
    dut = WindowGenerator(window, in_width=in_width, in_bits=in_bits, out_bits=in_bits,
                          line=line)
    memory = memories(dut)["line_buffer" if line else "input_banks"]
    bits = memory.depth * Shape.cast(memory.shape).width
    assert WindowGenerator.bank_bits(window, in_bits, line) == bits
    block = memory.attrs.get("ram_style") == "block"
    ram = WindowGenerator.bank_ram(window, in_width, in_bits, line=line)
    assert (ram is not None) == block
    if block:
        assert ram == (memory.depth, Shape.cast(memory.shape).width)


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}x{c[1]}x{c[2]}-k{c[3]}-s{c[4]}"
                                             for c in CASES])
def test_the_ring_holds_what_a_row_of_windows_reads_and_the_next_rows_first(case):
    """Counted from the words themselves: while a row of windows is read, every word a later
    window reads stays; the ring holds them, and the words of the next row's first window
    (read before the floor moves), and never more than a frame."""
    c, h, wd, kernel, stride, pads, in_bits, elements, _ = case
    window = ConvWindow(c, h, wd, kernel, stride, pads, tuple(range(1 << in_bits)))
    (kh, kw), (sh, sw) = kernel, stride
    reads = []  # per window: the pixels (raster index) it reads
    for oy in range(window.out_height):
        for ox in range(window.out_width):
            reads.append([(oy * sh + ky - pads[0]) * wd + ox * sw + kx - pads[1]
                          for ky in range(kh) for kx in range(kw)
                          if 0 <= oy * sh + ky - pads[0] < h and 0 <= ox * sw + kx - pads[1] < wd])
    ow, most = window.out_width, 0
    for row in range(window.out_height):
        later = [p for k in range(row * ow, len(reads)) for p in reads[k]]
        floor = min(later) // wd * wd  # whole rows above the row of windows are free
        upto = [max(p for k in range(row * ow, (row + 1) * ow) for p in reads[k])]
        if row + 1 < window.out_height:
            upto.append(max(reads[(row + 1) * ow]))
        if row == window.out_height - 1:
            upto.append(h * wd - 1)  # the last window waits for the whole frame
        most = max(most, max(upto) + 1 - floor)
    assert WindowGenerator.line_words(window, 1) == min(most, h * wd)


def test_window_generator_rejects_a_beat_that_splits_elements():
    window = ConvWindow(3, 4, 4, (3, 3), (1, 1), (0, 0, 0, 0), tuple(range(4)))
    with pytest.raises(ValueError, match="must hold whole elements"):
        WindowGenerator(window, in_width=3, in_bits=2, out_bits=2)


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}x{c[1]}x{c[2]}-k{c[3]}-s{c[4]}"
                                             for c in CASES])
def test_need_words_is_one_past_the_last_word_a_window_reads(case):
    """...and the whole frame for the last window: a bank freed before its frame was written
    entirely would be taken as full two frames later (found by fuzz_rtl, seed 199415935)."""
    c, h, wd, kernel, stride, pads, in_bits, elements, _ = case
    window = ConvWindow(c, h, wd, kernel, stride, pads, tuple(range(1 << in_bits)))
    wp = c // elements
    (kh, kw), (sh, sw) = kernel, stride
    last = []
    for oy in range(window.out_height):
        for ox in range(window.out_width):
            words = [((oy * sh + ky - pads[0]) * wd + ox * sw + kx - pads[1]) * wp + wp - 1
                     for ky in range(kh) for kx in range(kw)
                     if 0 <= oy * sh + ky - pads[0] < h and 0 <= ox * sw + kx - pads[1] < wd]
            last.append(max(words) + 1)
    last[-1] = h * wd * wp  # the last window waits for the whole frame (its bank is freed)
    assert list(WindowGenerator.need_words(window, wp)) == last
