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
- a convolution's window generator (:class:`~lowbit.hw.window.WindowGenerator`) reads window
  ``k`` once the input words it needs are written (``need_words``): its first beat enters the
  unit ``FIRST_BEAT_DELAY`` cycles after the last of them was written, and not before the
  previous window's beats are in and the unit has a free bank (two banks: window ``k − 2``'s
  last step issued). Its beats follow one per cycle. The unit starts window ``k`` when its last
  beat was written (``READ_DELAY``) and window ``k − 1``'s ``T`` steps are done. This is a
  max-plus recurrence over the windows, driven by the upstream layer's output beat times, so a
  layer starts on its first complete window rather than on its input frame's end;
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

import numpy as np
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


def window_starts(lp: LayerPlan, arrivals: np.ndarray) -> np.ndarray:
    """Cycle of the first compute step of each window of frame 0, when the layer's input beat
    ``n`` is written in cycle ``arrivals[n]`` (nothing downstream stalls in frame 0)."""
    w = lp.layer.window
    need = WindowGenerator.need_words(w, w.channels * lp.in_elem_bits // lp.in_width)
    wb, cycles = lp.window_beats, lp.schedule.cycles
    starts = np.empty(len(need), dtype=np.int64)
    taken = -1  # cycle the previous window's last beat entered the unit
    for k, n in enumerate(need):
        here = int(arrivals[n - 1]) + 1 if n > 0 else 0  # its words are written
        issue = max(taken, here)  # its first beat leaves the generator's read port
        enter = issue + WindowGenerator.FIRST_BEAT_DELAY - 1
        if k >= 2:  # the unit's bank of window k − 2 is free after its last step
            enter = max(enter, int(starts[k - 2]) + cycles)
        taken = enter + wb - 1
        starts[k] = taken + InputBanks.READ_DELAY
        if k >= 1:
            starts[k] = max(starts[k], starts[k - 1] + cycles)
    return starts


def layer_timing(lp: LayerPlan, arrivals: np.ndarray) -> tuple[LayerTiming, np.ndarray]:
    """The layer's timing when its input beat ``n`` of frame 0 arrives in cycle
    ``arrivals[n]``, and the cycles of its output beats of frame 0 (in stream order)."""
    tail = pipeline_depth(lp) + lp.tree_stages  # from a neuron fold's last step to its beat
    done = np.cumsum(lp.schedule.steps) + tail  # beat nf leaves done[nf] after the first step
    if lp.layer.window is None:
        starts = np.array([int(arrivals[-1]) + InputBanks.READ_DELAY])
    else:
        starts = window_starts(lp, arrivals)
    beats = starts[:, None] + done[None, :]  # (positions, neuron folds)
    pool = lp.layer.pool
    if pool is not None:  # a pooled pixel leaves after the position that completes it
        ow, k = lp.layer.window.out_width, pool.kernel
        py, px = np.meshgrid(np.arange(pool.out_height), np.arange(pool.out_width),
                             indexing="ij")
        last = ((py * k + k - 1) * ow + px * k + k - 1).ravel()
        beats = beats[last] + MaxPoolUnit.LATENCY
    out = beats.ravel()
    frame_cycles = lp.positions * max(lp.window_beats, lp.schedule.cycles)
    timing = LayerTiming(start_cycle=int(starts[0]), first_out_cycle=int(out[0]),
                         last_out_cycle=int(out[-1]),
                         ii_cycles=max(lp.in_beats, frame_cycles), frame_cycles=frame_cycles)
    return timing, out


def network_timing(plan: NetworkPlan) -> NetworkTiming:
    """Every layer's timing, frame 0 streamed in one beat per cycle from cycle 0."""
    arrivals = np.arange(plan.in_beats)  # cycle of each input beat of frame 0
    layers = []
    for lp in plan.layers:
        t, arrivals = layer_timing(lp, arrivals)
        layers.append(t)
    latency = int(arrivals[-1]) + (LabelSelect.LATENCY if plan.label_select else 0)
    return NetworkTiming(tuple(layers), max(t.ii_cycles for t in layers), latency)
