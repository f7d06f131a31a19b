"""The performance model of a design: the plan, its exact cycles and its resource estimates.

:func:`analyze` is the one place the three are put together: it takes the network and a
folding, builds the plan (:func:`lowbit.hw.plan.plan_network`), composes the cycle model from it
(:mod:`lowbit.sim.timing`, the RTL's specification) and adds the estimates
(:mod:`lowbit.sim.estimate`). Everything else (Verilog, synthesis, reports, boards) takes the
:class:`NetworkPerf` it returns; nothing recomputes it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from lowbit.hw.plan import Folding, NetworkPlan, plan_network, zero_fraction
from lowbit.hw.pool import MaxPoolUnit
from lowbit.hw.window import WindowGenerator
from lowbit.sw.ir import Network

from . import estimate
from .timing import network_timing

__all__ = ["LayerPerf", "NetworkPerf", "analyze"]


@dataclass(frozen=True)
class LayerPerf:
    """One layer's folding, cycles (frame 0, cycle 0 = the first input beat) and estimates."""

    name: str
    mh: int
    mw: int
    pe: int
    simd: int
    neuron_fold: int
    synapse_fold: int
    tree_stages: int
    in_beats: int
    in_width: int
    out_width: int
    engine: str  # lowbit.hw.engines.ENGINES
    in_bits: int  # bits per input element (a level index)
    out_lane_bits: int  # bits per output lane: a level index, or a signed accumulator
    zero_weights: float  # fraction of the weights that are 0
    dense_steps: int  # NF·SF: compute steps per window position without zero skipping
    schedule_steps: int  # compute steps of the schedule per window position (per frame for a
    # dense layer); == dense_steps unless zeros are skipped
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
    window_storage_bits: int = 0  # the window generator's two frame banks, or its line buffer
    line_buffer: bool = False  # the window generator keeps rows (a ring), not frames
    pool_storage_bits: int = 0  # the max pool's row of partial maxima
    bank_storage_bits: int = 0  # the unit's two input banks (a window each for a convolution)
    pool: int = 0  # max-pool kernel after the thresholds (0: none)
    out_beats: int = 0  # output beats per frame
    planes_per_cycle: int | None = None  # the bit-plane engine's input planes per cycle

    @property
    def buffer_bits(self) -> int:
        """Bits of every buffer of the layer: frame banks, pool row, the unit's input banks."""
        return self.window_storage_bits + self.pool_storage_bits + self.bank_storage_bits

    @property
    def compute_cycles(self) -> int:
        """Compute steps per frame (all window positions), the layer's beats aside."""
        return self.positions * self.schedule_steps


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
    plan: NetworkPlan | None = field(default=None, repr=False, compare=False)

    @property
    def buffer_bits(self) -> int:
        """Bits of every buffer in the design (:attr:`LayerPerf.buffer_bits`, summed)."""
        return sum(lp.buffer_bits for lp in self.layers)

    @property
    def logic_cells(self) -> int:
        """iCE40 logic cells the design needs, about: yosys and nextpnr pack few of lowbit's
        flip-flops (bank shift registers, RAM-fed registers) with a LUT, so cells ≈ LUTs +
        FFs."""
        return self.estimated_luts + self.estimated_ffs

    def bram_blocks(self, family: str = "ice40") -> int:
        """Block RAMs of ``family`` the design takes (see
        :func:`lowbit.sim.estimate.layer_bram_blocks`)."""
        return sum(estimate.layer_bram_blocks(lp, family) for lp in self.plan.layers)

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


def analyze(net: Network, folding: Folding, family: str = "ice40",
            exact: bool = True) -> NetworkPerf:
    """The plan, exact cycle model and estimates (LUT4 and flip-flops on ``family``) of ``net``
    under ``folding``; ``exact=False``: cycles as lower bounds where line buffers couple the
    layers (:func:`~lowbit.sim.timing.network_timing`)."""
    plan = plan_network(net, folding)
    timing = network_timing(plan, exact)
    layers = []
    for lp, t in zip(plan.layers, timing.layers):
        layer = lp.layer
        pool_bits = 0
        if layer.pool is not None:
            pool_bits = MaxPoolUnit.partial_bits(layer.pool.out_width, layer.out_features,
                                                 lp.lane_bits)
        layers.append(LayerPerf(
            name=layer.name, mh=layer.out_features, mw=layer.in_features, pe=lp.pe,
            simd=lp.simd, neuron_fold=lp.neuron_fold, synapse_fold=lp.synapse_fold,
            tree_stages=lp.tree_stages, in_beats=lp.in_beats, in_width=lp.in_width,
            out_width=lp.out_width, engine=lp.engine, in_bits=layer.in_values.bits,
            out_lane_bits=lp.lane_bits, zero_weights=zero_fraction(layer),
            dense_steps=lp.neuron_fold * lp.synapse_fold, schedule_steps=lp.schedule.cycles,
            ii_cycles=t.ii_cycles, start_cycle=t.start_cycle,
            first_out_cycle=t.first_out_cycle, last_out_cycle=t.last_out_cycle,
            weight_storage=lp.weight_storage, input_storage=lp.input_storage,
            weight_memory_bits=layer.weight_memory_bits,
            estimated_luts=estimate.layer_luts(lp, family),
            estimated_ffs=estimate.layer_ffs(lp, family),
            positions=lp.positions, window_beats=lp.window_beats, frame_cycles=t.frame_cycles,
            planes_per_cycle=lp.folding.planes_per_cycle if lp.engine == "bitplane" else None,
            window_storage_bits=(0 if layer.window is None
                                 else WindowGenerator.bank_bits(layer.window, lp.in_elem_bits,
                                                                lp.line_buffer)),
            pool_storage_bits=pool_bits,
            bank_storage_bits=(sum(d * w for d, w in lp.bank_shapes)
                               or 2 * layer.in_features * layer.in_values.bits),
            pool=0 if layer.pool is None else layer.pool.kernel, line_buffer=lp.line_buffer,
            out_beats=lp.out_beats,
        ))
    return NetworkPerf(
        layers=tuple(layers),
        ii_cycles=timing.ii_cycles,
        latency_cycles=timing.latency_cycles,
        in_beats=plan.in_beats,
        in_width=plan.in_width,
        in_bits=plan.in_bits,
        out_beats=plan.out_beats,
        out_width=plan.out_width,
        estimated_luts=sum(lp.estimated_luts for lp in layers),
        estimated_ffs=sum(lp.estimated_ffs for lp in layers),
        label_select=folding.label_select,
        plan=plan,
    )
