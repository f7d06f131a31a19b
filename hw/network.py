"""The network top: the IR's layers as a chain of units, built from a folding.

The units are built from a :class:`~lowbit.hw.plan.NetworkPlan`; nothing here computes timing.
The float → integer step of the input quantizer happens on the host
(:func:`lowbit.sw.reference.quantize_input`); the hardware takes the quantized input as level
indices of ``in_bits`` each, ``simd`` of layer 0 per beat (one pixel per beat when layer 0 is a
convolution, in HWC order), bits ``[j·in_bits, (j+1)·in_bits)`` of
beat ``b`` being input element ``b·simd + j`` (for bipolar inputs one bit, 1 ↔ +1). Between
layers the same packing carries output level indices. The output is the last layer's signed
accumulators, ``pe`` per beat, or one class index per frame when the folding asks for a
label-select stage. The host maps accumulators to the model's float
output with the layer's :class:`~lowbit.sw.ir.OutputTail`.
"""

from __future__ import annotations

import re

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from lowbit.sw.ir import MatVec

from .label_select import LabelSelect
from .mvau import MVAU
from .mvtu import MVTU
from .plan import NetworkPlan
from .pool import MaxPoolUnit
from .window import WindowGenerator

__all__ = ["NetworkTop", "popcount_thresholds", "hardware_name", "POPCOUNT_STYLE"]

# FPGA family → the popcount structure that synthesizes smallest there (bench/popcount_luts.py)
POPCOUNT_STYLE = {"ice40": "carry", "ecp5": "wallace"}


def hardware_name(index: int, onnx_name: str) -> str:
    """A Verilog-safe instance name: ``l<index>_`` plus the ONNX name reduced to [a-z0-9_]."""
    clean = re.sub(r"[^a-z0-9_]", "_", onnx_name.lower()).strip("_")
    clean = re.sub(r"_+", "_", clean)[:40]
    return f"l{index}_{clean}" if clean else f"l{index}"


def popcount_thresholds(layer: MatVec) -> tuple[np.ndarray, np.ndarray]:
    """The layer's thresholds moved to the match-count domain: ``acc = 2·matches − MW``.

    Direction +1: ``acc >= t`` ⇔ ``matches >= ceil((t + MW) / 2)``;
    direction −1: ``−acc >= t`` ⇔ ``matches <= floor((MW − t) / 2)``.
    """
    mw = layer.in_features
    t = layer.activation.thresholds[:, 0].astype(np.int64)
    up = layer.activation.direction > 0
    ge_t = -((-(t + mw)) // 2)
    le_t = (mw - t) // 2
    return np.where(up, ge_t, le_t), up


class NetworkTop(wiring.Component):
    """All layers of a network, streaming: XNOR-popcount layers on :class:`MVTU`, the others on
    :class:`MVAU`; a convolution has a :class:`WindowGenerator` in front of its unit and, when
    it pools, a :class:`MaxPoolUnit` behind it. Consecutive line-buffered generators are linked
    by their reservation signals (``down_ok``/``down_take`` to ``up_ok``/``up_take``).

    Members
    -------
    i : In(stream.Signature(plan.in_width))
    o : Out(stream.Signature(plan.out_width))
    """

    def __init__(self, plan: NetworkPlan, family: str = "ice40"):
        if family not in POPCOUNT_STYLE:
            raise ValueError(f"family must be one of {sorted(POPCOUNT_STYLE)}, not {family!r}")
        self.plan, self.family = plan, family
        super().__init__({
            "i": In(stream.Signature(plan.in_width)),
            "o": Out(stream.Signature(plan.out_width)),
        })

    def elaborate(self, platform):
        m = Module()
        units = []  # (input side, output side) of each layer
        for lp in self.plan.layers:
            layer, f = lp.layer, lp.folding
            act = layer.activation
            name = hardware_name(lp.index, layer.name)
            window = None
            if layer.window is not None:
                window = WindowGenerator(layer.window, in_width=lp.in_width,
                                         in_bits=lp.in_elem_bits, out_bits=layer.in_values.bits,
                                         line=lp.line_buffer, credited=lp.credited,
                                         reserve=lp.reserve)
                m.submodules[f"{name}_window"] = window
                if lp.credited:  # the generator before reserves room in this one's ring
                    before = units[-1][0]
                    m.d.comb += [before.down_ok.eq(window.up_ok),
                                 window.up_take.eq(before.down_take)]
            if lp.engine == "xnor":
                t, ge = popcount_thresholds(layer) if act is not None else (None, None)
                unit = MVTU(layer.weights > 0, pe=f.pe, simd=f.simd, in_width=lp.unit_width,
                            thresholds=t, greater_equal=ge, popcount_stages=lp.tree_stages,
                            popcount_style=POPCOUNT_STYLE[self.family],
                            input_bram=lp.input_storage == "bram",
                            operand_register=lp.operand_register,
                            lut_weights=lp.weight_storage == "lut")
            else:
                scale, offset = MVAU.lane_value(layer.in_values)
                unit = MVAU(layer.weights, engine=lp.engine, pe=f.pe, simd=f.simd,
                            in_bits=layer.in_values.bits, in_width=lp.unit_width,
                            in_scale=scale, in_offset=offset, schedule=lp.schedule,
                            thresholds=None if act is None else act.thresholds,
                            direction=None if act is None else act.direction,
                            out_bits=lp.lane_bits, acc_bits=lp.lane_bits,
                            stages=lp.tree_stages,
                            input_bram=lp.input_storage == "bram",
                            lut_weights=lp.weight_storage == "lut",
                            planes=f.planes_per_cycle if lp.engine == "bitplane" else None,
                            popcount_style=POPCOUNT_STYLE[self.family])
            m.submodules[name] = unit
            out = unit
            if window is not None:
                wiring.connect(m, window.o, unit.i)
            if layer.pool is not None:
                pool = MaxPoolUnit(kernel=layer.pool.kernel, height=layer.pool.height,
                                   width=layer.pool.width, channels=layer.out_features,
                                   pe=f.pe, lane_bits=lp.lane_bits,
                                   sync_read=MaxPoolUnit.sync_read(self.family))
                m.submodules[f"{name}_pool"] = pool
                wiring.connect(m, unit.o, pool.i)
                out = pool
            units.append((window or unit, out))
        wiring.connect(m, wiring.flipped(self.i), units[0][0].i)
        for (_, a), (b, _) in zip(units, units[1:]):
            wiring.connect(m, a.o, b.i)
        last = units[-1][1]
        if self.plan.label_select:
            final = self.plan.layers[-1]
            select = LabelSelect(final.layer.out_features, final.pe, final.lane_bits)
            m.submodules.label_select = select
            wiring.connect(m, last.o, select.i)
            last = select
        wiring.connect(m, last.o, wiring.flipped(self.o))
        return m
