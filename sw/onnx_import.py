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

import os

import numpy as np
import onnx

from lowbit.errors import ModelFileError, NotSupportedYet, UnsupportedError

from .float_eval import (
    attributes,
    constant_node_value,
    fold_node,
    layout_shape,
    run_float_model,
    segment_model,
    text,
)
from .ir import InputQuant, MatVec, Network, Quantizer, Thresholds, ValueSet
from .model_file import load_model, validate_model
from .onnx_layers import LAYOUT, LayerNodes, _Act
from .quant_ops import QUANT_DOMAINS, ROUNDING_MODES, bipolar_quant, int_quant
from .thresholds import (
    accumulator_floats,
    output_tail,
    per_channel,
    reachable_accumulators,
    thresholds_from_floats,
)
from .weight_grid import QuantizedWeights

__all__ = ["import_model"]

# ops that move a constant's elements without changing them: quantizer integers follow them
LAYOUT_OPS = frozenset({"Transpose", "Reshape", "Identity", "Squeeze", "Unsqueeze", "Flatten"})
ELEMENTWISE = frozenset(
    {"Mul", "Add", "Sub", "Div", "Pow", "BatchNormalization", "Relu", "Neg", "Abs", "Sqrt",
     "Clip", "Identity"}
)


def import_model(model: str | os.PathLike | onnx.ModelProto) -> Network:
    """Import an ONNX/QONNX model (a path or a loaded ``ModelProto``) into the integer IR."""
    if isinstance(model, onnx.ModelProto):
        source = model.graph.name or "<model>"
    else:
        source = str(model)
        model = load_model(model)
    return _Importer(model, source).run()


# --------------------------------------------------------------------------------------------
# the walk


class _Importer(LayerNodes):
    def __init__(self, model: onnx.ModelProto, source: str):
        self.model = model
        self.graph = model.graph
        self.source = source
        self.opset = next(
            (o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13
        )
        self.const: dict[str, np.ndarray] = {}
        self.quantized: dict[str, QuantizedWeights] = {}  # constants a quantizer produced
        self.acts: dict[str, _Act] = {}
        self.layers: list[MatVec] = []
        self.input_quant: InputQuant | None = None
        self.notes: list[str] = []

    # -- entry ---------------------------------------------------------------------------------

    def run(self) -> Network:
        g = self.graph
        self.const.update(validate_model(self.model, self.source))
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
        try:
            self._dispatch(node)
        except (ValueError, TypeError, IndexError, KeyError, OverflowError, ZeroDivisionError,
                MemoryError) as exc:
            # a node whose data lowbit's own checks did not foresee: one line, not a traceback
            raise UnsupportedError(f"node {self._name(node)!r}: cannot be read "
                                   f"({type(exc).__name__}: {str(exc)[:120]})") from None

    def _dispatch(self, node: onnx.NodeProto):
        ins = [i for i in node.input if i]
        acts = [i for i in ins if i in self.acts]
        for i in ins:
            if i not in self.acts and i not in self.const:
                raise ModelFileError(
                    f"node {self._name(node)!r} reads tensor {i!r}, which nothing produces"
                )
        if node.op_type == "Constant" and not acts:
            self.const[node.output[0]] = constant_node_value(node, self._name(node))
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
            self.const[node.output[0]], quantized = self._fold_quant(node, ins)
            if quantized is not None:
                self.quantized[node.output[0]] = quantized
            return
        if node.domain not in ("", "ai.onnx"):
            raise UnsupportedError(
                f"node {self._name(node)!r}: operator {node.op_type} (domain {node.domain}) "
                f"is not supported"
            )
        name = self._name(node)
        outs = fold_node(node, ins, self.opset, name)
        for out, value in zip(node.output, outs):
            self.const[out] = value
        source = self.quantized.get(node.input[0]) if node.input else None
        if source is not None and node.op_type in LAYOUT_OPS:
            # the quantizer's integers and scales follow the weights through a layout change
            def apply(array):
                return fold_node(node, [array, *ins[1:]], self.opset, name)[0]

            self.quantized[node.output[0]] = source.map(apply)

    def _fold_quant(self, node: onnx.NodeProto, ins: list):
        """A quantizer on a constant: its float output, and the integers and scales it made."""
        op, name = node.op_type, self._name(node)
        x = np.asarray(ins[0], dtype=np.float32)
        if op not in ("BipolarQuant", "Quant"):
            raise UnsupportedError(f"node {name!r}: quantizer {op} ({node.domain}) is not "
                                   f"supported")
        if not np.all(np.isfinite(x)):
            raise UnsupportedError(f"node {name!r}: the constant it quantizes holds NaN or "
                                   f"infinity")
        if op == "BipolarQuant":
            if len(ins) != 2:
                raise UnsupportedError(f"node {name!r}: BipolarQuant takes 2 inputs, not "
                                       f"{len(ins)}")
            scale = np.asarray(ins[1], dtype=np.float32)
            check_quant_params(name, x.shape, scale)
            ints = np.where(x >= 0, 1, -1).astype(np.int64)
            bits = 1
            out = bipolar_quant(x, scale)
        else:
            if len(ins) != 4:
                raise UnsupportedError(f"node {name!r}: Quant takes 4 inputs, not {len(ins)}")
            a = attributes(node)
            scale, zero = (np.asarray(v, dtype=np.float32) for v in ins[1:3])
            bits, signed, narrow, rounding = check_quant_params(
                name, x.shape, scale, zero, ins[3], a, max_bits=32)
            q = int_quant(x, scale, zero, bits, signed, narrow, rounding)
            levels = (q - zero).astype(np.float32)
            out = (levels * scale).astype(np.float32)
            ints = levels.astype(np.int64) if np.all(np.isfinite(levels)) else None
        if ints is None or ints.shape != out.shape:
            return out, None
        full = np.broadcast_to(scale.astype(np.float64), out.shape).copy()
        if not np.array_equal((ints * full).astype(np.float32), out):
            raise UnsupportedError(
                f"node {self._name(node)!r}: its integers times its scale do not reproduce its "
                f"float32 output, so lowbit cannot read them exactly")
        return out, QuantizedWeights(ints, full, self._name(node), bits)

    def _shape(self, node: onnx.NodeProto):
        shape = np.array(self.acts[node.input[0]].shape, dtype=np.int64)
        a = attributes(node)
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

    def _int_vector(self, node: onnx.NodeProto, index: int) -> list[int]:
        """A node's shape or axes input: a 1-D integer constant."""
        if len(node.input) <= index or node.input[index] not in self.const:
            raise UnsupportedError(f"node {self._name(node)!r}: {node.op_type} needs a constant "
                                   f"input {index}")
        value = np.asarray(self.const[node.input[index]])
        if value.ndim != 1 or value.dtype.kind not in "iu":
            raise UnsupportedError(f"node {self._name(node)!r}: {node.op_type} input {index} "
                                   f"must be a 1-D integer tensor, not {value.dtype} of shape "
                                   f"{value.shape}")
        return [int(v) for v in value]

    def _layout_shape(self, node: onnx.NodeProto, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape a layout node (Reshape, Flatten, Squeeze, Unsqueeze) gives an activation
        of ``shape``, by ONNX's own shape inference, which also checks the node's attributes
        and shape constants."""
        if len(node.input) > 1 and node.input[1]:  # shapes and axes: 1-D integer constants
            self._int_vector(node, 1)
        consts = {i: self.const[i] for i in node.input[1:] if i}
        out = layout_shape(node, shape, consts, self.opset, self._name(node))
        if not out or out[0] != 1:
            raise UnsupportedError(
                f"node {self._name(node)!r}: {node.op_type} to {tuple(out)} mixes the batch "
                f"dimension into the data"
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
            prefix = self._segment(act.nodes, act.base_tensor, len(act.base_shape),
                                   node.input[0])
            self.input_quant = InputQuant(
                name=self._name(node), input_name=self.input_name,
                input_shape=self.input_shape, prefix=prefix.SerializeToString(),
                quantizer=quantizer, out=values, out_shape=act.shape[1:], tensor=out,
            )
            self.acts[out] = _Act(act.shape, "quant", out, values=values, base_shape=act.shape)
        elif act.base == "acc":
            thresholds = self._derive_thresholds(act, node, quantizer, values)
            self.layers.append(act.pending.probe(activation=thresholds))
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

        expected = {"BipolarQuant": 2, "Quant": 4}.get(op)
        if expected is not None and len(node.input) != expected:
            raise UnsupportedError(f"node {name!r}: {op} takes {expected} inputs, not "
                                   f"{len(node.input)}")
        if op == "BipolarQuant":
            scale = scalar(1, "scale")
            check_quant_params(name, (), np.float32(scale))
            q = Quantizer("bipolar", scale)
            return q, q.value_set()
        if op == "Quant":
            a = attributes(node)
            scale, zero = scalar(1, "scale"), scalar(2, "zero point")
            bits, signed, narrow, rounding = check_quant_params(
                name, (), np.float32(scale), np.float32(zero), self.const[node.input[3]], a,
                max_bits=16)
            if bits == 1 and signed:
                if zero:
                    raise UnsupportedError(f"node {name!r}: 1-bit signed Quant with a zero point "
                                           f"is not supported")
                q = Quantizer("bipolar", scale)
            else:
                q = Quantizer("int", scale, zero, bits, signed, narrow, rounding)
            return q, q.value_set()
        raise UnsupportedError(
            f"node {name!r}: quantizer {op} ({node.domain or 'onnx'}) is not supported"
        )

    # -- deriving thresholds and tails ---------------------------------------------------------

    def _derive_thresholds(self, act: _Act, node: onnx.NodeProto, quantizer: Quantizer,
                           values: ValueSet) -> Thresholds:
        probe = act.pending.probe()
        accs = reachable_accumulators(probe)
        name = self._name(node)
        pre = self._evaluate(act.nodes, act.base_tensor, accumulator_floats(probe, accs),
                             node.input[0])
        pre = per_channel(probe, pre, len(accs), name)
        return thresholds_from_floats(probe, accs, pre, quantizer, values, name=name,
                                      tensor=node.output[0])

    def _finish_with_tail(self, act: _Act, out: str) -> MatVec:
        p = act.pending
        if p.window is not None and p.window.positions > 1:
            raise NotSupportedYet(
                f"output {out!r}: the network ends in convolution {p.node!r} with a "
                f"{act.shape[2:]} map; end it in a MatMul/Gemm layer (after Flatten)")
        probe = p.probe()
        accs = reachable_accumulators(probe)
        y = self._evaluate(act.nodes, act.base_tensor, accumulator_floats(probe, accs), out)
        y = per_channel(probe, y, len(accs), out)
        return p.probe(tail=output_tail(accs, y, out))

    # -- running float sub-graphs --------------------------------------------------------------

    def _segment(self, nodes: list, input_name: str, rank: int, output: str) -> onnx.ModelProto:
        """The given float nodes as a model with a free batch dimension."""
        return segment_model(
            nodes, input_name, rank, output, constants=self.const, opset=self.opset,
            reshape_target=lambda n: self._layout_shape(n, self.acts[n.input[0]].shape))

    def _evaluate(self, nodes: list, input_name: str, x: np.ndarray, output: str) -> np.ndarray:
        model = self._segment(nodes, input_name, x.ndim, output)
        return run_float_model(model.SerializeToString(), x, what=output)


SCALE_RANGE = (1e-30, 1e30)  # a float32 scale outside this range under- or overflows


def check_quant_params(name: str, shape: tuple, scale: np.ndarray, zero=None, bits=None,
                       attrs: dict | None = None, *, max_bits: int = 16):
    """Refuse quantizer parameters that are not finite, in range and of a shape that fits the
    tensor; returns ``(bits, signed, narrow, rounding mode)`` for a ``Quant``."""
    scale = np.asarray(scale, dtype=np.float64)
    lo, hi = SCALE_RANGE
    if scale.size == 0 or not np.all(np.isfinite(scale) & (scale >= lo) & (scale <= hi)):
        bad = scale.ravel()[0] if scale.size else "empty"
        raise UnsupportedError(f"node {name!r}: scale {bad} must be a positive finite number "
                               f"from {lo:g} to {hi:g}")
    parts = [("scale", scale)]
    if zero is not None:
        zero = np.asarray(zero, dtype=np.float64)
        if zero.size == 0 or not np.all(np.isfinite(zero)) or np.any(zero != np.round(zero)):
            bad = zero.ravel()[0] if zero.size else "empty"
            raise UnsupportedError(f"node {name!r}: zero point {bad:g} must be a whole number, "
                                   f"so that the levels are integers" if zero.size else
                                   f"node {name!r}: zero point is empty")
        parts.append(("zero point", zero))
    for what, value in parts:
        try:
            np.broadcast_shapes(tuple(shape), value.shape)
        except ValueError:
            raise UnsupportedError(f"node {name!r}: {what} of shape {value.shape} does not fit "
                                   f"the tensor of shape {tuple(shape)}") from None
    if bits is None:
        return None
    width = np.asarray(bits, dtype=np.float64)
    if width.size != 1 or not np.isfinite(width.ravel()[0]) or \
            width.ravel()[0] != int(width.ravel()[0]) or not 1 <= width.ravel()[0] <= max_bits:
        shown = f"{width.ravel()[0]:g}" if width.size == 1 else f"of shape {width.shape}"
        raise UnsupportedError(f"node {name!r}: Quant bit_width {shown} must be a whole number "
                               f"from 1 to {max_bits}")
    a = attrs or {}
    missing = [k for k in ("signed", "narrow") if k not in a]
    if missing:  # QONNX requires them (and Brevitas writes them)
        raise UnsupportedError(f"node {name!r}: Quant has no {' or '.join(missing)} attribute; "
                               f"QONNX requires signed and narrow")
    flags = {k: a[k] for k in ("signed", "narrow")}
    for key, value in flags.items():
        if value not in (0, 1):
            raise UnsupportedError(f"node {name!r}: Quant {key}={value} must be 0 or 1")
    rounding = text(a.get("rounding_mode", "ROUND")).upper()
    if rounding not in ROUNDING_MODES:
        raise UnsupportedError(f"node {name!r}: Quant rounding_mode {rounding!r} is not one of "
                               f"{sorted(ROUNDING_MODES)}")
    return int(width.ravel()[0]), bool(flags["signed"]), bool(flags["narrow"]), rounding
