"""lowbit.hw.pool: k × k max pooling at stride k against numpy (floor mode), with stalls, and
its timing, with the row read asynchronously and synchronously (one beat ahead)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Shape
from lowbit.hw.pool import MaxPoolUnit
from streams import memories, pack, stream_through, unpack


@pytest.mark.parametrize("kernel,height,width,channels,pe,bits", [
    (2, 4, 4, 4, 2, 1),  # bipolar: OR
    (2, 5, 7, 3, 3, 2),  # a partial window at the edges is dropped
    (3, 6, 6, 2, 1, 3),
    (2, 4, 6, 1, 1, 2),  # one beat per pixel: the next beat reads the word just written
])
@pytest.mark.parametrize("stalls", [(0.0, 0.0), (0.4, 0.5)], ids=["free", "stalled"])
@pytest.mark.parametrize("sync", [False, True], ids=["async", "sync"])
def test_max_pool_equals_numpy_and_its_timing(kernel, height, width, channels, pe, bits, stalls,
                                              sync):
    dut = MaxPoolUnit(kernel=kernel, height=height, width=width, channels=channels, pe=pe,
                      lane_bits=bits, sync_read=sync)
    rng = np.random.default_rng(kernel * height * width)
    frames = rng.integers(0, 1 << bits, (3, height, width, channels))
    nf = channels // pe
    beats = [pack(f[y, x, n * pe:(n + 1) * pe], bits)
             for f in frames for y in range(height) for x in range(width) for n in range(nf)]
    oh, ow = height // kernel, width // kernel
    outs, t_in, t_out = stream_through(dut, beats, 3 * oh * ow * nf, seed=4,
                                       stall_in=stalls[0], stall_out=stalls[1])
    got = np.array([unpack(o, pe, bits) for o in outs]).reshape(3, oh, ow, channels)
    cut = frames[:, :oh * kernel, :ow * kernel]
    expected = cut.reshape(3, oh, kernel, ow, kernel, channels).max(axis=(2, 4))
    np.testing.assert_array_equal(got, expected)
    if stalls == (0.0, 0.0):  # beat nf of the pixel completing a window, one cycle later
        completing = [((py * kernel + kernel - 1) * width + px * kernel + kernel - 1) * nf + n
                      for py in range(oh) for px in range(ow) for n in range(nf)]
        assert t_out[:len(completing)] == [t_in[b] + MaxPoolUnit.LATENCY for b in completing]


@pytest.mark.parametrize("width,channels,pe,bits", [(10, 8, 2, 2), (7, 3, 3, 1)])
def test_partial_row_bits_are_the_memory_the_unit_builds(width, channels, pe, bits):
    dut = MaxPoolUnit(kernel=2, height=4, width=width, channels=channels, pe=pe, lane_bits=bits)
    memory = memories(dut)["partial"]
    assert MaxPoolUnit.partial_bits(width // 2, channels, bits) == \
        memory.depth * Shape.cast(memory.shape).width
