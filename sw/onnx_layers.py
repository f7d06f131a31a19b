"""The layer nodes of the import walk: MatMul/Gemm, Conv, MaxPool and global average pools.

:class:`LayerNodes` is the part of the importer (:mod:`lowbit.sw.onnx_import`) that turns a
quantized activation and constant weights into a pending layer: its integer weights (kind and
step from :mod:`lowbit.sw.weight_grid`), the value set it reads and, for a convolution, its
window. The layer is finished when its quantizer (thresholds) or the graph output (a tail) is
reached.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper

from lowbit.errors import NotSupportedYet, UnsupportedError

from .float_eval import attributes, text
from .ir import ConvWindow, MatVec, MaxPool, OutputTail, Thresholds, ValueSet, WeightKind
from .weight_grid import QuantizedWeights, classify_quantized, classify_weights

__all__ = ["LAYOUT", "LayerNodes"]

LAYOUT = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze"})


@dataclass
class _Pending:
    """A layer whose accumulator has been computed but whose activation is not yet known."""

    node: str
    acc_tensor: str  # name the tail nodes read the accumulator under
    kind: WeightKind
    weights: np.ndarray
    weight_scale: np.ndarray
    in_values: ValueSet
    in_layout: tuple[int, ...]
    exact_float: bool
    window: ConvWindow | None = None

    def probe(self, activation: Thresholds | None = None,
              tail: OutputTail | None = None) -> MatVec:
        """The layer, with its activation or tail once known (neither while probing)."""
        return MatVec(
            name=self.node, weight_kind=self.kind, weights=self.weights,
            weight_scale=self.weight_scale, in_values=self.in_values, in_layout=self.in_layout,
            activation=activation, tail=tail, exact_float=self.exact_float, window=self.window,
        )


@dataclass
class _Act:
    """An activation tensor: a base plus the float nodes applied to it since."""

    shape: tuple[int, ...]  # with batch 1
    base: str  # "input" | "quant" | "acc"
    base_tensor: str  # the tensor the nodes start from
    nodes: list = field(default_factory=list)
    values: ValueSet | None = None  # base == "quant"
    base_shape: tuple[int, ...] = ()  # shape of the base tensor
    pending: _Pending | None = None  # base == "acc"
    gap: tuple[int, int] | None = None  # a global average over this (H, W) was taken since


class LayerNodes:
    """Layer handlers of the importer; the importer provides ``const``, ``acts``, ``layers``,
    ``notes``, ``_name`` and ``_evaluate``."""

    def _matvec(self, node: onnx.NodeProto):
        name = self._name(node)
        a, b = node.input[0], node.input[1]
        if a not in self.acts or b not in self.const:
            raise UnsupportedError(
                f"node {name!r}: {node.op_type} needs the activation first and constant weights "
                f"second"
            )
        act = self.acts[a]
        if act.base == "input":
            raise UnsupportedError(
                f"node {name!r}: {node.op_type} on an unquantized input; put BipolarQuant, Quant "
                f"or Sign before the first layer"
            )
        if act.base == "acc":
            raise UnsupportedError(
                f"node {name!r}: {node.op_type} follows {act.pending.node!r} with no quantizer "
                f"between them"
            )
        if len(act.shape) != 2:
            raise UnsupportedError(
                f"node {name!r}: {node.op_type} input has shape {act.shape}; flatten it to "
                f"(batch, features) first"
            )
        values = self._dequantized_values(act, name)
        w = self.const[b].astype(np.float64)
        bias = None
        transpose = True
        if node.op_type == "Gemm":
            at = attributes(node)
            if at.get("transA", 0):
                raise UnsupportedError(f"node {name!r}: Gemm with transA=1 is not supported")
            if at.get("alpha", 1.0) != 1.0 or (len(node.input) > 2 and at.get("beta", 1.0) != 1.0):
                raise UnsupportedError(
                    f"node {name!r}: Gemm with alpha={at.get('alpha', 1.0)}, "
                    f"beta={at.get('beta', 1.0)} is not supported (only 1.0)"
                )
            transpose = not at.get("transB", 0)
            if len(node.input) > 2 and node.input[2]:
                bias = node.input[2]
        if w.ndim != 2:
            raise UnsupportedError(
                f"node {name!r}: {node.op_type} weights of shape {w.shape}; need 2-D")
        rows, cols = w.shape[::-1] if transpose else w.shape
        if cols != act.shape[1]:
            raise UnsupportedError(
                f"node {name!r}: weights take {cols} inputs but the activation has "
                f"{act.shape[1]}"
            )
        layout = act.base_shape[1:]
        positions = 1 if act.gap is None else act.gap[0] * act.gap[1]

        def orient(a: np.ndarray) -> np.ndarray:
            """(out, in), in the order the inputs stream: a (C, H, W) map in HWC order; a
            global average folded in as every position of the map (divided below)."""
            a = a.T if transpose else a
            if act.gap is not None:
                return np.tile(a, (1, positions))
            if len(layout) == 3:
                return a.reshape(rows, *layout).transpose(0, 2, 3, 1).reshape(rows, -1)
            return a

        # a global average: each position gets the channel's weight divided by H·W (exact when
        # H·W is a power of two; otherwise noted as rounded)
        w = orient(w) / positions
        quantized = self.quantized.get(b)
        if quantized is not None:
            quantized = quantized.map(orient)
            if positions > 1:
                quantized = QuantizedWeights(quantized.ints, quantized.scale / positions,
                                             quantized.source, quantized.bits)
        self._pending(node, w, values, layout, bias, (1, rows), quantized=quantized)

    def _pending(self, node: onnx.NodeProto, w: np.ndarray, values: ValueSet,
                 layout: tuple[int, ...], bias: str | None, out_shape: tuple[int, ...],
                 window: ConvWindow | None = None, quantized: QuantizedWeights | None = None):
        """Register a layer's accumulator as the activation ``node.output[0]``. The integer
        weights are the quantizer's own where one made them, else found on a grid."""
        name = self._name(node)
        if quantized is not None:
            kind, w_int, w_scale = classify_quantized(quantized, name)
        else:
            kind, w_int, w_scale = classify_weights(w, name)
        prod = values.scale * w_scale
        exact = bool(np.all(np.exp2(np.round(np.log2(prod))) == prod))
        if not exact:
            self.notes.append(
                f"{name}: scales {values.scale:g} × weight scale are not powers of two; the ONNX "
                f"float accumulator is rounded, so thresholds match it only up to float32 rounding"
            )
        acc_tensor = node.output[0]
        nodes = []
        if bias is not None:
            acc_tensor = f"{node.output[0]}::acc"
            nodes.append(helper.make_node("Add", [acc_tensor, bias], [node.output[0]],
                                          name=f"{name}::bias"))
        pending = _Pending(name, acc_tensor, kind, w_int, w_scale, values, layout, exact, window)
        self.acts[node.output[0]] = _Act(out_shape, "acc", acc_tensor, nodes,
                                         base_shape=out_shape, pending=pending)

    def _conv(self, node: onnx.NodeProto):
        name = self._name(node)
        x, wname = node.input[0], node.input[1]
        if x not in self.acts or wname not in self.const:
            raise UnsupportedError(
                f"node {name!r}: Conv needs the activation first and constant weights second")
        act = self.acts[x]
        if act.base != "quant":
            raise UnsupportedError(
                f"node {name!r}: Conv on an unquantized tensor; put a quantizer before it")
        if act.gap is not None:
            raise NotSupportedYet(f"node {name!r}: Conv after a global average pool is not "
                                  f"supported")
        if len(act.shape) != 4:
            raise NotSupportedYet(
                f"node {name!r}: Conv on a tensor of shape {act.shape}; only 2-D convolutions "
                f"(N, C, H, W) are supported")
        a = attributes(node)
        w = np.asarray(self.const[wname], dtype=np.float64)
        _, c, h, wd = act.shape
        if w.ndim != 4 or w.shape[1] != c:
            raise UnsupportedError(
                f"node {name!r}: weights of shape {w.shape} do not take {c} input channels")
        if a.get("group", 1) != 1:
            raise NotSupportedYet(f"node {name!r}: grouped or depthwise Conv (group="
                                  f"{a.get('group')}) is not supported yet")
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            raise NotSupportedYet(f"node {name!r}: dilated Conv ({a.get('dilations')}) is not "
                                  f"supported yet")
        auto_pad = text(a.get("auto_pad", "NOTSET"))
        if auto_pad not in ("NOTSET", "VALID"):
            raise NotSupportedYet(f"node {name!r}: Conv auto_pad={auto_pad} is not supported; "
                                  f"export explicit pads")
        kh, kw = w.shape[2:]
        given = a.get("kernel_shape")
        if given is not None and [int(v) for v in given] != [kh, kw]:
            raise UnsupportedError(f"node {name!r}: kernel_shape {list(given)} does not match "
                                   f"its weights of shape {w.shape}")
        stride = tuple(int(v) for v in a.get("strides", [1, 1]))
        pads = tuple(int(v) for v in a.get("pads", [0, 0, 0, 0]))
        if len(stride) != 2 or len(pads) != 4 or min(stride) < 1 or min(pads) < 0:
            raise UnsupportedError(f"node {name!r}: strides {stride} / pads {pads} are not valid "
                                   f"for a 2-D Conv")
        if h + pads[0] + pads[2] < kh or wd + pads[1] + pads[3] < kw:
            raise UnsupportedError(f"node {name!r}: kernel {kh}x{kw} is larger than the padded "
                                   f"input {h}x{wd}")
        values = self._dequantized_values(act, name)
        in_map, pad_index = tuple(range(len(values.levels))), None
        if any(pads):
            if 0 in values.levels:
                pad_index = values.levels.index(0)
            elif values.bipolar:  # padding adds a third value: {-1, 0, +1}
                in_map, pad_index = (0, 2), 1
                values = ValueSet((-1, 0, 1), values.scale)
            else:
                raise NotSupportedYet(
                    f"node {name!r}: zero padding on inputs with levels {values.levels} "
                    f"(no 0 among them) is not supported")
        window = ConvWindow(c, h, wd, (kh, kw), stride, pads, in_map, pad_index)
        oc = w.shape[0]
        def orient(a: np.ndarray) -> np.ndarray:  # (ky, kx, c): channels innermost
            return a.transpose(0, 2, 3, 1).reshape(oc, -1)

        matrix = orient(w)
        quantized = self.quantized.get(wname)
        bias = None
        if len(node.input) > 2 and node.input[2]:
            b = np.asarray(self.const[node.input[2]]).reshape(1, oc, 1, 1)
            bias = f"{node.output[0]}::bias4d"
            self.const[bias] = b
        self._pending(node, matrix, values, act.base_shape[1:], bias,
                      (1, oc, window.out_height, window.out_width), window,
                      quantized=None if quantized is None else quantized.map(orient))

    def _global_average(self, node: onnx.NodeProto):
        """``GlobalAveragePool`` (or ``ReduceMean`` over H and W) of a quantized map, folded into
        the dense layer that follows it."""
        name = self._name(node)
        act = self.acts[node.input[0]]
        if node.op_type == "ReduceMean":
            a = attributes(node)
            axes = a.get("axes")
            if axes is None and len(node.input) > 1 and node.input[1]:
                axes = [int(v) for v in np.asarray(self.const[node.input[1]]).ravel()]
            if sorted(int(v) % 4 for v in (axes or [])) != [2, 3] or len(act.shape) != 4:
                raise UnsupportedError(f"node {name!r}: ReduceMean over axes {axes} is not "
                                       f"supported (only the spatial axes of an NCHW map)")
            keep = a.get("keepdims", 1)
        else:
            keep = 1
        if act.base != "quant" or len(act.shape) != 4 or act.gap is not None:
            raise NotSupportedYet(
                f"node {name!r}: {node.op_type} is supported on a quantized (N, C, H, W) map "
                f"only, followed by Flatten and a MatMul/Gemm layer")
        values = self._dequantized_values(act, name)
        _, c, h, w = act.shape
        shape = (1, c, 1, 1) if keep else (1, c)
        self.acts[node.output[0]] = _Act(shape, "quant", act.base_tensor, [], values,
                                         act.base_shape, gap=(h, w))

    def _maxpool(self, node: onnx.NodeProto):
        name = self._name(node)
        act = self.acts[node.input[0]]
        a = attributes(node)
        k = [int(v) for v in a.get("kernel_shape", [])]
        stride = [int(v) for v in a.get("strides", k)]
        if (len(k) != 2 or k[0] != k[1] or stride != k or any(a.get("pads", [0])) or
                a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1, 1])) or
                a.get("storage_order", 0) or len(node.output) > 1 and node.output[1]):
            raise NotSupportedYet(
                f"node {name!r}: MaxPool kernel {k}, strides {stride}, pads {a.get('pads')}, "
                f"ceil_mode {a.get('ceil_mode', 0)}: only square k x k pooling at stride k "
                f"without padding is supported")
        if act.base == "acc":
            raise NotSupportedYet(
                f"node {name!r}: MaxPool before the quantizer of {act.pending.node!r}; lowbit "
                f"pools quantized outputs (pool after the activation)")
        last = self.layers[-1] if self.layers else None
        if (act.base != "quant" or act.gap is not None or last is None or last.window is None
                or last.pool is not None or last.activation is None
                or last.activation.tensor != act.base_tensor):
            raise NotSupportedYet(
                f"node {name!r}: MaxPool is supported right after a convolution's activation "
                f"only")
        if len(act.shape) != 4:
            raise UnsupportedError(f"node {name!r}: MaxPool on shape {act.shape}")
        values = self._dequantized_values(act, name)  # positive rescaling: max commutes
        _, c, h, w = act.shape
        if h < k[0] or w < k[0]:
            raise UnsupportedError(f"node {name!r}: pool {k[0]}x{k[0]} larger than the map "
                                   f"{h}x{w}")
        pool = MaxPool(name, node.output[0], k[0], h, w)
        self.layers[-1] = dataclasses.replace(last, pool=pool)
        shape = (1, c, pool.out_height, pool.out_width)
        self.acts[node.output[0]] = _Act(shape, "quant", node.output[0], values=values,
                                         base_shape=shape)

    def _dequantized_values(self, act: _Act, node: str) -> ValueSet:
        """The value set reaching a MatMul: the quantized levels, through any scalar float ops."""
        if all(n.op_type in LAYOUT for n in act.nodes):
            return act.values
        for n in act.nodes:
            for i in n.input[1:]:
                if n.op_type not in LAYOUT and i in self.const and self.const[i].size != 1:
                    raise UnsupportedError(
                        f"node {self._name(n)!r}: per-element constant between quantizer "
                        f"{act.base_tensor!r} and {node!r}; only scalar rescaling is supported"
                    )
        levels = np.array(act.values.levels, dtype=np.float64)
        per_sample = act.base_shape[1:]
        x = np.broadcast_to((levels * act.values.scale).astype(np.float32).reshape(
            (-1,) + (1,) * len(per_sample)), (len(levels), *per_sample))
        y = self._evaluate(act.nodes, act.base_tensor, x, act.nodes[-1].output[0])
        y = y.reshape(len(levels), -1).astype(np.float64)
        nz = levels != 0
        ratio = y[nz, 0] / levels[nz]
        if (np.any(y != y[:, :1]) or np.any(y[~nz] != 0) or not np.all(ratio == ratio[0])
                or ratio[0] <= 0):
            raise UnsupportedError(
                f"node {node!r}: the float ops after quantizer {act.base_tensor!r} are not a "
                f"positive rescaling of its levels"
            )
        return ValueSet(act.values.levels, float(ratio[0]))
