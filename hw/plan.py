"""The plan a network's hardware is built from: the folding, and what follows from it per layer.

A :class:`Folding` is the user's choice (PE, SIMD and a few switches per layer). From it and
the IR, :func:`plan_network` derives everything the units are built with, once: the engine, the
schedule, the tree stages, the stream widths and beats between layers, where inputs and weights
are stored. :class:`~lowbit.hw.network.NetworkTop` builds the units from a plan, and
:mod:`lowbit.sim.timing` composes the cycle model from the same plan and the units' own facts
(pipeline depths, start delays), so the two cannot disagree about the structure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from lowbit.sw.ir import MatVec, Network, ValueSet

from lowbit.errors import FoldingError, NotSupportedYet

from .banks import InputBanks
from .engines import engine
from .label_select import LabelSelect
from .mvau import MVAU
from .mvtu import accumulator_bits
from .popcount import popcount_levels
from .schedule import Schedule, layer_schedule
from .weights import weight_storage
from .window import WindowGenerator

__all__ = ["LayerFolding", "Folding", "LayerPlan", "NetworkPlan", "plan_network",
           "validate_folding", "check_supported", "divisors", "layer_engine", "tree_levels",
           "default_tree_stages", "out_lane_bits", "zero_fraction"]


@dataclass(frozen=True)
class LayerFolding:
    """PE (output channels per cycle), SIMD (input lanes per cycle), pipeline stages in the
    popcount or adder tree, whether zero weights are skipped (layers with zero weights), and
    whether an XNOR layer registers its block-RAM operands once more, whether a weight
    ROM of more than two words is kept in logic (LUTs) instead of block RAM, and whether the
    layer runs on the bit-plane engine at some input planes per cycle (a divisor of its input
    bits: all of them at once, down to one, bit-serial)."""

    name: str
    pe: int
    simd: int
    tree_stages: int | None = None  # None: default_tree_stages(simd)
    zero_skip: bool | None = None  # None: skip zeros (a compacted schedule)
    operand_register: bool | None = None  # XNOR layers: register block-RAM operands once more
    lut_weights: bool | None = None  # weight ROM in LUTs, not block RAM (lowbit.hw.weights)
    # the bit-plane engine, taking this many input planes per cycle (lowbit.hw.engines)
    planes_per_cycle: int | None = None


@dataclass(frozen=True)
class Folding:
    layers: tuple[LayerFolding, ...]
    label_select: bool = False  # argmax stage at the output: one class index per frame
    # convolutions from the input on keep line buffers (rows, not frames: lowbit.hw.window)
    line_buffers: bool = True

    def to_json(self) -> dict:
        return {
            "layers": [{k: v for k, v in asdict(f).items() if v is not None} for f in self.layers],
            "label_select": self.label_select,
            "line_buffers": self.line_buffers,
        }

    @staticmethod
    def uniform(net: Network, pe: int = 1, simd: int = 1) -> Folding:
        """The same PE and SIMD for every layer (PE = SIMD = 1: fully folded)."""
        return Folding(tuple(LayerFolding(layer.name, pe, simd) for layer in net.layers))


@dataclass(frozen=True, eq=False)
class LayerPlan:
    """One layer as built: its unit (and window generator and pool) and the streams around it.

    ``in_width`` / ``in_elem_bits`` / ``in_beats`` describe the stream entering the layer (the
    window generator of a convolution, else the unit); ``unit_width`` / ``window_beats`` the
    stream entering the unit (window vectors for a convolution); ``out_width`` / ``out_beats``
    the stream leaving the layer (after pooling), ``lane_bits`` per output lane.
    """

    index: int
    layer: MatVec
    folding: LayerFolding
    engine: str
    tree_stages: int
    schedule: Schedule
    in_width: int
    in_elem_bits: int
    in_beats: int
    unit_width: int
    window_beats: int
    lane_bits: int
    out_width: int
    out_beats: int
    input_storage: str  # "registers" or "bram": where the unit's two input banks live
    weight_storage: str  # "constants", "lut" or "bram" (lowbit.hw.weights)
    line_buffer: bool = False  # the window generator keeps a line-buffer ring, not two frames
    # (pool, height, width) of the output when the next layer's line buffer is reserved from
    # here (WindowGenerator's ``reserve``), else None
    reserve: tuple[int, int, int] | None = None

    @property
    def credited(self) -> bool:
        """The line buffer's writer is the layer before, which reserves room for its pixels."""
        return self.line_buffer and self.index > 0

    @property
    def ring_words(self) -> int:
        """Words of the window generator's line-buffer ring (0 without one)."""
        w = self.layer.window
        if not self.line_buffer:
            return 0
        return WindowGenerator.line_words(w, w.channels * self.in_elem_bits // self.in_width)

    @property
    def bank_shapes(self) -> list[tuple[int, int]]:
        """``(depth, width)`` of each block RAM holding the unit's input banks (none in
        flip-flops): the unit's own layout (:meth:`MVAU.bank_lanes
        <lowbit.hw.mvau.MVAU.bank_lanes>`)."""
        if self.input_storage != "bram":
            return []
        lanes = 1 if self.engine == "xnor" else MVAU.bank_lanes(self.schedule, self.simd)
        return InputBanks.ram_shapes(self.window_beats, self.unit_width, lanes,
                                     self.layer.in_values.bits)

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def pe(self) -> int:
        return self.folding.pe

    @property
    def simd(self) -> int:
        return self.folding.simd

    @property
    def neuron_fold(self) -> int:
        return self.layer.out_features // self.pe

    @property
    def synapse_fold(self) -> int:
        return self.layer.in_features // self.simd

    @property
    def positions(self) -> int:
        return self.layer.positions

    @property
    def operand_register(self) -> bool:
        return bool(self.folding.operand_register)


@dataclass(frozen=True, eq=False)
class NetworkPlan:
    """The whole network as built: its layers and the streams at its ports."""

    net: Network
    folding: Folding
    layers: tuple[LayerPlan, ...]
    in_width: int
    in_beats: int
    in_bits: int  # bits per input element (a level index of the input quantizer)
    out_width: int
    out_beats: int

    @property
    def label_select(self) -> bool:
        return self.folding.label_select


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def layer_engine(layer: MatVec, f: LayerFolding | None = None) -> str:
    """The engine the layer runs on: ``bitplane`` where the folding asks for it, else the one
    its weight kind gives (:func:`~lowbit.hw.engines.engine`)."""
    return "bitplane" if f is not None and f.planes_per_cycle else engine(layer)


def tree_levels(layer: MatVec, simd: int, f: LayerFolding | None = None) -> int:
    """Register positions in the layer's popcount or adder tree (the most pipeline stages)."""
    kind = layer_engine(layer, f)
    if kind == "xnor":
        return popcount_levels(simd)
    return MVAU.tree_levels(kind, simd)


def default_tree_stages(simd: int) -> int:
    """One register in the popcount (or adder) tree per 32 lanes, at most 3: keeps fmax for wide
    SIMD."""
    return min(3, (simd - 1) // 32)


def out_lane_bits(layer: MatVec) -> int:
    """Bits of one output lane: a level index, or the signed accumulator of the last layer."""
    if layer.activation is not None:
        return layer.activation.out.bits
    return accumulator_bits(layer.in_features) if engine(layer) == "xnor" else layer.acc_bits


def _contiguous(values: ValueSet) -> bool:
    levels = values.levels
    return values.bipolar or list(levels) == list(range(levels[0], levels[-1] + 1))


def check_supported(net: Network) -> None:
    """Refuse what the hardware does not implement yet, naming the layer."""
    if not _contiguous(net.input.out):
        raise NotSupportedYet(
            f"input quantizer {net.input.name!r}: levels {net.input.out.levels} are not "
            f"supported in hardware (bipolar or consecutive integers only)"
        )
    for layer in net.layers:
        act = layer.activation
        if act is not None and not _contiguous(act.out):
            raise NotSupportedYet(
                f"layer {layer.name!r}: activation levels {act.out.levels} are not supported in "
                f"hardware (bipolar or consecutive integers only)"
            )
        if layer.in_values.bits > 8:
            raise NotSupportedYet(f"layer {layer.name!r}: inputs of {layer.in_values.bits} bits "
                                  f"are not supported in hardware (8 at most)")


def _stages(layer: MatVec, f: LayerFolding) -> int:
    if f.tree_stages is not None:
        return f.tree_stages
    return min(default_tree_stages(f.simd), tree_levels(layer, f.simd, f))


def validate_folding(net: Network, folding: Folding) -> None:
    """Refuse a folding that does not fit ``net``, naming the layer and what would fit."""
    check_supported(net)
    if len(folding.layers) != len(net.layers):
        raise FoldingError(f"folding has {len(folding.layers)} layers, the network "
                           f"{len(net.layers)} ({', '.join(layer.name for layer in net.layers)})")
    for layer, f in zip(net.layers, folding.layers):
        if f.name != layer.name:
            raise FoldingError(f"folding layer {f.name!r} is in the place of {layer.name!r}")
        mh, mw = layer.out_features, layer.in_features
        if f.pe < 1 or mh % f.pe:
            raise FoldingError(f"layer {layer.name!r}: pe={f.pe} must divide its {mh} output "
                               f"channels (MH % PE == 0); try one of {divisors(mh)}")
        if f.simd < 1 or mw % f.simd:
            raise FoldingError(f"layer {layer.name!r}: simd={f.simd} must divide its {mw} inputs "
                               f"(MW % SIMD == 0); try one of {divisors(mw)}")
        kind = layer_engine(layer, f)
        if f.operand_register and kind != "xnor":
            raise FoldingError(f"layer {layer.name!r}: operand_register is available on "
                               f"XNOR-popcount layers only (this one runs {kind})")
        bits = layer.in_values.bits
        if f.planes_per_cycle is not None and (f.planes_per_cycle < 1
                                               or bits % f.planes_per_cycle):
            raise FoldingError(f"layer {layer.name!r}: planes_per_cycle={f.planes_per_cycle} "
                               f"must divide its {bits} input bits; try one of {divisors(bits)}")
        if f.planes_per_cycle and f.zero_skip:
            raise FoldingError(f"layer {layer.name!r}: the bit-plane engine has no zero-skip "
                               f"schedule (zero_skip and planes_per_cycle together)")
        stages, levels = _stages(layer, f), tree_levels(layer, f.simd, f)
        if not 0 <= stages <= levels:
            raise FoldingError(f"layer {layer.name!r}: tree_stages={stages} must be "
                               f"0..{levels} for simd={f.simd}")
    if folding.label_select:
        tail = net.layers[-1].tail
        same = (tail.table == tail.table[:1]).all()
        rising = (tail.table[0, 1:] > tail.table[0, :-1]).all()
        if not (same and rising):
            raise FoldingError(
                f"label_select: the output tail of {net.layers[-1].name!r} is not one strictly "
                f"increasing map shared by all channels, so the argmax of the accumulators is not "
                f"the argmax of the outputs"
            )


def plan_network(net: Network, folding: Folding) -> NetworkPlan:
    """Validate ``folding`` for ``net`` and derive each layer's plan.

    The input stream carries ``simd`` of layer 0 elements per beat, or one pixel per beat when
    layer 0 is a convolution; between layers a stream carries ``pe`` lanes per beat. With
    ``folding.line_buffers`` the convolutions from the input up to the first dense layer keep
    line buffers, each reserving room in the next one's."""
    validate_folding(net, folding)
    line = []
    for k, layer in enumerate(net.layers):
        line.append(folding.line_buffers and layer.window is not None and (k == 0 or line[-1]))
    first = net.layers[0]
    in_bits = net.input.out.bits
    if first.window is not None:  # one input pixel per beat
        in_width = first.window.channels * in_bits
        in_beats = first.window.height * first.window.width
    else:
        in_width = folding.layers[0].simd * first.in_values.bits
        in_beats = first.in_features * first.in_values.bits // in_width
    width, beats, elem_bits = in_width, in_beats, in_bits
    layers = []
    for k, (layer, f) in enumerate(zip(net.layers, folding.layers)):
        kind = layer_engine(layer, f)
        passes = layer.in_values.bits // f.planes_per_cycle if kind == "bitplane" else 1
        schedule = layer_schedule(layer, f.pe, f.simd,
                                  False if kind == "bitplane" else f.zero_skip, passes)
        lane_bits = out_lane_bits(layer)
        nf = layer.out_features // f.pe
        if layer.window is None:
            unit_width, unit_beats = width, beats
        else:
            unit_width, unit_beats = WindowGenerator.out_beat(layer.window, width, elem_bits,
                                                              layer.in_values.bits)
        out_positions = layer.positions
        reserve = None
        if layer.pool is not None:
            out_positions = layer.pool.out_height * layer.pool.out_width
        if k + 1 < len(line) and line[k + 1]:
            if layer.pool is not None:
                reserve = (layer.pool.kernel, layer.pool.out_height, layer.pool.out_width)
            else:
                reserve = (1, layer.window.out_height, layer.window.out_width)
        plan = LayerPlan(
            index=k, layer=layer, folding=f, engine=kind,
            tree_stages=_stages(layer, f), schedule=schedule,
            in_width=width, in_elem_bits=elem_bits, in_beats=beats,
            unit_width=unit_width, window_beats=unit_beats, lane_bits=lane_bits,
            out_width=f.pe * lane_bits, out_beats=out_positions * nf,
            input_storage=InputBanks.storage(unit_width, f.simd, layer.in_values.bits,
                                             layer.in_features, schedule.dense),
            weight_storage=weight_storage(schedule.rom_words, bool(f.lut_weights)),
            line_buffer=line[k], reserve=reserve,
        )
        layers.append(plan)
        width, beats, elem_bits = plan.out_width, plan.out_beats, lane_bits
    out_beats, out_width = beats, width
    if folding.label_select:
        out_beats, out_width = 1, LabelSelect.index_bits_for(net.layers[-1].out_features)
    return NetworkPlan(net=net, folding=folding, layers=tuple(layers), in_width=in_width,
                       in_beats=in_beats, in_bits=in_bits, out_width=out_width,
                       out_beats=out_beats)


def zero_fraction(layer: MatVec) -> float:
    """The share of the layer's weights that are 0."""
    return float(np.count_nonzero(layer.weights == 0)) / layer.weights.size
