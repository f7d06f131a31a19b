"""ONNX / QONNX → :class:`lowbit.sw.ir.Network`.

The importer walks the graph once, in order. Every tensor is either

- a *constant* (initializers, ``Constant`` nodes, and everything computed from them only; standard
  ops are folded with onnx's ``ReferenceEvaluator``, quantizers with :mod:`lowbit.sw.quant_ops`,
  and ``Shape`` of an activation from its static shape, which resolves dynamic flattens), or
- an *activation*: a base (the graph input, a quantized integer tensor, or a layer's integer
  accumulator) followed by the element-wise and layout nodes applied to it since.

A quantizer closes an activation: at the graph input the float nodes become the host-side input
stage; after an accumulator they become integer thresholds, derived exactly by running the
model's own float32 nodes (onnxruntime, graph optimizations off) on every reachable accumulator
value. The graph output after the last accumulator becomes a table of those same float32 values.

``Sign`` (plain ONNX) is a three-level quantizer: ONNX defines ``Sign(0) = 0``. lowbit derives two
thresholds per channel; where no reachable accumulator makes the pre-activation exactly zero the
0 level is dropped and the tensor is bipolar, otherwise it stays ternary {-1, 0, +1}. At the graph
input a float can always be 0, so a ``Sign`` there gives a ternary input.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from lowbit.errors import ModelFileError, NotSupportedYet, UnsupportedError

from .ir import (
    BIPOLAR,
    ConvWindow,
    InputQuant,
    MatVec,
    MaxPool,
    Network,
    OutputTail,
    Quantizer,
    Thresholds,
    ValueSet,
    WeightKind,
)
from .quant_ops import QUANT_DOMAINS, ROUNDING_MODES, bipolar_quant, int_quant

__all__ = ["load_model", "import_model", "classify_weights"]

ELEMENTWISE = frozenset(
    {"Mul", "Add", "Sub", "Div", "Pow", "BatchNormalization", "Relu", "Neg", "Abs", "Sqrt",
     "Clip", "Identity"}
)
LAYOUT = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze"})
# Largest accumulator table (reachable values × channels) evaluated while importing.
MAX_TABLE = 1 << 26  # accumulator values × channels tabulated (float32): 256 MB at most


def load_model(path: str | os.PathLike) -> onnx.ModelProto:
    """Read an ONNX file, with external data from its own folder only."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several types on garbage
        raise ModelFileError(f"{path}: not a readable ONNX file ({type(exc).__name__})") from None
    if not model.graph.node or not model.graph.output:
        raise ModelFileError(f"{path}: not an ONNX model (no graph nodes or outputs)")
    folder = path.resolve().parent
    for tensor in onnx.external_data_helper._get_all_tensors(model):
        if not onnx.external_data_helper.uses_external_data(tensor):
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (folder / location).resolve()
        if folder not in target.parents:
            raise ModelFileError(
                f"{path}: tensor {tensor.name!r} points at external data {location!r} outside "
                f"the model's folder; refusing to read it"
            )
        if not target.is_file():
            raise ModelFileError(
                f"{path}: tensor {tensor.name!r} needs external data file {location!r}, "
                f"which is missing (keep it beside the model)"
            )
    try:
        onnx.external_data_helper.load_external_data_for_model(model, str(folder))
    except Exception as exc:
        raise ModelFileError(f"{path}: external data could not be read ({exc})") from None
    return model


def import_model(model: str | os.PathLike | onnx.ModelProto) -> Network:
    """Import an ONNX/QONNX model (a path or a loaded ``ModelProto``) into the integer IR."""
    if isinstance(model, onnx.ModelProto):
        source = model.graph.name or "<model>"
    else:
        source = str(model)
        model = load_model(model)
    return _Importer(model, source).run()


# --------------------------------------------------------------------------------------------
# weights


def classify_weights(w: np.ndarray, node: str) -> tuple[WeightKind, np.ndarray, np.ndarray]:
    """Decide the weight kind of a float weight matrix ``(out, in)`` from its values.

    Returns the kind, the integer weights (int8) and the real value of one integer step per
    output channel: BINARY {±s}, TERNARY {0, ±s} or asymmetric {−sn, 0, +sp} (TTQ; integers
    {−b, 0, +a} on a common grid), POW2 {0, ±s·2^e}, INT (a uniform grid).
    """
    w = np.asarray(w, dtype=np.float64)
    if not np.all(np.isfinite(w)):
        raise UnsupportedError(f"node {node!r}: weights contain NaN or infinity")
    mag = np.abs(w)
    pos_max = np.where(w > 0, w, 0).max(axis=1)
    neg_max = np.where(w < 0, -w, 0).max(axis=1)
    pos_min = np.where(w > 0, w, np.inf).min(axis=1)
    neg_min = np.where(w < 0, -w, np.inf).min(axis=1)
    one_pos = np.all((pos_max == pos_min) | (pos_max == 0))
    one_neg = np.all((neg_max == neg_min) | (neg_max == 0))
    symmetric = np.all((pos_max == neg_max) | (pos_max == 0) | (neg_max == 0))
    scale = mag.max(axis=1)
    scale[scale == 0] = 1.0
    if one_pos and one_neg and symmetric:
        ints = np.sign(w)
        kind = WeightKind.TERNARY if (w == 0).any() else WeightKind.BINARY
        return kind, ints.astype(np.int8), scale
    # a grid per channel: the smallest magnitude, or a whole fraction of it
    smallest = np.where(mag > 0, mag, np.inf).min(axis=1)
    smallest[~np.isfinite(smallest)] = 1.0
    if one_pos and one_neg:
        # asymmetric ternary (TTQ trains one +sp and one −sn per layer): one grid for the whole
        # layer keeps the integer weights {−b, 0, +a} the same in every channel
        least = float(np.min(mag[mag > 0], initial=1.0))
        for divisor in range(1, 128):
            ints = w / (least / divisor)
            if np.all(ints == np.round(ints)) and np.abs(ints).max() <= 127:
                return (WeightKind.TERNARY, np.round(ints).astype(np.int8),
                        np.full(len(w), least / divisor))
    step = np.zeros_like(smallest)
    divisors = np.zeros(len(w), dtype=np.int64)
    for divisor in range(1, 128):  # per channel, the coarsest grid that holds its weights
        open_ = divisors == 0
        if not open_.any():
            break
        trial = smallest[open_] / divisor
        ints = w[open_] / trial[:, None]
        fits = np.all(ints == np.round(ints), axis=1) & (np.abs(ints).max(axis=1) <= 127)
        rows = np.flatnonzero(open_)[fits]
        step[rows], divisors[rows] = trial[fits], divisor
    if np.all(divisors > 0):
        ints = w / step[:, None]
        magnitudes = np.abs(ints[ints != 0]).astype(np.int64)
        pow2 = np.all(divisors == 1) and np.all(magnitudes & (magnitudes - 1) == 0)
        kind = (WeightKind.TERNARY if one_pos and one_neg
                else WeightKind.POW2 if pow2 else WeightKind.INT)
        return kind, np.round(ints).astype(np.int8), step
    if one_pos and one_neg:
        raise UnsupportedError(
            f"node {node!r}: asymmetric ternary weights +sp/−sn (TTQ) without a common integer "
            f"grid of at most 8 bits; quantize sp and sn to multiples of one step"
        )
    raise UnsupportedError(
        f"node {node!r}: weights are not on a uniform integer grid of at most 8 bits per "
        f"channel; quantize them (QONNX Quant) before export"
    )


# --------------------------------------------------------------------------------------------
# the walk


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


class _Importer:
    def __init__(self, model: onnx.ModelProto, source: str):
        self.model = model
        self.graph = model.graph
        self.source = source
        self.opset = next(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13
        )
        self.const: dict[str, np.ndarray] = {}
        self.acts: dict[str, _Act] = {}
        self.layers: list[MatVec] = []
        self.input_quant: InputQuant | None = None
        self.notes: list[str] = []

    # -- entry ---------------------------------------------------------------------------------

    def run(self) -> Network:
        g = self.graph
        for init in g.initializer:
            self.const[init.name] = numpy_helper.to_array(init)
        inputs = [i for i in g.input if i.name not in self.const]
        if len(inputs) != 1:
            raise UnsupportedError(
                f"graph {g.name!r}: expected one data input, found {len(inputs)} "
                f"({', '.join(i.name for i in inputs) or 'none'})"
            )
        if len(g.output) != 1:
            raise UnsupportedError(f"graph {g.name!r}: expected one output, found {len(g.output)}")
        inp = inputs[0]
        ttype = inp.type.tensor_type
        if ttype.elem_type != onnx.TensorProto.FLOAT:
            raise UnsupportedError(f"input {inp.name!r}: only float32 inputs are supported")
        dims = [d.dim_value if d.HasField("dim_value") else 0 for d in ttype.shape.dim]
        if len(dims) < 2 or any(d <= 0 for d in dims[1:]):
            raise UnsupportedError(
                f"input {inp.name!r}: needs a static shape (batch, ...), got {dims}"
            )
        shape = (1, *dims[1:])
        self.input_name, self.input_shape = inp.name, tuple(dims[1:])
        self.acts[inp.name] = _Act(shape, "input", inp.name, base_shape=shape)

        for node in g.node:
            self._visit(node)

        out = g.output[0].name
        if self.input_quant is None:
            raise UnsupportedError(
                f"graph {g.name!r}: no quantizer on the input; lowbit needs BipolarQuant, Quant "
                f"or Sign between the input and the first layer"
            )
        if out not in self.acts:
            raise UnsupportedError(f"output {out!r} does not depend on the input")
        act = self.acts[out]
        if act.base != "acc":
            raise NotSupportedYet(
                f"output {out!r}: networks must end in a MatMul/Gemm layer with a float tail; "
                f"a quantized output is not supported yet"
            )
        self.layers.append(self._finish_with_tail(act, out))
        return Network(
            source=self.source,
            input=self.input_quant,
            layers=tuple(self.layers),
            output_name=out,
            output_shape=act.shape[1:],
            notes=tuple(self.notes),
        )

    # -- node dispatch -------------------------------------------------------------------------

    def _visit(self, node: onnx.NodeProto):
        ins = [i for i in node.input if i]
        acts = [i for i in ins if i in self.acts]
        for i in ins:
            if i not in self.acts and i not in self.const:
                raise ModelFileError(
                    f"node {self._name(node)!r} reads tensor {i!r}, which nothing produces"
                )
        if node.op_type == "Constant" and not acts:
            self.const[node.output[0]] = _constant_node_value(node)
            return
        if not acts:
            self._fold(node)
            return
        op = node.op_type
        is_quant_domain = node.domain in QUANT_DOMAINS
        if op == "Shape" and not is_quant_domain:
            self._shape(node)
        elif is_quant_domain or op == "Sign":
            self._quantizer(node)
        elif op in ("MatMul", "Gemm") and not node.domain:
            self._matvec(node)
        elif op == "Conv" and not node.domain:
            self._conv(node)
        elif op == "MaxPool" and not node.domain:
            self._maxpool(node)
        elif op in ("GlobalAveragePool", "ReduceMean") and not node.domain:
            self._global_average(node)
        elif (op in ELEMENTWISE or op in LAYOUT) and node.domain in ("", "ai.onnx"):
            self._propagate(node, acts)
        else:
            dom = f" (domain {node.domain})" if node.domain else ""
            raise UnsupportedError(
                f"node {self._name(node)!r}: operator {op}{dom} is not supported"
            )

    @staticmethod
    def _name(node: onnx.NodeProto) -> str:
        return node.name or f"{node.op_type}->{node.output[0]}"

    # -- constants -----------------------------------------------------------------------------

    def _fold(self, node: onnx.NodeProto):
        ins = [self.const[i] if i else None for i in node.input]
        if node.domain in QUANT_DOMAINS:
            self.const[node.output[0]] = self._fold_quant(node, ins)
            return
        if node.domain not in ("", "ai.onnx"):
            raise UnsupportedError(
                f"node {self._name(node)!r}: operator {node.op_type} (domain {node.domain}) "
                f"is not supported"
            )
        from onnx.reference import ReferenceEvaluator

        names = [f"in{k}" if i else "" for k, i in enumerate(node.input)]
        outs = [f"out{k}" for k in range(len(node.output))]
        single = helper.make_node(node.op_type, names, outs)
        single.attribute.extend(node.attribute)
        feeds = {n: v for n, v in zip(names, ins) if n}
        graph = helper.make_graph(
            [single], "fold",
            [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), v.shape)
             for n, v in feeds.items()],
            [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in outs],
        )
        try:
            ref = ReferenceEvaluator(
                helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
            )
            outs = ref.run(None, feeds)
        except Exception as exc:
            raise UnsupportedError(
                f"node {self._name(node)!r}: cannot fold constant {node.op_type} "
                f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
            ) from None
        for name, value in zip(node.output, outs):
            self.const[name] = np.asarray(value)

    def _fold_quant(self, node: onnx.NodeProto, ins: list) -> np.ndarray:
        op = node.op_type
        x = np.asarray(ins[0], dtype=np.float32)
        if op == "BipolarQuant":
            return bipolar_quant(x, np.asarray(ins[1], dtype=np.float32))
        if op == "Quant":
            a = _attrs(node)
            scale, zero = (np.asarray(v, dtype=np.float32) for v in ins[1:3])
            bits = int(np.asarray(ins[3]).item())
            q = int_quant(x, scale, zero, bits, bool(a.get("signed", 1)),
                          bool(a.get("narrow", 0)), _str(a.get("rounding_mode", "ROUND")))
            return ((q - zero) * scale).astype(np.float32)
        raise UnsupportedError(
            f"node {self._name(node)!r}: quantizer {op} ({node.domain}) is not supported"
        )

    def _shape(self, node: onnx.NodeProto):
        shape = np.array(self.acts[node.input[0]].shape, dtype=np.int64)
        a = _attrs(node)
        start, end = a.get("start", 0), a.get("end", len(shape))
        self.const[node.output[0]] = shape[start:end]

    # -- activations ---------------------------------------------------------------------------

    def _propagate(self, node: onnx.NodeProto, acts: list[str]):
        first = self.acts[acts[0]]
        for other in acts[1:]:
            o = self.acts[other]
            if (o.base, o.base_tensor) != (first.base, first.base_tensor):
                raise UnsupportedError(
                    f"node {self._name(node)!r}: {node.op_type} of two different activations "
                    f"(residual or multi-branch graphs) is not supported"
                )
        nodes = list(first.nodes)
        for other in acts[1:]:
            nodes += [n for n in self.acts[other].nodes if n not in nodes]
        nodes.append(node)
        op = node.op_type
        if op in LAYOUT:
            shape = self._layout_shape(node, first.shape)
        else:
            shape = first.shape
            if op != "BatchNormalization":
                for i in node.input:
                    if i in self.const:
                        c = self.const[i]
                        if c.ndim >= len(shape) and c.ndim and c.shape[0] != 1:
                            raise UnsupportedError(
                                f"node {self._name(node)!r}: constant {i!r} of shape "
                                f"{c.shape} varies along the batch dimension"
                            )
                        shape = tuple(np.broadcast_shapes(shape, c.shape))
            elif len(shape) < 2:
                raise UnsupportedError(
                    f"node {self._name(node)!r}: BatchNormalization needs a channel axis")
        out = _Act(shape, first.base, first.base_tensor, nodes, first.values, first.base_shape,
                   first.pending, first.gap)
        for name in node.output[:1]:
            self.acts[name] = out
        if len(node.output) > 1 and any(node.output[1:]):
            raise UnsupportedError(
                f"node {self._name(node)!r}: training-mode outputs are not supported")

    def _layout_shape(self, node: onnx.NodeProto, shape: tuple[int, ...]) -> tuple[int, ...]:
        op, a = node.op_type, _attrs(node)
        probe = np.empty(shape, dtype=np.uint8)
        try:
            if op == "Reshape":
                target = [int(v) for v in self.const[node.input[1]]]
                if not a.get("allowzero", 0):
                    target = [shape[k] if v == 0 else v for k, v in enumerate(target)]
                out = probe.reshape(target).shape
            elif op == "Flatten":
                axis = a.get("axis", 1) % max(len(shape), 1)
                out = (math.prod(shape[:axis]), math.prod(shape[axis:]))
            elif op == "Squeeze":
                axes = a.get("axes") or (
                    [int(v) for v in self.const[node.input[1]]] if len(node.input) > 1 else None
                )
                out = np.squeeze(probe, axis=None if axes is None else tuple(axes)).shape
            else:  # Unsqueeze
                axes = a.get("axes") or [int(v) for v in self.const[node.input[1]]]
                out = np.expand_dims(probe, tuple(axes)).shape
        except (ValueError, KeyError, IndexError) as exc:
            raise UnsupportedError(
                f"node {self._name(node)!r}: cannot apply {op} to shape {shape} ({exc})"
            ) from None
        if not out or out[0] != 1:
            raise UnsupportedError(
                f"node {self._name(node)!r}: {op} to {tuple(out)} mixes the batch dimension "
                f"into the data"
            )
        return tuple(out)

    def _quantizer(self, node: onnx.NodeProto):
        act = self.acts[node.input[0]]
        if act.gap is not None:
            raise NotSupportedYet(
                f"node {self._name(node)!r}: a quantizer right after a global average pool is "
                f"not supported; follow the pool with a MatMul/Gemm layer")
        for i in node.input[1:]:
            if i and i not in self.const:
                raise UnsupportedError(
                    f"node {self._name(node)!r}: quantizer parameter {i!r} must be a constant"
                )
        quantizer, values = self._quantizer_semantics(node)
        out = node.output[0]
        if act.base == "input":
            if self.input_quant is not None:
                raise UnsupportedError(
                    f"node {self._name(node)!r}: a second quantizer on the input")
            prefix = self._submodel(act.nodes, act.base_tensor, len(act.base_shape),
                                    node.input[0])
            self.input_quant = InputQuant(
                name=self._name(node), input_name=self.input_name,
                input_shape=self.input_shape, prefix=prefix.SerializeToString(),
                quantizer=quantizer, out=values, out_shape=act.shape[1:], tensor=out,
            )
            self.acts[out] = _Act(act.shape, "quant", out, values=values, base_shape=act.shape)
        elif act.base == "acc":
            thresholds = self._derive_thresholds(act, node, quantizer, values)
            self.layers.append(self._layer(act.pending, activation=thresholds))
            vs = thresholds.out
            self.acts[out] = _Act(act.shape, "quant", out, values=vs, base_shape=act.shape)
        else:
            raise UnsupportedError(
                f"node {self._name(node)!r}: quantizer applied to an already quantized tensor "
                f"({act.base_tensor!r}); requantization is not supported"
            )

    def _quantizer_semantics(self, node: onnx.NodeProto) -> tuple[Quantizer, ValueSet]:
        op, name = node.op_type, self._name(node)
        if op == "Sign" and not node.domain:
            q = Quantizer("sign")
            return q, q.value_set()

        def scalar(index: int, what: str) -> float:
            value = self.const[node.input[index]]
            if value.size != 1:
                raise NotSupportedYet(
                    f"node {name!r}: per-channel {what} {value.ravel()[:4]} on an activation is "
                    f"not supported yet"
                )
            return float(value.ravel()[0])

        if op == "BipolarQuant":
            scale = scalar(1, "scale")
            if not scale > 0:
                raise UnsupportedError(f"node {name!r}: BipolarQuant scale {scale:g} must be > 0")
            q = Quantizer("bipolar", scale)
            return q, q.value_set()
        if op == "Quant":
            a = _attrs(node)
            scale, zero, bits = scalar(1, "scale"), scalar(2, "zero point"), scalar(3, "bit width")
            signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
            rounding = _str(a.get("rounding_mode", "ROUND")).upper()
            if not scale > 0:
                raise UnsupportedError(f"node {name!r}: Quant scale {scale:g} must be > 0")
            if bits != int(bits) or not 1 <= bits <= 16:
                raise UnsupportedError(f"node {name!r}: Quant bit_width={bits:g} must be a whole "
                                       f"number from 1 to 16")
            if zero != int(zero):
                raise UnsupportedError(f"node {name!r}: Quant zero point {zero:g} is not an "
                                       f"integer, so the levels are not integers")
            if rounding not in ROUNDING_MODES:
                raise UnsupportedError(f"node {name!r}: Quant rounding_mode {rounding!r} is not "
                                       f"one of {sorted(ROUNDING_MODES)}")
            if bits == 1 and signed:
                if zero:
                    raise UnsupportedError(f"node {name!r}: 1-bit signed Quant with a zero point "
                                           f"is not supported")
                q = Quantizer("bipolar", scale)
            else:
                q = Quantizer("int", scale, zero, int(bits), signed, narrow, rounding)
            return q, q.value_set()
        raise UnsupportedError(
            f"node {name!r}: quantizer {op} ({node.domain or 'onnx'}) is not supported"
        )

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
        if node.op_type == "Gemm":
            at = _attrs(node)
            if at.get("transA", 0):
                raise UnsupportedError(f"node {name!r}: Gemm with transA=1 is not supported")
            if at.get("alpha", 1.0) != 1.0 or (len(node.input) > 2 and at.get("beta", 1.0) != 1.0):
                raise UnsupportedError(
                    f"node {name!r}: Gemm with alpha={at.get('alpha', 1.0)}, "
                    f"beta={at.get('beta', 1.0)} is not supported (only 1.0)"
                )
            w = w if at.get("transB", 0) else w.T
            if len(node.input) > 2 and node.input[2]:
                bias = node.input[2]
        else:
            if w.ndim != 2:
                raise UnsupportedError(
                    f"node {name!r}: MatMul weights of shape {w.shape}; need 2-D")
            w = w.T
        if w.shape[1] != act.shape[1]:
            raise UnsupportedError(
                f"node {name!r}: weights take {w.shape[1]} inputs but the activation has "
                f"{act.shape[1]}"
            )
        layout = act.base_shape[1:]
        if act.gap is not None:
            # the mean over H·W positions, folded in: every position gets the channel's weight
            # divided by H·W (exact when H·W is a power of two; otherwise noted as rounded)
            positions = act.gap[0] * act.gap[1]
            w = np.tile(w, (1, positions)) / positions
        elif len(layout) == 3:  # a (C, H, W) map streams in HWC order: permute the columns
            w = w.reshape(len(w), *layout).transpose(0, 2, 3, 1).reshape(len(w), -1)
        self._pending(node, w, values, layout, bias, (1, w.shape[0]))

    def _pending(self, node: onnx.NodeProto, w: np.ndarray, values: ValueSet,
                 layout: tuple[int, ...], bias: str | None, out_shape: tuple[int, ...],
                 window: ConvWindow | None = None):
        """Register a layer's accumulator as the activation ``node.output[0]``."""
        name = self._name(node)
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
        a = _attrs(node)
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
        auto_pad = _str(a.get("auto_pad", "NOTSET"))
        if auto_pad not in ("NOTSET", "VALID"):
            raise NotSupportedYet(f"node {name!r}: Conv auto_pad={auto_pad} is not supported; "
                                  f"export explicit pads")
        kh, kw = w.shape[2:]
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
        matrix = w.transpose(0, 2, 3, 1).reshape(oc, -1)  # (ky, kx, c): channels innermost
        bias = None
        if len(node.input) > 2 and node.input[2]:
            b = np.asarray(self.const[node.input[2]]).reshape(1, oc, 1, 1)
            bias = f"{node.output[0]}::bias4d"
            self.const[bias] = b
        self._pending(node, matrix, values, act.base_shape[1:], bias,
                      (1, oc, window.out_height, window.out_width), window)

    def _global_average(self, node: onnx.NodeProto):
        """``GlobalAveragePool`` (or ``ReduceMean`` over H and W) of a quantized map, folded into
        the dense layer that follows it."""
        name = self._name(node)
        act = self.acts[node.input[0]]
        if node.op_type == "ReduceMean":
            a = _attrs(node)
            axes = a.get("axes")
            if axes is None and len(node.input) > 1 and node.input[1]:
                axes = [int(v) for v in self.const[node.input[1]]]
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
        a = _attrs(node)
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

    # -- deriving thresholds and tails ---------------------------------------------------------

    def _reachable(self, p: _Pending) -> np.ndarray:
        probe = MatVec(p.node, p.kind, p.weights, p.weight_scale, p.in_values, p.in_layout)
        lo, hi = probe.acc_range
        step = probe.acc_step
        count = (hi - lo) // step + 1
        if count * len(p.weights) > MAX_TABLE:
            raise NotSupportedYet(
                f"node {p.node!r}: accumulator range {lo}..{hi} is too wide to tabulate"
            )
        return np.arange(lo, hi + 1, step, dtype=np.int64)

    def _accumulator_floats(self, p: _Pending, accs: np.ndarray) -> np.ndarray:
        """What the ONNX MatMul outputs for each reachable accumulator, per channel (R, C)."""
        real = accs[:, None].astype(np.float64) * (p.in_values.scale * p.weight_scale[None, :])
        real = real.astype(np.float32)
        if p.window is not None:  # a convolution's accumulator: (R, C, 1, 1), one per channel
            real = real.reshape(*real.shape, 1, 1)
        return real

    def _per_channel(self, p: _Pending, y: np.ndarray, rows: int, what: str) -> np.ndarray:
        y = y.reshape(rows, -1)
        if y.shape[1] != len(p.weights):
            raise UnsupportedError(
                f"node {what!r}: the float ops after {p.node!r} differ between positions of the "
                f"map ({y.shape[1]} values for {len(p.weights)} channels); only per-channel "
                f"constants can become thresholds")
        return y

    def _derive_thresholds(self, act: _Act, node: onnx.NodeProto, quantizer: Quantizer,
                           values: ValueSet) -> Thresholds:
        p = act.pending
        accs = self._reachable(p)
        name = self._name(node)
        pre = self._evaluate(act.nodes, act.base_tensor, self._accumulator_floats(p, accs),
                             node.input[0])
        pre = self._per_channel(p, pre, len(accs), name)
        if np.isnan(pre).any():
            raise UnsupportedError(f"node {name!r}: its input is NaN for some accumulator values")
        index = quantizer.index(pre).astype(np.int64)
        direction = np.ones(index.shape[1], dtype=np.int8)
        up = np.all(np.diff(index, axis=0) >= 0, axis=0)
        down = np.all(np.diff(index, axis=0) <= 0, axis=0)
        if not np.all(up | down):
            bad = int(np.flatnonzero(~(up | down))[0])
            raise UnsupportedError(
                f"node {name!r}: output channel {bad} is not a monotone function of the "
                f"accumulator of {p.node!r}, so it is not a threshold"
            )
        direction[~up] = -1
        levels = len(values.levels)
        if quantizer.kind == "sign" and not np.any(index == 1):
            # Sign never yields 0 here: the tensor is bipolar.
            index = index // 2
            levels, values = 2, BIPOLAR
        thresholds = np.empty((index.shape[1], levels - 1), dtype=np.int64)
        for c in range(index.shape[1]):
            key = accs * direction[c]
            order = np.argsort(key, kind="stable")
            key, idx = key[order], index[order, c]
            for j in range(1, levels):
                hit = np.flatnonzero(idx >= j)
                thresholds[c, j - 1] = key[hit[0]] if hit.size else key[-1] + 1
        return Thresholds(name=name, tensor=node.output[0], thresholds=thresholds,
                          direction=direction, out=values)

    def _finish_with_tail(self, act: _Act, out: str) -> MatVec:
        p = act.pending
        if p.window is not None and p.window.positions > 1:
            raise NotSupportedYet(
                f"output {out!r}: the network ends in convolution {p.node!r} with a "
                f"{act.shape[2:]} map; end it in a MatMul/Gemm layer (after Flatten)")
        accs = self._reachable(p)
        y = self._evaluate(act.nodes, act.base_tensor, self._accumulator_floats(p, accs), out)
        y = self._per_channel(p, y, len(accs), out)
        table = np.ascontiguousarray(y.T.astype(np.float32))
        span = float(accs[-1] - accs[0])
        t64 = table.astype(np.float64)
        scale = (t64[:, -1] - t64[:, 0]) / span if span else np.zeros(len(table))
        bias = t64[:, 0] - scale * accs[0]
        err = float(np.abs(accs[None, :] * scale[:, None] + bias[:, None] - t64).max())
        tail = OutputTail(tensor=out, acc_min=int(accs[0]), acc_step=int(accs[1] - accs[0])
                          if len(accs) > 1 else 1, table=table, scale=scale, bias=bias,
                          affine_max_error=err)
        return self._layer(p, tail=tail)

    @staticmethod
    def _layer(p: _Pending, activation=None, tail=None) -> MatVec:
        return MatVec(
            name=p.node, weight_kind=p.kind, weights=p.weights, weight_scale=p.weight_scale,
            in_values=p.in_values, in_layout=p.in_layout, activation=activation, tail=tail,
            exact_float=p.exact_float, window=p.window,
        )

    # -- running float sub-graphs --------------------------------------------------------------

    def _submodel(self, nodes: list, input_name: str, rank: int, output: str) -> onnx.ModelProto:
        """The given float nodes as a model with a free batch dimension."""
        body, inits, seen = [], [], set()
        produced = {o for n in nodes for o in n.output}
        for n in nodes:
            if n.op_type == "Reshape":
                shape_name = f"{n.output[0]}::shape"
                target = self._layout_shape(n, self.acts[n.input[0]].shape)
                inits.append(numpy_helper.from_array(
                    np.array([-1, *target[1:]], dtype=np.int64), shape_name))
                n = helper.make_node("Reshape", [n.input[0], shape_name], list(n.output),
                                     name=n.name)
            body.append(n)
            for i in n.input:
                if i and i not in produced and i != input_name and i not in seen:
                    if i in self.const:
                        seen.add(i)
                        inits.append(numpy_helper.from_array(np.asarray(self.const[i]), i))
        if not body or output == input_name:
            if output == input_name:
                input_name = f"{input_name}::in"
            body = [helper.make_node("Identity", [input_name], [output])]
        graph = helper.make_graph(
            body, "lowbit_float_segment",
            [helper.make_tensor_value_info(input_name, onnx.TensorProto.FLOAT, [None] * rank)],
            [helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, None)],
            initializer=inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = min(model.ir_version, 10)
        return model

    def _evaluate(self, nodes: list, input_name: str, x: np.ndarray, output: str) -> np.ndarray:
        model = self._submodel(nodes, input_name, x.ndim, output)
        return run_float_model(model.SerializeToString(), x, what=output)


@functools.lru_cache(maxsize=64)
def _session(model: bytes):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def run_float_model(model: bytes, x: np.ndarray, what: str = "") -> np.ndarray:
    """Run a float segment with onnxruntime, graph optimizations off (node-by-node float32)."""
    try:
        sess = _session(model)
        name = sess.get_inputs()[0].name
        return sess.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]
    except Exception as exc:
        raise UnsupportedError(
            f"the float operations before {what!r} cannot be evaluated ({str(exc).splitlines()[0]})"
        ) from None


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _str(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def _constant_node_value(node: onnx.NodeProto) -> np.ndarray:
    from onnx.reference import ReferenceEvaluator

    single = helper.make_node("Constant", [], ["out"])
    single.attribute.extend(node.attribute)
    return np.asarray(ReferenceEvaluator(single).run(None, {})[0])
