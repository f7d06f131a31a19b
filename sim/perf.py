"""The cycle model: folding, its validation, and exact cycles per layer and for the network.

This module is the specification of the RTL's timing; the measured RTL numbers must equal it.
Conventions: cycle 0 is the clock cycle in which the first input beat of a frame is accepted;
``latency_cycles`` is the cycle in which the last output beat of that frame is delivered, with the
input offered every cycle and the output always ready. ``ii_cycles`` is the steady-state distance
between the last output beats of consecutive frames.

Per binary layer (see :class:`lowbit.hw.mvtu.MVTU`), with ``NF = MH/PE``, ``SF = MW/SIMD`` and
``IB`` input beats per frame:

- the unit starts computing a frame one cycle after its last input beat, and issues one step
  per cycle for ``NF·SF`` cycles;
- output beat ``nf`` leaves ``(nf+1)·SF + 1 + P`` cycles after the first step (``P`` popcount
  pipeline stages);
- two input banks let the next frame arrive during the computation, so a layer's initiation
  interval is ``max(IB, NF·SF)`` and the network's is the largest of its layers'.

Other layers (multi-bit activations, ternary, power-of-two and integer weights) run on
:class:`lowbit.hw.mvau.MVAU`, which follows a compile-time *schedule* (:func:`layer_schedule`):
neuron fold ``nf`` takes ``steps[nf]`` cycles instead of ``SF``, fewer when zero weights are
skipped, and its datapath is one register deeper (output beat ``nf`` leaves ``cum_steps(nf+1) + 2
+ P`` cycles after the first step). ``D`` below is that depth: 1 for XNOR-popcount (2 with an
operand register, see :class:`LayerFolding`), 2 otherwise.

Convolutions (see :func:`analyze`): a window generator holds two whole input frames and feeds
the unit window vectors; the unit's two input banks hold two windows. A max-pool stage behind
the unit keeps one row of partial maxima.

FIFOs between layers: none are needed, and the depths are derived, not searched: every unit's
second input bank (a frame for a dense layer or a window generator, a window for a
convolution's unit) takes the next frame while the current one is worked on, and a unit whose
output waits freezes without losing state. In a chain this cannot deadlock, and back-pressure
only slows the faster layers to the bottleneck's pace, so the network's II is the largest layer
II and every depth reported is 0 (the storage is reported as ``window_storage_bits`` and the
input banks).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from lowbit.hw.adder import adder_levels
from lowbit.hw.mvtu import accumulator_bits as acc_bits
from lowbit.hw.weights import weight_storage
from lowbit.hw.window import WINDOW_BRAM_MIN_BITS
from lowbit.sw.ir import MatVec, Network, WeightKind

from lowbit.errors import LowbitError, NotSupportedYet

__all__ = [
    "FoldingError",
    "LayerFolding",
    "Folding",
    "LayerPerf",
    "NetworkPerf",
    "check_supported",
    "load_folding",
    "validate_folding",
    "default_popcount_stages",
    "analyze",
    "auto_folding",
    "estimate_luts",
    "divisors",
    "bram_blocks",
    "Schedule",
    "layer_schedule",
    "engine",
    "ENGINES",
    "tree_levels",
    "out_lane_bits",
    "in_lane_value",
    "input_storage",
    "network_bram_blocks",
    "estimate_ffs",
    "logic_cells",
]


class FoldingError(LowbitError):
    """A folding that does not fit the network (bad PE/SIMD, wrong layer names, bad JSON)."""


@dataclass(frozen=True)
class LayerFolding:
    """PE (output channels per cycle), SIMD (input lanes per cycle), pipeline stages in the
    popcount or adder tree, and whether zero weights are skipped (layers with zero weights)."""

    name: str
    pe: int
    simd: int
    popcount_stages: int | None = None  # None: default_popcount_stages(simd)
    zero_skip: bool | None = None  # None: skip zeros (a compacted schedule)
    operand_register: bool | None = None  # XNOR layers: register block-RAM operands once more


@dataclass(frozen=True)
class Folding:
    layers: tuple[LayerFolding, ...]
    label_select: bool = False  # argmax stage at the output: one class index per frame

    def to_json(self) -> dict:
        return {
            "layers": [{k: v for k, v in asdict(f).items() if v is not None} for f in self.layers],
            "label_select": self.label_select,
        }


@dataclass(frozen=True)
class LayerPerf:
    name: str
    mh: int
    mw: int
    pe: int
    simd: int
    neuron_fold: int
    synapse_fold: int
    popcount_stages: int
    in_beats: int
    in_width: int
    out_width: int
    engine: str  # ENGINES
    in_bits: int  # bits per input element (a level index)
    out_lane_bits: int  # bits per output lane: a level index, or a signed accumulator
    zero_weights: float  # fraction of the weights that are 0
    dense_cycles: int  # NF·SF: compute steps without zero skipping (per window position)
    cycles_per_frame: int  # compute steps of the schedule, per frame (per window position for a
    # convolution; == dense_cycles unless zeros are skipped)
    ii_cycles: int
    start_cycle: int  # first compute step of frame 0
    first_out_cycle: int
    last_out_cycle: int
    weight_storage: str  # "constants", "lut" or "bram" (lowbit.hw.weights)
    input_storage: str  # "registers" or "bram": where the two input banks live
    weight_memory_bits: int
    estimated_luts: int
    estimated_ffs: int
    fifo_depth: int = 0
    positions: int = 1  # window positions per frame (convolutions)
    window_beats: int = 0  # beats of one window vector (== in_beats for a dense layer)
    frame_cycles: int = 0  # cycles per frame when this layer paces: positions × max(beats, steps)
    window_storage_bits: int = 0  # the window generator's two frame banks
    pool: int = 0  # max-pool kernel after the thresholds (0: none)
    out_beats: int = 0  # output beats per frame

    @property
    def compute_cycles(self) -> int:
        """Compute steps per frame (all window positions), the layer's beats aside."""
        return self.positions * self.cycles_per_frame


@dataclass(frozen=True)
class NetworkPerf:
    layers: tuple[LayerPerf, ...]
    ii_cycles: int
    latency_cycles: int
    in_beats: int
    in_width: int
    in_bits: int  # bits per input element (a level index of the input quantizer)
    out_beats: int
    out_width: int
    estimated_luts: int
    estimated_ffs: int
    label_select: bool = False
    notes: tuple[str, ...] = field(default=())
    schedules: tuple[Schedule, ...] = field(default=(), repr=False, compare=False)

    def to_json(self) -> dict:
        return {
            "ii_cycles": self.ii_cycles,
            "latency_cycles": self.latency_cycles,
            "in_beats": self.in_beats,
            "in_width": self.in_width,
            "in_bits": self.in_bits,
            "out_beats": self.out_beats,
            "out_width": self.out_width,
            "estimated_luts": self.estimated_luts,
            "estimated_ffs": self.estimated_ffs,
            "label_select": self.label_select,
            "layers": [asdict(layer) for layer in self.layers],
        }


ENGINES = ("xnor", "addsub", "ternary", "shift", "multiply")


def engine(layer: MatVec) -> str:
    """The datapath a layer runs on, from its weight kind (decided in import) and value sets.

    ``xnor``: binary weights on bipolar inputs into a sign or the output (XNOR-popcount, MVTU);
    ``addsub``: binary weights otherwise (add or subtract each input level); ``ternary``: zero,
    +a or −b (zero-skip); ``shift``: ±2^e or zero (shift-add); ``multiply``: integer weights.
    """
    kind = layer.weight_kind
    act = layer.activation
    if (kind is WeightKind.BINARY and layer.in_values.bipolar
            and (act is None or act.out.bipolar)):
        return "xnor"
    if kind is WeightKind.BINARY:
        return "addsub"
    if kind is WeightKind.TERNARY:
        return "ternary" if _ternary_magnitudes(layer) is not None else "multiply"
    if kind is WeightKind.POW2:
        return "shift"
    return "multiply"


def _ternary_magnitudes(layer: MatVec) -> tuple[int, int] | None:
    """``(a, b)`` when every weight is 0, +a or −b with one ``a`` and ``b`` for the layer."""
    w = layer.weights
    pos, neg = np.unique(w[w > 0]), np.unique(-w[w < 0])
    if len(pos) > 1 or len(neg) > 1:
        return None
    return (int(pos[0]) if len(pos) else 1), (int(neg[0]) if len(neg) else 1)


def _contiguous(values) -> bool:
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


def in_lane_value(values) -> tuple[int, int]:
    """``(a, lo)`` with element value ``a·index + lo``: (2, −1) for bipolar, (1, levels[0])."""
    return (2, -1) if values.bipolar else (1, values.levels[0])


def out_lane_bits(layer: MatVec) -> int:
    """Bits of one output lane: a level index, or the signed accumulator of the last layer."""
    if layer.activation is not None:
        return layer.activation.out.bits
    return acc_bits(layer.in_features) if engine(layer) == "xnor" else layer.acc_bits


def tree_levels(layer: MatVec, simd: int) -> int:
    """Register positions in the layer's popcount or adder tree (the most pipeline stages)."""
    from lowbit.hw.popcount import popcount_levels

    if engine(layer) == "xnor":
        return popcount_levels(simd)
    return max(1, adder_levels(simd))


@dataclass(frozen=True, eq=False)
class Schedule:
    """The compute steps of one layer, fixed at compile time.

    Neuron fold ``nf`` takes ``steps[nf]`` consecutive steps. At step ``t`` input lane ``l``
    reads synapse fold ``select[t, l]`` (element ``select[t, l]·simd + l``) when ``active[t, l]``;
    an inactive lane contributes 0. Without zero skipping ``steps[nf] = SF`` and lane ``l`` reads
    fold ``t − start(nf)``. With it, each lane walks only the folds where some weight of the
    neuron fold's ``pe`` rows is non-zero, so ``steps[nf]`` is the busiest lane's count (at least
    1); every weight of a skipped position is 0, so nothing is lost.
    """

    steps: tuple[int, ...]
    select: np.ndarray  # (T, simd) int
    active: np.ndarray  # (T, simd) bool
    dense: bool  # no position skipped: the plain NF × SF order

    @property
    def cycles(self) -> int:
        return sum(self.steps)


def layer_schedule(layer: MatVec, pe: int, simd: int, zero_skip: bool | None = True) -> Schedule:
    mh, mw = layer.out_features, layer.in_features
    nf, sf = mh // pe, mw // simd
    needed = (layer.weights.reshape(nf, pe, sf, simd) != 0).any(axis=1)  # (NF, SF, SIMD)
    counts = needed.sum(axis=1)  # (NF, SIMD)
    if zero_skip is False or engine(layer) == "xnor" or counts.min() == sf:
        select = np.tile(np.arange(sf), nf)[:, None].repeat(simd, axis=1)
        return Schedule((sf,) * nf, select, np.ones_like(select, dtype=bool), True)
    steps = np.maximum(counts.max(axis=1), 1)
    total = int(steps.sum())
    select = np.zeros((total, simd), dtype=np.int64)
    active = np.zeros((total, simd), dtype=bool)
    t0 = 0
    for n in range(nf):
        for lane in range(simd):
            folds = np.flatnonzero(needed[n, :, lane])
            select[t0:t0 + len(folds), lane] = folds
            active[t0:t0 + len(folds), lane] = True
        t0 += int(steps[n])
    return Schedule(tuple(int(v) for v in steps), select, active, False)


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def default_popcount_stages(simd: int) -> int:
    """One register in the popcount (or adder) tree per 32 lanes, at most 3: keeps fmax for wide
    SIMD."""
    return min(3, (simd - 1) // 32)


def load_folding(path: str | os.PathLike, net: Network) -> Folding:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FoldingError(f"--folding {path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise FoldingError(f"--folding {path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("layers"), list):
        raise FoldingError(f"--folding {path}: expected "
                           f"{{\"layers\": [{{\"pe\": …, \"simd\": …}}, …]}}")
    layers = []
    for k, entry in enumerate(data["layers"]):
        if not isinstance(entry, dict):
            raise FoldingError(f"--folding {path}: layers[{k}] must be an object")
        unknown = set(entry) - {"name", "pe", "simd", "popcount_stages", "zero_skip",
                                "operand_register"}
        if unknown:
            raise FoldingError(f"--folding {path}: layers[{k}] has unknown keys {sorted(unknown)}")
        try:
            layers.append(LayerFolding(
                name=str(entry.get("name", net.layers[k].name if k < len(net.layers) else k)),
                pe=_int(entry, "pe"), simd=_int(entry, "simd"),
                popcount_stages=(None if entry.get("popcount_stages") is None
                                 else _int(entry, "popcount_stages")),
                zero_skip=_bool(entry, "zero_skip", path, k),
                operand_register=_bool(entry, "operand_register", path, k),
            ))
        except (TypeError, ValueError):
            raise FoldingError(f"--folding {path}: layers[{k}]: pe, simd and popcount_stages "
                               f"must be whole numbers") from None
    folding = Folding(tuple(layers), bool(data.get("label_select", False)))
    validate_folding(net, folding)
    return folding


def _bool(entry: dict, key: str, path, k: int) -> bool | None:
    value = entry.get(key)
    if value is not None and not isinstance(value, bool):
        raise FoldingError(f"--folding {path}: layers[{k}]: {key} must be true or false")
    return value


def _int(entry: dict, key: str) -> int:
    value = entry[key] if key in entry else None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(key)
    return value


def validate_folding(net: Network, folding: Folding) -> None:
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
        if f.operand_register and engine(layer) != "xnor":
            raise FoldingError(f"layer {layer.name!r}: operand_register is available on "
                               f"XNOR-popcount layers only (this one runs {engine(layer)})")
        stages, levels = _stages(layer, f), tree_levels(layer, f.simd)
        if not 0 <= stages <= levels:
            raise FoldingError(f"layer {layer.name!r}: popcount_stages={stages} must be "
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


def _stages(layer: MatVec, f: LayerFolding) -> int:
    if f.popcount_stages is not None:
        return f.popcount_stages
    return min(default_popcount_stages(f.simd), tree_levels(layer, f.simd))


# block RAM geometry: (bits per block, widest port, depth at the widest port)
BRAM = {"ice40": (4096, 16, 256), "ecp5": (18432, 36, 512)}


def bram_blocks(depth: int, width: int, family: str = "ice40") -> int:
    """Blocks a ROM of ``depth`` words × ``width`` bits takes (0 unless stored in block RAM)."""
    if weight_storage(depth) != "bram":
        return 0
    return _ram_blocks(depth, width, family)


INPUT_BRAM_MIN_BITS = 256


def input_storage(in_width: int, simd: int, bits: int, mw: int, dense: bool = True) -> str:
    """Block RAM for the input banks of a layer whose input beat is one SIMD word and whose
    lanes read the same synapse fold at each step (no zero-skip schedule), when the frame holds
    at least ``INPUT_BRAM_MIN_BITS`` bits over 4 or more words (flip-flops would cost two per
    bit, the RAM a fraction of one block); otherwise flip-flops."""
    words = mw * bits // max(in_width, 1)
    if dense and in_width == simd * bits and words >= 4 and mw * bits >= INPUT_BRAM_MIN_BITS:
        return "bram"
    return "registers"


def network_bram_blocks(perf: NetworkPerf, family: str = "ice40") -> int:
    """Block RAMs of ``family`` the design takes: weight ROMs and input banks."""
    total = 0
    for lp in perf.layers:
        total += bram_blocks(lp.cycles_per_frame, lp.pe * lp.simd * _code_bits(lp), family)
        if lp.input_storage == "bram":
            total += _ram_blocks(2 << (max(lp.window_beats, 2) - 1).bit_length(),
                                 lp.window_beats and lp.mw * lp.in_bits // lp.window_beats,
                                 family)
        if lp.window_storage_bits >= WINDOW_BRAM_MIN_BITS:  # the generator's two frame banks
            total += _ram_blocks(2 * lp.in_beats, lp.in_width, family)
    return total


def _code_bits(lp: LayerPerf) -> int:
    return 1 if lp.engine == "xnor" else max(1, lp.weight_memory_bits // (lp.mh * lp.mw))


def _ram_blocks(depth: int, width: int, family: str) -> int:
    bits, widest, shallow = BRAM[family]
    rows = max(shallow, 1 << (depth - 1).bit_length())
    port = max(1, min(widest, bits // rows))
    return -(-width // port) * -(-rows * port // bits)


def _table_luts(entries: int, width: int) -> float:
    """LUT4s of a constant table read by an index: 16 entries per LUT4, plus the muxes."""
    if entries <= 1:
        return 0.0
    if entries <= 4:  # a few address bits: shares LUTs with the logic it feeds
        return width * 0.5
    return width * math.ceil(entries / 16) * 1.3


def estimate_luts(layer: MatVec, pe: int, simd: int, cycles: int | None = None,
                  input_bram: bool = False) -> int:
    """The resource estimate for one unit in iCE40 LUT4s, calibrated against yosys.

    XNOR + popcount per synapse from bench/popcount_luts.py at SIMD 64: 1.6 LUT4 when the weights
    are constants or a two-word LUT ROM (the XNOR merges into the first adder level), 2.3
    otherwise. Other engines: per lane the term logic (invert, gate, shift or multiply) plus one
    adder bit per term bit. Threshold tables indexed by the neuron fold are logic (about 1.3
    LUT4 per 16 entries per bit). Then accumulators, comparators, the input bank read
    multiplexer and control. ``cycles`` is the schedule length (default NF·SF). The
    coefficients come from synthesizing TFC_1W1A at five foldings with ``synth_ice40``, per
    layer; bench/synth.py records whole designs beside this estimate.
    """
    mh, mw = layer.out_features, layer.in_features
    nf, sf = mh // pe, mw // simd
    cycles = nf * sf if cycles is None else cycles
    kind = engine(layer)
    in_bits = layer.in_values.bits
    count = mw.bit_length()
    storage = weight_storage(cycles)
    act = layer.activation
    levels = 1 if act is None else act.levels
    if kind == "xnor":
        acc = count
        per_pe = simd * (2.3 if storage == "bram" else 1.6)
    else:
        wbits = layer.weight_bits
        exps = max(1, int(np.abs(layer.weights).max(initial=1)).bit_length())
        term = {"addsub": in_bits, "ternary": in_bits,
                "shift": (in_bits + exps) * max(1, (exps - 1).bit_length()),
                "multiply": in_bits * wbits}[kind]
        term_bits = in_bits + (exps if kind == "shift" else wbits if kind == "multiply" else 0)
        lanes = simd
        if cycles == 1:  # constants: zero weights vanish, the rest is wiring or constant logic
            lanes = simd * float(np.count_nonzero(layer.weights)) / max(1, layer.weights.size)
            term = 0 if kind in ("addsub", "ternary", "shift") else term / 2
        acc = layer.acc_bits
        per_pe = lanes * (term + term_bits + 1)
    thresholds = 0.0
    if act is not None:
        thresholds = levels * (acc + 1 + _table_luts(nf, acc + 1))
    else:
        thresholds = acc + _table_luts(nf, acc)  # output offset / accumulator lanes
    per_pe += 2 * acc + thresholds
    read_mux = 0 if sf == 1 or input_bram else simd * in_bits * min(2 * sf, 64) // 3
    control = 70 + 2 * (math.ceil(math.log2(max(cycles, 2))))  # counters, flags, handshakes
    return int(round(pe * per_pe + read_mux + control))


def estimate_ffs(layer: MatVec, pe: int, simd: int, stages: int, cycles: int,
                 input_bram: bool, out_width: int) -> int:
    """Flip-flops of one unit: input banks (none in block RAM), operand and weight-code
    registers, tree pipeline registers, accumulators, the output beat and control."""
    bits = layer.in_values.bits
    banks = 0 if input_bram else 2 * layer.in_features * bits
    operands = 0 if input_bram and engine(layer) == "xnor" else simd * bits
    if engine(layer) != "xnor" and cycles > 1:
        operands += pe * simd * max(1, layer.weight_bits)
    acc = layer.in_features.bit_length() if engine(layer) == "xnor" else layer.acc_bits
    return banks + operands + stages * simd + pe * acc + out_width + 24


def logic_cells(perf: NetworkPerf) -> int:
    """iCE40 logic cells the design needs, about: yosys and nextpnr pack few of lowbit's
    flip-flops (bank shift registers, RAM-fed registers) with a LUT, so cells ≈ LUTs + FFs."""
    return perf.estimated_luts + perf.estimated_ffs


def window_word(layer: MatVec, in_width: int, in_elem_bits: int) -> tuple[int, int]:
    """``(window beat width, window beats)`` of a convolution: the window generator passes the
    incoming beats through (``in_width / in_elem_bits`` elements each), re-coded to the layer's
    input level indices; a window vector is ``kh·kw·channels`` elements."""
    elements = in_width // in_elem_bits
    width = elements * layer.in_values.bits
    return width, layer.in_features // elements


def analyze(net: Network, folding: Folding) -> NetworkPerf:
    """The exact cycle model of ``net`` under ``folding``.

    A convolution is a window generator in front of the layer's unit (:mod:`lowbit.hw.window`).
    The generator collects a whole input frame (two frame banks), starts reading one cycle after
    the frame's last beat, and its first window beat reaches the unit one cycle later (``s0``);
    it then streams window beats back to back, held while the unit's input banks are full. With
    ``IB`` beats per window and ``T`` steps per window the unit starts window ``k`` at
    ``s0 + IB + k·max(IB, T)``. A max-pool stage after the thresholds emits pooled beat ``nf``
    of a pooled pixel one cycle after the unit's beat ``nf`` of the window that completes it.
    """
    validate_folding(net, folding)
    layers, schedules = [], []
    first = net.layers[0]
    in_bits = net.input.out.bits
    if first.window is not None:  # one input pixel per beat
        in_width = first.window.channels * in_bits
        in_beats = first.window.height * first.window.width
    else:
        in_width = folding.layers[0].simd * first.in_values.bits
        in_beats = first.in_features * first.in_values.bits // in_width
    last_in = in_beats - 1  # cycle of the last input beat of frame 0
    width, beats, elem_bits = in_width, in_beats, in_bits
    for layer, f in zip(net.layers, folding.layers):
        mh, mw = layer.out_features, layer.in_features
        nf, sf = mh // f.pe, mw // f.simd
        p = _stages(layer, f)
        kind = engine(layer)
        schedule = layer_schedule(layer, f.pe, f.simd, f.zero_skip)
        depth = (1 + bool(f.operand_register)) if kind == "xnor" else 2
        cycles = schedule.cycles
        lane_bits = out_lane_bits(layer)
        out_width = f.pe * lane_bits
        window = layer.window
        if window is None:
            unit_width, unit_beats, positions = width, beats, 1
            start = last_in + 1
            step = 0
        else:
            unit_width, unit_beats = window_word(layer, width, elem_bits)
            positions = window.positions
            step = max(unit_beats, cycles)
            start = last_in + 2 + unit_beats  # window 0; window k starts k·step later
        first_out = start + schedule.steps[0] + depth + p
        last_out = start + (positions - 1) * step + cycles + depth + p
        out_positions = positions
        if layer.pool is not None:
            k, ow = layer.pool.kernel, window.out_width
            done_first = (k - 1) * ow + (k - 1)
            done_last = (layer.pool.out_height * k - 1) * ow + layer.pool.out_width * k - 1
            first_out = start + done_first * step + schedule.steps[0] + depth + p + 1
            last_out = start + done_last * step + cycles + depth + p + 1
            out_positions = layer.pool.out_height * layer.pool.out_width
        banks = input_storage(unit_width, f.simd, layer.in_values.bits, mw, schedule.dense)
        frame_cycles = positions * max(unit_beats, cycles)
        window_bits = 0 if window is None else 2 * layer.in_elements * elem_bits
        layers.append(LayerPerf(
            name=layer.name, mh=mh, mw=mw, pe=f.pe, simd=f.simd, neuron_fold=nf,
            synapse_fold=sf, popcount_stages=p, in_beats=beats, in_width=width,
            out_width=out_width, engine=kind, in_bits=layer.in_values.bits,
            out_lane_bits=lane_bits,
            zero_weights=float(np.count_nonzero(layer.weights == 0)) / layer.weights.size,
            dense_cycles=nf * sf, cycles_per_frame=cycles,
            ii_cycles=max(beats, frame_cycles),
            start_cycle=start, first_out_cycle=first_out, last_out_cycle=last_out,
            weight_storage=weight_storage(cycles), input_storage=banks,
            weight_memory_bits=mh * mw * layer.weight_bits,
            estimated_luts=estimate_luts(layer, f.pe, f.simd, cycles, banks == "bram")
            + _window_luts(layer, width, elem_bits, f.pe * lane_bits),
            estimated_ffs=estimate_ffs(layer, f.pe, f.simd, p, cycles, banks == "bram",
                                       out_width) + _window_ffs(layer, width, f.pe * lane_bits)
            + (f.simd * (f.pe + 1) if f.operand_register else 0),
            positions=positions, window_beats=unit_beats, frame_cycles=frame_cycles,
            window_storage_bits=window_bits,
            pool=0 if layer.pool is None else layer.pool.kernel,
            out_beats=out_positions * nf,
        ))
        schedules.append(schedule)
        last_in, width, beats, elem_bits = last_out, out_width, out_positions * nf, lane_bits
    latency = last_in
    out_beats, out_width = beats, width
    if folding.label_select:
        latency += 1
        out_beats, out_width = 1, max(1, (net.layers[-1].out_features - 1).bit_length())
    return NetworkPerf(
        layers=tuple(layers),
        ii_cycles=max(layer.ii_cycles for layer in layers),
        latency_cycles=latency,
        in_beats=in_beats,
        in_width=in_width,
        in_bits=in_bits,
        out_beats=out_beats,
        out_width=out_width,
        estimated_luts=sum(layer.estimated_luts for layer in layers),
        estimated_ffs=sum(layer.estimated_ffs for layer in layers),
        label_select=folding.label_select,
        schedules=tuple(schedules),
    )


def _window_luts(layer: MatVec, in_width: int, elem_bits: int, pool_width: int) -> int:
    """Window generator (counters, stepped address registers, padding muxes) and max pool
    (a row of partial maxima in flip-flops or LUT RAM, comparators), in iCE40 LUT4s; fitted to
    ``synth_ice40 -noflatten`` of a four-convolution network (160–470 LUT4 per layer, within
    10 %)."""
    if layer.window is None:
        return 0
    w = layer.window
    counters = 6 * sum(max(1, (v - 1).bit_length()) for v in
                       (w.out_height, w.out_width, *w.kernel, w.height * w.width))
    pad = (in_width // elem_bits) * layer.in_values.bits if w.padded else 0
    pool = 0
    if layer.pool is not None:
        words = layer.pool.out_width * layer.out_features * layer.activation.out.bits
        pool = 40 + round(2.2 * words) + 2 * pool_width
    return 80 + counters + pad + pool


def _window_ffs(layer: MatVec, in_width: int, pool_width: int) -> int:
    """Window generator registers (frame banks live in block RAM) and the pool's row of partial
    maxima."""
    if layer.window is None:
        return 0
    pool = 0
    if layer.pool is not None:
        pool = layer.pool.out_width * layer.out_features * layer.activation.out.bits + pool_width
    return 48 + 2 * in_width + pool


def auto_folding(net: Network, *, lut_budget: int | None = None, target_fps: float | None = None,
                 clock_hz: float = 100e6, label_select: bool = False,
                 bram_budget: int | None = None, family: str = "ice40",
                 cell_budget: int | None = None) -> Folding:
    """Fastest folding within ``lut_budget`` (estimated LUTs) and ``bram_budget`` (block RAMs of
    ``family``), or the cheapest that reaches ``target_fps`` at ``clock_hz``. Greedy: unfold the
    bottleneck layer one step at a time (SIMD first, then PE), as long as the estimates stay
    within budget. On ECP5, XNOR layers fed from block RAM get an operand register."""
    check_supported(net)
    if lut_budget is None and target_fps is None:
        lut_budget = 5000
    state = [[1, 1] for _ in net.layers]

    def perf(s) -> NetworkPerf:
        return analyze(net, Folding(tuple(LayerFolding(layer.name, pe, simd)
                                          for layer, (pe, simd) in zip(net.layers, s))))

    current = perf(state)
    big = max(current.layers, key=lambda lp: lp.estimated_luts + lp.estimated_ffs)
    largest = (f"the largest layer is {big.name!r} (~{big.estimated_luts:,} LUT4, "
               f"~{big.estimated_ffs:,} FF)")
    if bram_budget is not None and network_bram_blocks(current, family) > bram_budget:
        bits = sum(lp.weight_memory_bits for lp in current.layers)
        raise FoldingError(
            f"design does not fit: its {bits:,} weight bits need ~"
            f"{network_bram_blocks(current, family)} block RAMs even fully folded, the device "
            f"has {bram_budget} to give; {largest}: choose a larger device")
    if cell_budget is not None and logic_cells(current) > cell_budget:
        raise FoldingError(
            f"design does not fit: even fully folded (PE = SIMD = 1) it needs an estimated "
            f"~{logic_cells(current):,} logic cells (LUTs + flip-flops), over the "
            f"{cell_budget:,} the device leaves; {largest}: choose a larger device")
    if lut_budget is not None and current.estimated_luts > lut_budget:
        raise FoldingError(
            f"even fully folded (PE = SIMD = 1) the design needs ~{current.estimated_luts:,} "
            f"LUT4, over the budget of {lut_budget:,}; {largest}: raise --lut-budget or "
            f"choose a larger device")
    while True:
        if target_fps is not None and clock_hz / current.ii_cycles >= target_fps:
            break
        # the layer that sets the II; when its input beats pace it, widen the previous
        # layer's output (PE) instead of unfolding it
        k = max(range(len(state)), key=lambda j: (current.layers[j].ii_cycles,
                                                   current.layers[j].compute_cycles))
        lp = current.layers[k]
        if lp.ii_cycles > lp.compute_cycles:
            if k == 0:
                break  # the input stream itself is the limit
            k -= 1
            pe, simd = state[k]
            options = [d for d in divisors(net.layers[k].out_features) if d > pe]
            if not options:
                break
            trial = (options[0], simd)
        else:
            layer = net.layers[k]
            pe, simd = state[k]
            options = [d for d in divisors(layer.in_features) if d > simd]
            if options:
                trial = (pe, options[0])
            else:
                options = [d for d in divisors(layer.out_features) if d > pe]
                if not options:
                    break
                trial = (options[0], simd)
        new = [list(s) for s in state]
        new[k] = list(trial)
        trial_perf = perf(new)
        if lut_budget is not None and trial_perf.estimated_luts > lut_budget:
            break
        if bram_budget is not None and network_bram_blocks(trial_perf, family) > bram_budget:
            break
        if cell_budget is not None and logic_cells(trial_perf) > cell_budget:
            break
        state, current = new, trial_perf
    # ECP5 block RAM outputs are slow (5.8 ns clock-to-output): register them once more
    slow = [family == "ecp5" and lp.engine == "xnor"
            and "bram" in (lp.weight_storage, lp.input_storage) for lp in current.layers]
    folding = Folding(tuple(LayerFolding(layer.name, pe, simd, operand_register=reg or None)
                            for layer, (pe, simd), reg in zip(net.layers, state, slow)),
                      label_select)
    validate_folding(net, folding)
    return folding
