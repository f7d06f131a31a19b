"""The bit-exact software reference: executes the IR on integers, batched.

Binary layers on bipolar inputs run bit-packed: both operands are packed 64 lanes to a
``uint64`` word (bit 1 ↔ +1, padding bits 0 on both sides) and the accumulator is
``K - 2 * popcount(a XOR w)``, summed over words with ``np.bitwise_count``. Other input value sets
(the ternary output of ONNX ``Sign``) use an exact integer matrix product.

:func:`run` returns what the ONNX model returns (float32): the last accumulator is mapped through
the layer's :class:`~lowbit.sw.ir.OutputTail` table, which holds the model's own float32 results.
"""

from __future__ import annotations

import os
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from lowbit.errors import InputShapeError

from .float_eval import run_float_model
from .ir import InputQuant, MatVec, Network, WeightKind

__all__ = ["run", "quantize_input", "pack_bits", "binary_dot", "check_input", "stream_order",
           "onnx_order", "im2col", "max_pool"]

CHUNK = 1024
WINDOW_BYTES = 1 << 27  # window vectors built at once, per convolution


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack a ``(N, K)`` boolean array into ``(N, ceil(K/64))`` little-endian uint64 words."""
    bits = np.ascontiguousarray(bits).view(bool) if bits.dtype == np.uint8 else \
        np.ascontiguousarray(bits, dtype=bool)
    n, k = bits.shape
    words = -(-k // 64)
    packed = np.zeros((n, words * 8), dtype=np.uint8)
    packed[:, : -(-k // 8)] = np.packbits(bits, axis=1, bitorder="little")
    return packed.view("<u8")


def binary_dot(a_words: np.ndarray, w_words: np.ndarray, k: int) -> np.ndarray:
    """Bipolar dot products from packed words: ``(N, W) × (C, W) → (N, C)`` int32.

    Padding bits must be 0 in both operands (they then never mismatch).
    """
    n, c = a_words.shape[0], w_words.shape[0]
    mismatches = np.zeros((n, c), dtype=np.int32)
    scratch = np.empty((n, c), dtype=np.uint64)
    counts = np.empty((n, c), dtype=np.uint8)
    for j in range(a_words.shape[1]):
        np.bitwise_xor(a_words[:, j, None], w_words[None, :, j], out=scratch)
        np.bitwise_count(scratch, out=counts)
        mismatches += counts
    return k - 2 * mismatches


def quantize_input(stage: InputQuant, x: np.ndarray) -> np.ndarray:
    """The host-side input stage: float input ``(N, *shape)`` → level indices ``(N, K)`` uint8,
    in streaming order (a ``(C, H, W)`` map in HWC order: pixels in raster order, channels
    innermost)."""
    pre = run_float_model(stage.prefix, x, what=stage.tensor)
    flat = pre.reshape(len(x), int(np.prod(stage.out_shape)))
    if stage.quantizer.kind != "bipolar" and np.isnan(flat).any():
        # Quant and Sign pass NaN on (BipolarQuant maps it to -1, as lowbit does)
        frame = int(np.flatnonzero(np.isnan(flat).any(axis=1))[0])
        raise InputShapeError(f"frame {frame}: NaN reaches the input quantizer {stage.name!r}, "
                              f"and an integer level cannot hold it", param="inputs")
    return stream_order(stage.quantizer.index(flat), stage.out_shape)


def stream_order(flat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``(N, prod(shape))`` in ONNX (C order) → streaming order (HWC for a 3-D map)."""
    if len(shape) != 3:
        return flat
    return np.ascontiguousarray(flat.reshape(len(flat), *shape).transpose(0, 2, 3, 1)).reshape(
        len(flat), -1)


def onnx_order(flat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The inverse of :func:`stream_order`: ``(N, *shape)`` in ONNX's layout."""
    if len(shape) != 3:
        return flat.reshape(len(flat), *shape)
    c, h, w = shape
    return np.ascontiguousarray(flat.reshape(len(flat), h, w, c).transpose(0, 3, 1, 2))


def im2col(values: np.ndarray, window) -> np.ndarray:
    """Window vectors ``(N·positions, kh·kw·C)`` of HWC maps ``(N, H·W·C)`` (padding given as
    already-mapped level values), in the order :class:`~lowbit.sw.ir.ConvWindow` defines."""
    w = window
    n = len(values)
    x = values.reshape(n, w.height, w.width, w.channels)
    top, left, bottom, right = w.pads
    if any(w.pads):
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)),
                   constant_values=w.pad_index)
    (kh, kw), (sh, sw) = w.kernel, w.stride
    oh, ow = w.out_height, w.out_width
    cols = np.empty((n, oh, ow, kh, kw, w.channels), dtype=values.dtype)
    for ky in range(kh):
        for kx in range(kw):
            cols[:, :, :, ky, kx] = x[:, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw]
    return cols.reshape(n * oh * ow, kh * kw * w.channels)


def max_pool(index: np.ndarray, layer) -> np.ndarray:
    """Max pooling of level indices ``(N, H·W·C)`` (HWC) by ``layer.pool``."""
    p, c = layer.pool, layer.out_features
    k, oh, ow = p.kernel, p.out_height, p.out_width
    x = index.reshape(len(index), p.height, p.width, c)[:, :oh * k, :ow * k]
    x = x.reshape(len(index), oh, k, ow, k, c).max(axis=(2, 4))
    return np.ascontiguousarray(x).reshape(len(index), -1)


class _Compiled:
    """Per-layer operands prepared once: packed weights, int weights, threshold arrays."""

    def __init__(self, layer: MatVec):
        self.layer = layer
        self.k = layer.in_features
        self.packed = layer.in_values.bipolar and layer.weight_kind is WeightKind.BINARY
        if self.packed:
            self.w_words = pack_bits(layer.weights > 0)
        else:
            self.w_float = layer.weights.T.astype(np.float64)
            self.levels = np.array(layer.in_values.levels, dtype=np.float64)
        act = layer.activation
        if act is not None:
            self.signed_t = act.thresholds.T[:, None, :]  # (L-1, 1, C)
            self.direction = act.direction.astype(np.int32)

    def accumulate(self, x) -> np.ndarray:
        """Accumulators ``(N, C)``, or ``(N·positions, C)`` for a convolution (from level
        indices of the whole input map)."""
        window = self.layer.window
        if window is not None:
            # a few frames at a time: the window vectors of a whole chunk can be gigabytes
            table = np.asarray(window.in_map, dtype=np.uint8)
            step = max(1, WINDOW_BYTES // (window.positions * self.k * (1 if self.packed else 8)))
            parts = []
            for i in range(0, max(len(x), 1), step):
                cols = im2col(table[x[i:i + step]], window)
                parts.append(binary_dot(pack_bits(cols.view(bool)), self.w_words, self.k)
                             if self.packed else self._dot(cols))
            return np.concatenate(parts)
        if self.packed:
            return binary_dot(x, self.w_words, self.k)
        return self._dot(x)

    def _dot(self, x) -> np.ndarray:
        # exact: |acc| < 2**53
        return (self.levels[x] @ self.w_float).astype(np.int64)

    def activate(self, acc: np.ndarray) -> np.ndarray:
        """Level indices ``(N, C)`` uint8 from accumulators."""
        key = acc * self.direction
        return (key[None, :, :] >= self.signed_t).sum(axis=0, dtype=np.uint8)


def _next_operand(stage: _Compiled | None, index: np.ndarray):
    """Convert level indices to what the next layer consumes (packed bits for a bipolar dense
    layer; convolutions take level indices and pack their window vectors themselves)."""
    if stage is not None and stage.packed and stage.layer.window is None:
        return pack_bits(index.view(bool))
    return index


_STAGES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _stages(net: Network) -> list[_Compiled]:
    """Each layer's packed operands, prepared once per network."""
    if net not in _STAGES:
        _STAGES[net] = [_Compiled(layer) for layer in net.layers]
    return _STAGES[net]


def _run_chunk(net: Network, stages: list[_Compiled], x: np.ndarray, keep: dict | None):
    index = quantize_input(net.input, x)
    if keep is not None:
        keep[net.input.tensor] = _levels(net.input.out.levels, index)
    for stage in stages:
        acc = stage.accumulate(_next_operand(stage, index))
        layer = stage.layer
        if keep is not None:
            keep[f"{layer.name}:acc"] = acc
        if layer.activation is not None:
            index = stage.activate(acc).reshape(len(x), -1)  # conv: (N, positions·C), HWC
            if keep is not None:
                keep[layer.activation.tensor] = _levels(layer.activation.out.levels, index)
            if layer.pool is not None:
                index = max_pool(index, layer)
                if keep is not None:
                    keep[layer.pool.tensor] = _levels(layer.activation.out.levels, index)
        else:
            return layer.tail.lookup(acc)
    raise AssertionError("network without an output tail")


def _levels(levels: tuple[int, ...], index: np.ndarray) -> np.ndarray:
    return np.asarray(levels, dtype=np.int16)[index]


def check_input(net: Network, x) -> np.ndarray:
    x = np.asarray(x)
    want = net.input_shape
    if x.ndim != len(want) + 1 or tuple(x.shape[1:]) != want:
        raise InputShapeError(
            f"input {net.input.input_name!r}: expected shape (N, {', '.join(map(str, want))}), "
            f"got {tuple(x.shape)}"
        )
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise InputShapeError(
            f"input {net.input.input_name!r}: expected real numbers, got dtype {x.dtype}"
        )
    return np.ascontiguousarray(x, dtype=np.float32)


def run(net: Network, x, *, intermediates: bool = False, threads: int | None = None):
    """Run the network on a batch ``x`` of shape ``(N, *input_shape)``.

    Returns the float32 output ``(N, *output_shape)``; with ``intermediates=True`` also a dict of
    every integer tensor by ONNX name (levels, int16) and every accumulator (``"<node>:acc"``).
    """
    x = check_input(net, x)
    if len(x) == 0:
        y = np.zeros((0, *net.output_shape), dtype=np.float32)
        return (y, {}) if intermediates else y
    stages = _stages(net)
    chunks = [x[i : i + CHUNK] for i in range(0, len(x), CHUNK)] or [x]
    keeps = [{} if intermediates else None for _ in chunks]
    workers = threads or min(len(chunks), os.cpu_count() or 1)
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            outs = list(pool.map(lambda a: _run_chunk(net, stages, *a), zip(chunks, keeps)))
    else:
        outs = [_run_chunk(net, stages, c, k) for c, k in zip(chunks, keeps)]
    y = np.concatenate(outs).reshape(len(x), *net.output_shape).astype(np.float32, copy=False)
    if not intermediates:
        return y
    merged = {name: np.concatenate([k[name] for k in keeps]) for name in keeps[0]}
    return y, merged
