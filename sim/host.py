"""Host side of the hardware stream: frames to input beats, output beats to model outputs."""

from __future__ import annotations

import numpy as np
from lowbit.sw.ir import Network
from lowbit.sw.reference import check_input, quantize_input

from .perf import NetworkPerf

__all__ = ["input_beats", "beats_to_ints", "decode_outputs", "beat_bytes"]


def beat_bytes(width: int) -> int:
    return max(1, -(-width // 8))


def input_beats(net: Network, perf: NetworkPerf, x) -> np.ndarray:
    """Float frames ``(N, *input_shape)`` → ``(N, in_beats, bytes)`` uint8, little-endian beats.

    The float → level-index step is the host-side input quantizer (the same function the
    reference runs); element ``i`` takes bits ``[i·in_bits, (i+1)·in_bits)`` of the frame.
    """
    index = quantize_input(net.input, check_input(net, x))  # (N, MW) level indices
    n = len(index)
    per = perf.in_bits
    bits = np.unpackbits(index[:, :, None], axis=2, bitorder="little")[:, :, :per]
    bits = bits.reshape(n, -1)  # element i at bits [i·per, (i+1)·per)
    width, beats = perf.in_width, perf.in_beats
    nbytes = beat_bytes(width)
    out = np.zeros((n, beats, nbytes), dtype=np.uint8)
    per_beat = bits.reshape(n, beats, width)
    packed = np.packbits(per_beat, axis=2, bitorder="little")
    out[:, :, : packed.shape[2]] = packed
    return out


def beats_to_ints(beats: np.ndarray) -> list[int]:
    """``(..., bytes)`` uint8 → Python ints (little-endian), flattened over the leading axes."""
    flat = beats.reshape(-1, beats.shape[-1])
    return [int.from_bytes(row.tobytes(), "little") for row in flat]


def _lanes(beats: np.ndarray, lanes: int, bits: int) -> np.ndarray:
    """Split ``(M, bytes)`` beats into ``(M, lanes)`` signed integers of ``bits`` each."""
    values = np.unpackbits(beats, axis=1, bitorder="little")[:, : lanes * bits]
    values = values.reshape(len(beats), lanes, bits).astype(np.int64)
    weights = 1 << np.arange(bits, dtype=np.int64)
    raw = (values * weights).sum(axis=2)
    return np.where(raw >= 1 << (bits - 1), raw - (1 << bits), raw)


def decode_outputs(net: Network, perf: NetworkPerf, beats: np.ndarray):
    """Output beats ``(N·out_beats, bytes)`` → the model's float output ``(N, *output_shape)``,
    plus the integer accumulators ``(N, MH)`` (or class indices ``(N,)`` with label select)."""
    last = net.layers[-1]
    if perf.label_select:
        index = np.array(beats_to_ints(beats), dtype=np.int64) & ((1 << perf.out_width) - 1)
        return None, index
    pe = perf.layers[-1].pe
    accs = _lanes(beats, pe, perf.layers[-1].out_lane_bits).reshape(-1, last.out_features)
    y = last.tail.lookup(accs)
    return y.reshape(len(accs), *net.output_shape).astype(np.float32), accs
