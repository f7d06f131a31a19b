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

FIFOs between layers: none are needed. Each unit's second input bank holds a whole frame, and a
unit whose output waits freezes without losing state, so back-pressure only slows the faster
layers to the bottleneck's pace; the depths reported are 0.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lowbit.hw.mvtu import accumulator_bits as acc_bits
from lowbit.hw.weights import weight_storage
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
]


class FoldingError(LowbitError):
    """A folding that does not fit the network (bad PE/SIMD, wrong layer names, bad JSON)."""


@dataclass(frozen=True)
class LayerFolding:
    """PE (output channels per cycle), SIMD (input lanes per cycle), popcount pipeline stages."""

    name: str
    pe: int
    simd: int
    popcount_stages: int | None = None  # None: default_popcount_stages(simd)


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
    cycles_per_frame: int  # NF·SF compute steps
    ii_cycles: int
    start_cycle: int  # first compute step of frame 0
    first_out_cycle: int
    last_out_cycle: int
    weight_storage: str  # "constants", "lut" or "bram" (lowbit.hw.weights)
    weight_memory_bits: int
    estimated_luts: int
    fifo_depth: int = 0


@dataclass(frozen=True)
class NetworkPerf:
    layers: tuple[LayerPerf, ...]
    ii_cycles: int
    latency_cycles: int
    in_beats: int
    in_width: int
    out_beats: int
    out_width: int
    estimated_luts: int
    label_select: bool = False
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict:
        return {
            "ii_cycles": self.ii_cycles,
            "latency_cycles": self.latency_cycles,
            "in_beats": self.in_beats,
            "in_width": self.in_width,
            "out_beats": self.out_beats,
            "out_width": self.out_width,
            "estimated_luts": self.estimated_luts,
            "label_select": self.label_select,
            "layers": [asdict(layer) for layer in self.layers],
        }


def check_supported(net: Network) -> None:
    """Refuse what the hardware does not implement yet, naming the layer."""
    if not net.input.out.bipolar:
        raise NotSupportedYet(
            f"input quantizer {net.input.name!r}: {net.input.out.describe()} inputs are not "
            f"supported in hardware yet (bipolar only)"
        )
    for layer in net.layers:
        if layer.weight_kind is not WeightKind.BINARY or not layer.in_values.bipolar:
            raise NotSupportedYet(
                f"layer {layer.name!r}: {layer.weight_kind.value} weights on "
                f"{layer.in_values.describe()} inputs are not supported in hardware yet"
            )
        act = layer.activation
        if act is not None and not act.out.bipolar:
            raise NotSupportedYet(
                f"layer {layer.name!r}: {act.out.describe()} activations are not supported in "
                f"hardware yet (bipolar only)"
            )


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def default_popcount_stages(simd: int) -> int:
    """One register in the popcount tree per 32 lanes, at most 3: keeps fmax for wide SIMD."""
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
        unknown = set(entry) - {"name", "pe", "simd", "popcount_stages"}
        if unknown:
            raise FoldingError(f"--folding {path}: layers[{k}] has unknown keys {sorted(unknown)}")
        try:
            layers.append(LayerFolding(
                name=str(entry.get("name", net.layers[k].name if k < len(net.layers) else k)),
                pe=_int(entry, "pe"), simd=_int(entry, "simd"),
                popcount_stages=(None if entry.get("popcount_stages") is None
                                 else _int(entry, "popcount_stages")),
            ))
        except (TypeError, ValueError):
            raise FoldingError(f"--folding {path}: layers[{k}]: pe, simd and popcount_stages "
                               f"must be whole numbers") from None
    folding = Folding(tuple(layers), bool(data.get("label_select", False)))
    validate_folding(net, folding)
    return folding


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
        stages = _stages(f)
        from lowbit.hw.popcount import popcount_levels

        if not 0 <= stages <= popcount_levels(f.simd):
            raise FoldingError(f"layer {layer.name!r}: popcount_stages={stages} must be "
                               f"0..{popcount_levels(f.simd)} for simd={f.simd}")
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


def _stages(f: LayerFolding) -> int:
    return default_popcount_stages(f.simd) if f.popcount_stages is None else f.popcount_stages


# block RAM geometry: (bits per block, widest port, depth at the widest port)
BRAM = {"ice40": (4096, 16, 256), "ecp5": (18432, 36, 512)}


def bram_blocks(depth: int, width: int, family: str = "ice40") -> int:
    """Blocks a ROM of ``depth`` words × ``width`` bits takes (0 unless stored in block RAM)."""
    if weight_storage(depth) != "bram":
        return 0
    bits, widest, shallow = BRAM[family]
    rows = max(shallow, 1 << (depth - 1).bit_length())
    port = max(1, min(widest, bits // rows))
    return -(-width // port) * -(-rows * port // bits)


def estimate_luts(layer: MatVec, pe: int, simd: int) -> int:
    """A first resource estimate for one binary MVTU in iCE40 LUT4s.

    XNOR + popcount per synapse from bench/popcount_luts.py at SIMD 64: 1.6 LUT4 when the weights
    are constants or a two-word LUT ROM (the XNOR merges into the first adder level), 2.3 from
    block RAM; plus accumulator, threshold compare, the input bank read multiplexer and control.
    Not yet calibrated against whole-design synthesis.
    """
    mh, mw = layer.out_features, layer.in_features
    nf, sf = mh // pe, mw // simd
    fused = weight_storage(nf * sf) != "bram"
    count = mw.bit_length()
    per_pe = simd * (1.6 if fused else 2.3) + 2 * count + (0 if nf == 1 else count)
    read_mux = 0 if sf == 1 else simd * min(2 * sf, 64) // 3
    control = 12 + 2 * (math.ceil(math.log2(max(nf * sf, 2))))
    return int(round(pe * per_pe + read_mux + control))


def analyze(net: Network, folding: Folding) -> NetworkPerf:
    """The exact cycle model of ``net`` under ``folding``."""
    validate_folding(net, folding)
    layers = []
    in_width = folding.layers[0].simd
    in_beats = net.layers[0].in_features // in_width
    last_in = in_beats - 1  # cycle of the last input beat of frame 0
    width, beats = in_width, in_beats
    for layer, f in zip(net.layers, folding.layers):
        mh, mw = layer.out_features, layer.in_features
        nf, sf = mh // f.pe, mw // f.simd
        p = _stages(f)
        start = last_in + 1
        first_out = start + sf + 1 + p
        last_out = start + nf * sf + 1 + p
        out_width = f.pe if layer.activation is not None else f.pe * acc_bits(mw)
        layers.append(LayerPerf(
            name=layer.name, mh=mh, mw=mw, pe=f.pe, simd=f.simd, neuron_fold=nf,
            synapse_fold=sf, popcount_stages=p, in_beats=beats, in_width=width,
            out_width=out_width, cycles_per_frame=nf * sf, ii_cycles=max(beats, nf * sf),
            start_cycle=start, first_out_cycle=first_out, last_out_cycle=last_out,
            weight_storage=weight_storage(nf * sf),
            weight_memory_bits=mh * mw, estimated_luts=estimate_luts(layer, f.pe, f.simd),
        ))
        last_in, width, beats = last_out, out_width, nf
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
        out_beats=out_beats,
        out_width=out_width,
        estimated_luts=sum(layer.estimated_luts for layer in layers),
        label_select=folding.label_select,
    )


def auto_folding(net: Network, *, lut_budget: int | None = None, target_fps: float | None = None,
                 clock_hz: float = 100e6, label_select: bool = False,
                 bram_budget: int | None = None, family: str = "ice40") -> Folding:
    """Fastest folding within ``lut_budget`` (estimated LUTs) and ``bram_budget`` (block RAMs of
    ``family``), or the cheapest that reaches ``target_fps`` at ``clock_hz``. Greedy: unfold the
    bottleneck layer one step at a time (SIMD first, then PE), as long as the estimates stay
    within budget."""
    check_supported(net)
    if lut_budget is None and target_fps is None:
        lut_budget = 5000
    state = [[1, 1] for _ in net.layers]

    def cost(s):
        return sum(estimate_luts(layer, pe, simd) for layer, (pe, simd) in zip(net.layers, s))

    def blocks(s):
        total = 0
        for layer, (pe, simd) in zip(net.layers, s):
            depth = (layer.out_features // pe) * (layer.in_features // simd)
            total += bram_blocks(depth, pe * simd, family)
        return total

    def cycles(k, s):
        layer = net.layers[k]
        return (layer.out_features // s[k][0]) * (layer.in_features // s[k][1])

    def ii(s):
        first = net.layers[0].in_features // s[0][1]
        return max([first] + [cycles(k, s) for k in range(len(s))])

    while True:
        if target_fps is not None and clock_hz / ii(state) >= target_fps:
            break
        k = max(range(len(state)), key=lambda j: cycles(j, state))
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
        if lut_budget is not None and cost(new) > lut_budget:
            break
        if bram_budget is not None and blocks(new) > bram_budget:
            break
        state = new
    folding = Folding(tuple(LayerFolding(layer.name, pe, simd)
                            for layer, (pe, simd) in zip(net.layers, state)), label_select)
    validate_folding(net, folding)
    return folding
