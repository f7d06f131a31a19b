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

- line buffers (the convolutions from the input on, ``plan.layers[k].line_buffer``): the ring's
  floor moves when the generator reads the last beat of a row of windows (and of the frame),
  its words free :attr:`~lowbit.hw.window.WindowGenerator.FLOOR_DELAY` cycles after. The
  host's input beat ``n`` (counted over frames) is taken once the floor is past word ``n − C``
  (``C`` the ring's words); a generator reads a window that produces a pixel for the next
  layer once that layer's floor leaves room for the pixel
  (:meth:`~lowbit.hw.window.WindowGenerator.producing`). So the units never stall on their
  output, and every time is still a max-plus expression, now coupled in both directions along
  the chain: :func:`line_timing` solves it by iterating from "no back-pressure" until nothing
  moves (the least fixed point, which the RTL's causal order reaches), over enough frames that
  the distance between frames repeats; that distance is the chain's II.

FIFOs between layers: none are needed, and the depths are derived, not searched: every unit's
second input bank takes the next frame (or window) while the current one is worked on, and a
unit whose output waits freezes without losing state. In a chain this cannot deadlock, and
back-pressure only slows the faster layers to the bottleneck's pace, so the network's II is the
largest layer II (or the line-buffered chain's) and every FIFO depth is 0.
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

__all__ = ["LayerTiming", "NetworkTiming", "pipeline_depth", "layer_timing", "network_timing",
           "line_timing"]

NEVER = -(1 << 62)  # a constraint that never binds


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


def _out_beats(lp: LayerPlan, starts: np.ndarray) -> np.ndarray:
    """Cycles of the layer's output beats (stream order, frame after frame) when window (or
    frame) ``k`` starts computing in cycle ``starts[k]``; nothing downstream stalls."""
    tail = pipeline_depth(lp) + lp.tree_stages  # from a neuron fold's last step to its beat
    done = np.cumsum(lp.schedule.steps) + tail  # beat nf leaves done[nf] after the first step
    beats = starts[:, None] + done[None, :]  # (positions, neuron folds)
    pool = lp.layer.pool
    if pool is not None:  # a pooled pixel leaves after the position that completes it
        frames = len(starts) // lp.positions
        last = np.flatnonzero(WindowGenerator.producing(lp.layer.window.out_height,
                                                        lp.layer.window.out_width, pool.kernel))
        beats = beats.reshape(frames, lp.positions, -1)[:, last] + MaxPoolUnit.LATENCY
    return beats.ravel()


def _timing(lp: LayerPlan, starts: np.ndarray, out: np.ndarray) -> LayerTiming:
    frame_cycles = lp.positions * max(lp.window_beats, lp.schedule.cycles)
    return LayerTiming(start_cycle=int(starts[0]), first_out_cycle=int(out[0]),
                       last_out_cycle=int(out[lp.out_beats - 1]),
                       ii_cycles=max(lp.in_beats, frame_cycles), frame_cycles=frame_cycles)


def layer_timing(lp: LayerPlan, arrivals: np.ndarray) -> tuple[LayerTiming, np.ndarray]:
    """The layer's timing when its input beat ``n`` of frame 0 arrives in cycle
    ``arrivals[n]``, and the cycles of its output beats of frame 0 (in stream order)."""
    if lp.layer.window is None:
        starts = np.array([int(arrivals[-1]) + InputBanks.READ_DELAY])
    else:
        starts, _ = window_starts(lp, arrivals)
    out = _out_beats(lp, starts)
    return _timing(lp, starts, out), out


def _floor_times(events: tuple[np.ndarray, np.ndarray] | None, values: np.ndarray) -> np.ndarray:
    """First cycle in which a line buffer's floor (``events``: cycles from which it holds, and
    its values then, counted over frames) is at least each of ``values``. The floor reaches
    the end of the last frame, so a value it never reaches is a ring too small to make
    progress: an error, not a number."""
    if events is None:
        return np.full(len(values), NEVER, dtype=np.int64)
    times, floors = events
    idx = np.searchsorted(floors, values, side="left")
    if np.any((idx >= len(times)) & (values > 0)):
        raise RuntimeError("a line buffer waits for room it never gets (ring too small)")
    out = times[np.minimum(idx, len(times) - 1)]
    return np.where(values <= 0, NEVER, out)


def window_starts(lp: LayerPlan, arrivals: np.ndarray, credit: np.ndarray | None = None):
    """Cycle of the first compute step of each window, over the frames ``arrivals`` covers
    (the layer's input beat ``n``, counted over frames, written in cycle ``arrivals[n]``;
    nothing downstream stalls the unit), and the floor events of a line-buffer ring: ``(cycles
    from which the floor holds, its values over frames)``. ``credit[k]``: the cycle from which
    window ``k`` may be read (room for its pixel in the next ring), or None."""
    w = lp.layer.window
    pixel_words = w.channels * lp.in_elem_bits // lp.in_width
    need = WindowGenerator.need_words(w, pixel_words)
    floors = WindowGenerator.row_floors(w, pixel_words)
    frame = w.height * w.width * pixel_words
    positions, ow = len(need), w.out_width
    frames = len(arrivals) // frame
    wb, cycles = lp.window_beats, lp.schedule.cycles
    starts = np.empty(frames * positions, dtype=np.int64)
    ev_t, ev_v = [], []
    taken = -1  # cycle the previous window's last beat entered the unit
    arr = arrivals.tolist()
    for g in range(frames * positions):
        f, k = divmod(g, positions)
        here = arr[f * frame + int(need[k]) - 1] + 1  # its words are written
        issue = max(taken, here)  # its first beat leaves the generator's read port
        if credit is not None:
            issue = max(issue, int(credit[g]))
        enter = issue + WindowGenerator.FIRST_BEAT_DELAY - 1
        if g >= 2:  # the unit's bank of window g − 2 is free after its last step
            enter = max(enter, int(starts[g - 2]) + cycles)
        taken = enter + wb - 1
        start = taken + InputBanks.READ_DELAY
        if g >= 1:
            start = max(start, int(starts[g - 1]) + cycles)
        starts[g] = start
        if k % ow == ow - 1:  # the row's last beat read: the floor moves FLOOR_DELAY after
            row = k // ow
            ev_t.append((issue if wb == 1 else taken - 1) + WindowGenerator.FLOOR_DELAY)
            ev_v.append(f * frame + (int(floors[row + 1]) if row + 1 < len(floors) else frame))
    return starts, (np.array(ev_t, dtype=np.int64), np.array(ev_v, dtype=np.int64))


def line_timing(plan: NetworkPlan, frames: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Window starts and output beat cycles of each line-buffered layer (the chain from the
    input) over ``frames`` frames streamed in from cycle 0: ``[(starts, out)]``."""
    chain = [lp for lp in plan.layers if lp.line_buffer]
    rings = [lp.ring_words for lp in chain]
    host = np.arange(frames * plan.in_beats, dtype=np.int64)
    events = [None] * len(chain)
    for _ in range(1000):  # each round moves some floor event later, or it is the last
        # the host's beat n is taken once the first ring's floor passes n − C
        room = _floor_times(events[0], host - rings[0] + 1)
        arrivals = np.maximum.accumulate(np.maximum(room, host) - host) + host
        found, result = [], []
        for i, lp in enumerate(chain):
            credit = None
            if i + 1 < len(chain):
                nxt = chain[i + 1]
                pw = nxt.layer.window.channels * nxt.in_elem_bits // nxt.in_width
                pool = lp.reserve[0]
                producing = np.tile(WindowGenerator.producing(lp.layer.window.out_height,
                                                              lp.layer.window.out_width, pool),
                                    frames)
                pixel = np.cumsum(producing) - 1  # the pixel (over frames) a window produces
                credit = np.where(producing,
                                  _floor_times(events[i + 1], (pixel + 1) * pw - rings[i + 1]),
                                  NEVER)
            starts, ev = window_starts(lp, arrivals, credit)
            found.append(ev)
            arrivals = _out_beats(lp, starts)
            result.append((starts, arrivals))
        if all(old is not None and np.array_equal(old[0], new[0])
               for old, new in zip(events, found)):
            return result
        events = found
    raise RuntimeError("the line-buffer timing did not settle")


def network_timing(plan: NetworkPlan, exact: bool = True) -> NetworkTiming:
    """Every layer's timing, frame 0 streamed in one beat per cycle from cycle 0. With
    ``exact=False`` the line-buffered chain is taken without its back-pressure: lower bounds
    (every cycle no later, the II the largest layer II), a hundred times faster on CNV, for
    searches that only rank foldings."""
    layers, chain_ii = [], 0
    arrivals = np.arange(plan.in_beats)  # cycle of each input beat of frame 0
    chain = sum(lp.line_buffer for lp in plan.layers) if exact else 0
    if chain:  # enough frames that the distance between the chain's frames repeats
        frames = 4
        while True:
            result = line_timing(plan, frames)
            out_beats = plan.layers[chain - 1].out_beats
            ends = result[-1][1][out_beats - 1::out_beats]
            gaps = np.diff(ends)
            if gaps[-1] == gaps[-2] or frames >= 32:
                break
            frames *= 2
        chain_ii = int(gaps[-1])
        for lp, (starts, out) in zip(plan.layers, result):
            layers.append(_timing(lp, starts, out))
        arrivals = result[-1][1][:out_beats]
    for lp in plan.layers[chain:]:
        t, arrivals = layer_timing(lp, arrivals)
        layers.append(t)
    latency = int(arrivals[-1]) + (LabelSelect.LATENCY if plan.label_select else 0)
    ii = max([chain_ii] + [t.ii_cycles for t in layers[chain:]])
    return NetworkTiming(tuple(layers), ii, latency)
