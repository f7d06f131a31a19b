"""The integer IR: what a low-bit network computes, stated once.

A :class:`Network` is an input quantizer followed by a chain of :class:`MatVec` layers (a
convolution is a MatVec applied at every position of a :class:`ConvWindow`, optionally followed by
a :class:`MaxPool` of its thresholded output). Every
tensor between them is an integer tensor with a declared :class:`ValueSet` (the integer levels it
can take and the real ``scale`` that maps a level back to the ONNX float domain). Each layer
ends either in :class:`Thresholds` (integer comparisons on the accumulator that produce the next
integer tensor) or, for the last layer, in an :class:`OutputTail` that maps every reachable
accumulator value to the float32 the ONNX model outputs.

Everything here is derived by :mod:`lowbit.sw.onnx_import`; nothing downstream reads ONNX again.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "WeightKind",
    "ValueSet",
    "Quantizer",
    "InputQuant",
    "Thresholds",
    "OutputTail",
    "MatVec",
    "ConvWindow",
    "MaxPool",
    "Network",
    "BIPOLAR",
    "TERNARY_SIGN",
    "signed_bits",
]


def signed_bits(lo: int, hi: int) -> int:
    """The two's-complement width that holds every integer in ``lo..hi``."""
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


class WeightKind(enum.Enum):
    """The datapath a layer's weights call for, decided from the weight values."""

    BINARY = "binary"  # {-s, +s}
    TERNARY = "ternary"  # {0, ±s}, or {-sn, 0, +sp} (asymmetric, TTQ)
    POW2 = "pow2"  # {0, ±s·2^e}
    INT = "int"  # integers on a uniform grid


@dataclass(frozen=True)
class ValueSet:
    """The integer levels a tensor can hold; its real value is ``level * scale``.

    Attributes
    ----------
    levels : tuple of int
        Sorted, distinct. Bipolar tensors are ``(-1, 1)`` and are stored as one bit (1 ↔ +1).
    scale : float
        Real value of one integer step.
    """

    levels: tuple[int, ...]
    scale: float = 1.0

    def __post_init__(self):
        if list(self.levels) != sorted(set(self.levels)) or not self.levels:
            raise ValueError(f"levels must be sorted and distinct, not {self.levels!r}")

    @property
    def bipolar(self) -> bool:
        return self.levels == (-1, 1)

    @property
    def bits(self) -> int:
        """Bits needed to carry one element (an index into ``levels``)."""
        return max(1, math.ceil(math.log2(len(self.levels))))

    def describe(self) -> str:
        if self.bipolar:
            return "bipolar"
        if self.levels == (-1, 0, 1):
            return "ternary"
        lo, hi = self.levels[0], self.levels[-1]
        return f"int[{lo}..{hi}]"


BIPOLAR = ValueSet((-1, 1))
TERNARY_SIGN = ValueSet((-1, 0, 1))


@dataclass(frozen=True)
class Quantizer:
    """How a float32 becomes a level index, exactly as the ONNX/QONNX operator rounds it.

    ``kind`` is ``"bipolar"`` (``BipolarQuant``: ``x >= 0`` → +1), ``"sign"`` (ONNX ``Sign``,
    0 stays 0) or ``"int"`` (QONNX ``Quant``: ``clip(x / scale + zero_point)`` then rounding).
    """

    kind: str
    scale: float = 1.0
    zero_point: float = 0.0
    bit_width: int = 1
    signed: bool = True
    narrow: bool = False
    rounding_mode: str = "ROUND"

    def value_set(self) -> ValueSet:
        if self.kind == "bipolar":
            return ValueSet((-1, 1), self.scale)
        if self.kind == "sign":
            return TERNARY_SIGN
        from .quant_ops import int_quant_range

        lo, hi = int_quant_range(self.bit_width, self.signed, self.narrow)
        zero = int(self.zero_point)
        return ValueSet(tuple(range(lo - zero, hi - zero + 1)), self.scale)

    def index(self, x: np.ndarray) -> np.ndarray:
        """Level index (into ``value_set().levels``) of every element of float32 ``x``."""
        if self.kind == "bipolar":
            return (x >= 0).view(np.uint8)
        if self.kind == "sign":
            return (np.sign(x) + 1).astype(np.uint8)
        from .quant_ops import int_quant, int_quant_range

        q = int_quant(x, np.float32(self.scale), np.float32(self.zero_point), self.bit_width,
                      self.signed, self.narrow, self.rounding_mode)
        lo, _ = int_quant_range(self.bit_width, self.signed, self.narrow)
        return (q - lo).astype(np.uint8)


@dataclass(frozen=True, eq=False)
class InputQuant:
    """The float → integer step at the network input, run on the host.

    The float operations between the graph input and its first quantizer are kept as a small
    ONNX model (``prefix``, batch dimension free) and evaluated with onnxruntime, so the host
    computes exactly what the model computes; the quantizer itself is applied by lowbit.

    Attributes
    ----------
    name : str
        The ONNX quantizer node.
    input_name : str
        The ONNX graph input.
    input_shape : tuple of int
        ONNX input shape without its batch dimension.
    prefix : bytes
        Serialized ONNX model: graph input ``(N, *input_shape)`` → quantizer input.
    quantizer : Quantizer
    out : ValueSet
    out_shape : tuple of int
        Per-sample shape of the quantized tensor (C order is the streaming order).
    tensor : str
        ONNX name of the quantized tensor.
    """

    name: str
    input_name: str
    input_shape: tuple[int, ...]
    prefix: bytes
    quantizer: Quantizer
    out: ValueSet
    out_shape: tuple[int, ...]
    tensor: str


@dataclass(frozen=True, eq=False)
class Thresholds:
    """Integer thresholds on an accumulator, with a direction per channel.

    For channel ``c`` the output level index is ``#{j : direction[c] * acc >= thresholds[c, j]}``
    and the output value is ``out.levels[index]``. Thresholds are non-decreasing along ``j``.

    Attributes
    ----------
    name : str
        The ONNX quantizer node the thresholds replace (with everything between it and the
        accumulator: BatchNorm, scalar Mul/Add, ...).
    tensor : str
        ONNX name of the quantized output tensor.
    thresholds : ndarray of int64, shape (channels, levels - 1)
    direction : ndarray of int8, shape (channels,)
        +1 where the output grows with the accumulator, −1 where it falls (negative BN gamma).
    out : ValueSet
    """

    name: str
    tensor: str
    thresholds: np.ndarray
    direction: np.ndarray
    out: ValueSet

    @property
    def levels(self) -> int:
        return self.thresholds.shape[1]


@dataclass(frozen=True, eq=False)
class OutputTail:
    """The float tail after the last accumulator, exactly as the ONNX model computes it.

    ``table[c, (acc - acc_min) // acc_step]`` is the float32 the model outputs for channel ``c``
    when the accumulator is ``acc``; it was computed by running the model's own float32 nodes
    (with onnxruntime, graph optimizations off) on every reachable accumulator value. ``scale`` and
    ``bias`` describe the same map as an affine ``acc * scale + bias`` (float64) for reports and
    hardware; ``affine_max_error`` says how far that affine is from the table.
    """

    tensor: str
    acc_min: int
    acc_step: int
    table: np.ndarray
    scale: np.ndarray
    bias: np.ndarray
    affine_max_error: float

    def lookup(self, acc: np.ndarray) -> np.ndarray:
        """The model's float32 outputs ``(N, C)`` for integer accumulators ``(N, C)``."""
        col = (acc - self.acc_min) // self.acc_step
        return self.table[np.arange(self.table.shape[0])[None, :], col]


@dataclass(frozen=True)
class ConvWindow:
    """The sliding window a convolution's MatVec reads (im2col with channels innermost).

    The input feature map ``(channels, height, width)`` streams in HWC order: pixels in raster
    order, the channels of a pixel innermost. At output position ``(oy, ox)`` the window vector
    holds, for ``ky, kx`` in kernel order, the ``channels`` elements of input pixel
    ``(oy·sh + ky − top, ox·sw + kx − left)``; positions outside the map are padding and hold
    the value 0 (in the float domain), as in ONNX. ``in_map[i]`` is the index in the layer's
    ``in_values`` of incoming level ``i``; ``pad_index`` the index of the value 0 (None without
    padding). A bipolar input with padding becomes ternary {−1, 0, +1} this way.
    """

    channels: int
    height: int
    width: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, left, bottom, right
    in_map: tuple[int, ...] = field(repr=False)
    pad_index: int | None = None

    @property
    def out_height(self) -> int:
        return (self.height + self.pads[0] + self.pads[2] - self.kernel[0]) // self.stride[0] + 1

    @property
    def out_width(self) -> int:
        return (self.width + self.pads[1] + self.pads[3] - self.kernel[1]) // self.stride[1] + 1

    @property
    def positions(self) -> int:
        return self.out_height * self.out_width

    @property
    def padded(self) -> bool:
        return any(self.pads)


@dataclass(frozen=True)
class MaxPool:
    """Max pooling of a convolution's thresholded output: ``kernel × kernel`` windows at stride
    ``kernel`` (no padding; a partial window at the right or bottom edge is dropped, as ONNX's
    floor mode does). Levels are sorted, so the max of values is the max of level indices."""

    name: str
    tensor: str  # ONNX name of the pooled tensor
    kernel: int
    height: int  # of the map being pooled
    width: int

    @property
    def out_height(self) -> int:
        return self.height // self.kernel

    @property
    def out_width(self) -> int:
        return self.width // self.kernel


@dataclass(frozen=True, eq=False)
class MatVec:
    """A dense layer: integer weights times an integer input vector, then thresholds or a tail.

    Attributes
    ----------
    name : str
        The ONNX MatMul or Gemm node.
    weight_kind : WeightKind
    weights : ndarray of int8, shape (out_features, in_features)
        Integer weights (±1 for binary).
    weight_scale : ndarray of float64, shape (out_features,)
        Real value of one integer weight step, per output channel.
    in_values : ValueSet
        The value set of the input vector.
    in_layout : tuple of int
        Per-sample ONNX shape of the input before it was flattened (C order).
    activation : Thresholds or None
    tail : OutputTail or None
        Exactly one of ``activation`` and ``tail`` is set.
    exact_float : bool
        True when the ONNX model's float accumulator equals ``acc * in_scale * weight_scale``
        exactly for every reachable value (power-of-two scales); thresholds are exact then.
    window : ConvWindow or None
        Set for a convolution: the MatVec runs at every window position, ``in_features`` is the
        window length ``kh·kw·channels`` and ``out_features`` the output channels.
    pool : MaxPool or None
        Max pooling of the thresholded output (convolutions only).
    """

    name: str
    weight_kind: WeightKind
    weights: np.ndarray
    weight_scale: np.ndarray
    in_values: ValueSet
    in_layout: tuple[int, ...]
    activation: Thresholds | None = None
    tail: OutputTail | None = None
    exact_float: bool = True
    window: ConvWindow | None = None
    pool: MaxPool | None = None

    @property
    def positions(self) -> int:
        """Window positions per frame (1 for a dense layer)."""
        return 1 if self.window is None else self.window.positions

    @property
    def out_map(self) -> tuple[int, int, int] | None:
        """``(channels, height, width)`` of the output feature map after pooling (convolutions)."""
        if self.window is None:
            return None
        if self.pool is not None:
            return (self.out_features, self.pool.out_height, self.pool.out_width)
        return (self.out_features, self.window.out_height, self.window.out_width)

    @property
    def out_elements(self) -> int:
        """Output elements per frame: channels × output positions after pooling."""
        shape = self.out_map
        return self.out_features if shape is None else shape[0] * shape[1] * shape[2]

    @property
    def in_elements(self) -> int:
        """Input elements per frame (the whole input map for a convolution)."""
        w = self.window
        return self.in_features if w is None else w.channels * w.height * w.width

    @property
    def out_features(self) -> int:
        return self.weights.shape[0]

    @property
    def in_features(self) -> int:
        return self.weights.shape[1]

    @property
    def weight_bits(self) -> int:
        if self.weight_kind is WeightKind.BINARY:
            return 1
        if self.weight_kind is WeightKind.TERNARY:
            return 2
        span = int(np.abs(self.weights).max(initial=0))
        return max(1, math.ceil(math.log2(2 * span + 1)))

    @property
    def acc_range(self) -> tuple[int, int]:
        """Worst-case bounds of the integer accumulator, per the weights actually present."""
        lo_in, hi_in = self.in_values.levels[0], self.in_values.levels[-1]
        w = self.weights.astype(np.int64)
        pos, neg = np.clip(w, 0, None), np.clip(w, None, 0)
        hi = pos * hi_in + neg * lo_in
        lo = pos * lo_in + neg * hi_in
        return int(lo.sum(axis=1).min()), int(hi.sum(axis=1).max())

    @property
    def acc_step(self) -> int:
        """Reachable accumulators form a progression with this step (2 for bipolar × binary)."""
        if self.in_values.bipolar and self.weight_kind is WeightKind.BINARY:
            return 2
        return 1

    @property
    def acc_bits(self) -> int:
        """Two's-complement width that holds every reachable accumulator."""
        return signed_bits(*self.acc_range)

    @property
    def weight_memory_bits(self) -> int:
        return self.weights.size * self.weight_bits


@dataclass(frozen=True, eq=False)
class Network:
    """A whole network: input quantizer, layers, and the output it returns."""

    source: str
    input: InputQuant
    layers: tuple[MatVec, ...]
    output_name: str
    output_shape: tuple[int, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.input.input_shape
