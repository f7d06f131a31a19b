"""The cycle model: exact cycles per layer and for the network, composed from the units' facts.

This module is the specification of the RTL's timing; the measured RTL numbers must equal it.
Conventions: cycle 0 is the clock cycle in which the first input beat of a frame is accepted;
``latency_cycles`` is the cycle in which the last output beat of that frame is delivered, with the
input offered every cycle and the output always ready. ``ii_cycles`` is the steady-state distance
between the last output beats of consecutive frames.

Every number below is a fact one unit states about itself (:mod:`lowbit.hw`):

- a unit's input banks (:class:`~lowbit.hw.banks.InputBanks`) can be read ``READ_DELAY`` cycles
  after the last beat of a frame (or window) was written;
- a unit issues one step per cycle and walks its schedule (:mod:`lowbit.hw.schedule`): neuron
  fold ``nf`` takes ``steps[nf]`` steps (``SF`` without zeros to skip); output beat ``nf`` leaves
  ``D + P`` cycles after the last step of its neuron fold, ``D`` the unit's pipeline depth
  (:meth:`MVTU.pipeline_depth <lowbit.hw.mvtu.MVTU.pipeline_depth>`: 1, 2 with an operand
  register; :attr:`MVAU.PIPELINE_DEPTH <lowbit.hw.mvau.MVAU.PIPELINE_DEPTH>`: 2) and ``P`` its
  tree stages;
- two input banks let the next frame arrive during the computation, so a dense layer's
  initiation interval is ``max(IB, T)`` with ``IB`` input beats and ``T`` steps per frame;
- a convolution's window generator (:class:`~lowbit.hw.window.WindowGenerator`) sends the first
  window beat of a frame ``FIRST_BEAT_DELAY`` cycles after the frame's last beat, then window
  beats back to back, held while the unit's banks are full. With ``IB`` beats and ``T`` steps
  per window, window ``k`` starts at ``s0 + IB + k·max(IB, T)``;
- a max-pool stage (:class:`~lowbit.hw.pool.MaxPoolUnit`) emits a pooled beat ``LATENCY``
  cycle after the unit's beat that completes it; a label-select stage
  (:class:`~lowbit.hw.label_select.LabelSelect`) its index ``LATENCY`` cycle after the last
  beat.

FIFOs between layers: none are needed, and the depths are derived, not searched: every unit's
second input bank takes the next frame (or window) while the current one is worked on, and a
unit whose output waits freezes without losing state. In a chain this cannot deadlock, and
back-pressure only slows the faster layers to the bottleneck's pace, so the network's II is the
largest layer II and every FIFO depth is 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from lowbit.hw.banks import InputBanks
from lowbit.hw.label_select import LabelSelect
from lowbit.hw.mvau import MVAU
from lowbit.hw.mvtu import MVTU
from lowbit.hw.plan import LayerPlan, NetworkPlan
from lowbit.hw.pool import MaxPoolUnit
from lowbit.hw.window import WindowGenerator

__all__ = ["LayerTiming", "NetworkTiming", "pipeline_depth", "layer_timing", "network_timing"]


@dataclass(frozen=True)
class LayerTiming:
    """Cycles of frame 0 through one layer (cycle 0: the network's first input beat)."""

    start_cycle: int  # first compute step
    first_out_cycle: int
    last_out_cycle: int
    ii_cycles: int  # max(input beats, frame_cycles)
    frame_cycles: int  # cycles per frame when this layer paces: positions × max(beats, steps)


@dataclass(frozen=True)
class NetworkTiming:
    layers: tuple[LayerTiming, ...]
    ii_cycles: int
    latency_cycles: int


def pipeline_depth(lp: LayerPlan) -> int:
    """``D`` of the layer's unit."""
    if lp.engine == "xnor":
        return MVTU.pipeline_depth(lp.operand_register)
    return MVAU.PIPELINE_DEPTH


def layer_timing(lp: LayerPlan, last_in: int) -> LayerTiming:
    """The layer's timing when its input frame's last beat arrives in cycle ``last_in``."""
    steps = lp.schedule.steps
    cycles = lp.schedule.cycles
    tail = pipeline_depth(lp) + lp.tree_stages  # from a neuron fold's last step to its beat
    positions = lp.positions
    if lp.layer.window is None:
        start = last_in + InputBanks.READ_DELAY
        step = 0
    else:
        first_beat = last_in + WindowGenerator.FIRST_BEAT_DELAY  # window 0 enters the unit
        start = first_beat + lp.window_beats - 1 + InputBanks.READ_DELAY
        step = max(lp.window_beats, cycles)  # window k starts k·step later
    first_out = start + steps[0] + tail
    last_out = start + (positions - 1) * step + cycles + tail
    pool = lp.layer.pool
    if pool is not None:
        ow = lp.layer.window.out_width
        k = pool.kernel
        done_first = (k - 1) * ow + (k - 1)  # the window position completing pooled pixel 0
        done_last = (pool.out_height * k - 1) * ow + pool.out_width * k - 1
        first_out = start + done_first * step + steps[0] + tail + MaxPoolUnit.LATENCY
        last_out = start + done_last * step + cycles + tail + MaxPoolUnit.LATENCY
    frame_cycles = positions * max(lp.window_beats, cycles)
    return LayerTiming(start_cycle=start, first_out_cycle=first_out, last_out_cycle=last_out,
                       ii_cycles=max(lp.in_beats, frame_cycles), frame_cycles=frame_cycles)


def network_timing(plan: NetworkPlan) -> NetworkTiming:
    """Every layer's timing, frame 0 streamed in one beat per cycle from cycle 0."""
    last_in = plan.in_beats - 1  # cycle of the last input beat of frame 0
    layers = []
    for lp in plan.layers:
        t = layer_timing(lp, last_in)
        layers.append(t)
        last_in = t.last_out_cycle
    latency = last_in + (LabelSelect.LATENCY if plan.label_select else 0)
    return NetworkTiming(tuple(layers), max(t.ii_cycles for t in layers), latency)
