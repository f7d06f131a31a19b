"""A design: a network with a folding, and everything made from it.

:class:`Design` holds the network, its folding and its performance model (plan, cycles,
estimates) and makes the artefacts: Verilog, RTL runs (:class:`Simulation`), synthesis runs
(:class:`Synthesis`), bitstreams and reports. Create one with :func:`lowbit.compile`.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lowbit.errors import LowbitError, ToolError
from lowbit.hw.plan import Folding, NetworkPlan
from lowbit.sim.perf import NetworkPerf
from lowbit.sw.ir import Network

from . import report
from .output import OutputFolder

__all__ = ["Design", "Simulation", "Synthesis", "ARTEFACTS", "number"]

ARTEFACTS = ("lowbit_top.v", "folding.json", "report.json", "report.md", "report.html")


def number(value, param: str, *, integer: bool = False, minimum: float = 0.0,
            inclusive: bool = False):
    """A user's number, checked: finite, above ``minimum`` (or at it, when ``inclusive``)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise LowbitError(f"{value!r}: must be a number", param=param)
    if not math.isfinite(value) or (value < minimum if inclusive else value <= minimum):
        bound = f"at least {minimum:g}" if inclusive else f"greater than {minimum:g}"
        raise LowbitError(f"{value!r}: must be a finite number {bound}", param=param)
    if integer and value != int(value):
        raise LowbitError(f"{value!r}: must be a whole number", param=param)
    return int(value) if integer else float(value)


@dataclass
class Simulation:
    """Frames through the Verilated design, beside the reference and the cycle model."""

    outputs: np.ndarray | None  # the model's float outputs (None with label select)
    ints: np.ndarray  # accumulators (N, MH), or class indices (N,) with label select
    reference: np.ndarray  # the reference's outputs for the same frames
    ii_cycles: int | None  # measured (None with fewer than 3 frames)
    latency_cycles: int  # measured: first input beat to last output beat of frame 0
    model_ii_cycles: int
    model_latency_cycles: int
    rtl: object = field(repr=False)  # lowbit.sim.rtl.RtlResult
    stalled: bool = False  # random stalls on either side: cycles are not the model's

    @property
    def outputs_equal(self) -> bool:
        """The RTL's answer is the reference's, bit for bit (the argmax with label select)."""
        if self.outputs is None:
            return bool(np.array_equal(self.ints, self.reference.argmax(-1)))
        return bool(np.array_equal(self.outputs, self.reference))

    @property
    def cycles_equal(self) -> bool | None:
        """Measured II (when measurable) and latency equal the cycle model; None under random
        stalls (the model states cycles with the input offered and the output ready)."""
        if self.stalled:
            return None
        return (self.ii_cycles in (None, self.model_ii_cycles)
                and self.latency_cycles == self.model_latency_cycles)


@dataclass
class Synthesis:
    """A synthesis run: the tools' counts, beside the design's figures."""

    result: object  # lowbit.export.synth.SynthResult
    perf: NetworkPerf = field(repr=False)
    folding: Folding = field(repr=False)

    @property
    def frames_per_s(self) -> float | None:
        fmax = self.result.fmax_mhz
        return round(fmax * 1e6 / self.perf.ii_cycles, 1) if fmax else None

    @property
    def latency_us(self) -> float | None:
        fmax = self.result.fmax_mhz
        return round(self.perf.latency_cycles / fmax, 3) if fmax else None

    def to_json(self) -> dict:
        """``synth.json``."""
        summary = {**self.result.to_json(), "ii_cycles": self.perf.ii_cycles,
                   "latency_cycles": self.perf.latency_cycles,
                   "estimated_luts": self.perf.estimated_luts,
                   "folding": self.folding.to_json()}
        if self.result.fmax_mhz:
            summary["frames_per_s"] = self.frames_per_s
            summary["latency_us"] = self.latency_us
        return summary


@dataclass(eq=False)
class Design:
    """A network with a folding: its plan, cycle model and estimates, and everything made from
    them (Verilog, RTL runs, synthesis, bitstreams, reports).

    Attributes
    ----------
    net : lowbit.sw.ir.Network
    folding : lowbit.hw.plan.Folding
    perf : lowbit.sim.perf.NetworkPerf
        The cycle model (II, latency, per-layer cycles) and the resource estimates.
    family : str
        ``ice40`` or ``ecp5``: the popcount structure the hardware is built with.
    clock_mhz : float
        The clock assumed for frames/s (and constrained in synthesis).
    target : lowbit.export.targets.Target or None
    """

    net: Network
    folding: Folding
    perf: NetworkPerf
    family: str = "ice40"
    clock_mhz: float = 100.0
    target: object = None

    @property
    def plan(self) -> NetworkPlan:
        return self.perf.plan

    @functools.cached_property
    def verilog(self) -> str:
        """The Verilog of the design (module ``lowbit_top``), byte-identical for the same model
        and folding."""
        from lowbit.export.verilog import generate

        start = time.perf_counter()
        text = generate(self.perf, self.family)
        self._verilog_seconds = time.perf_counter() - start
        return text

    @property
    def estimate(self) -> dict:
        """lowbit's resource estimate: LUT4, flip-flops, iCE40 logic cells, block RAMs."""
        return {"luts": self.perf.estimated_luts, "ffs": self.perf.estimated_ffs,
                "logic_cells": self.perf.logic_cells,
                "bram_blocks": self.perf.bram_blocks(self.family)}

    @property
    def frames_per_s(self) -> float:
        """Frames per second at :attr:`clock_mhz`."""
        return self.clock_mhz * 1e6 / self.perf.ii_cycles

    def component(self):
        """The design as an Amaranth ``wiring.Component`` (:class:`lowbit.hw.network.NetworkTop`)
        with ``amaranth.lib.stream`` ports ``i`` (``plan.in_width`` bits: input beats as
        :meth:`input_beats` makes them) and ``o`` (output beats), to embed in a larger design."""
        from lowbit.hw.network import NetworkTop

        return NetworkTop(self.plan, self.family)

    def input_beats(self, x) -> np.ndarray:
        """Frames ``(N, *input_shape)`` as the input stream's beats ``(N, in_beats, bytes)``."""
        from lowbit.sim.host import input_beats

        return input_beats(self.net, self.perf, x)

    def decode(self, beats: np.ndarray):
        """Output beats ``(N·out_beats, bytes)`` → ``(outputs or None, accumulators or class
        indices)``."""
        from lowbit.sim.host import decode_outputs

        return decode_outputs(self.net, self.perf, beats)

    # -- running ---------------------------------------------------------------------------------

    def run(self, x, engine: str = "reference", *, progress=None) -> np.ndarray:
        """The model's outputs for ``x``, from the reference or the Verilated RTL."""
        if engine == "reference":
            from lowbit.sw import reference

            return reference.run(self.net, x)
        if engine != "rtl":
            raise LowbitError(f"{engine}: unknown engine (reference or rtl)", param="engine")
        if self.folding.label_select:
            raise LowbitError("rtl returns the model's outputs; drop label_select from the "
                              "folding", param="engine")
        return self.simulate(x, progress=progress).outputs

    def simulate(self, x, *, stall_in: float = 0.0, stall_out: float = 0.0, seed: int = 1,
                 bench: str = "cpp", progress=None) -> Simulation:
        """Stream ``x`` through the Verilated design (``bench`` ``cpp``, or ``cocotb`` for the
        verification bench), with random stalls on either side; returns outputs, measured
        cycles and the reference beside them."""
        from lowbit.sim import rtl
        from lowbit.sw.reference import check_input

        for name, p in (("stall_in", stall_in), ("stall_out", stall_out)):
            if not 0.0 <= number(p, name, inclusive=True) < 1.0:
                raise LowbitError(f"{p}: must be a probability below 1", param=name)
        x = check_input(self.net, x)
        if progress and "verilog" not in self.__dict__:
            progress("generating Verilog")
        verilog = self.verilog
        beats = self.input_beats(x)
        result = rtl.simulate(verilog, beats, len(x) * self.perf.out_beats,
                              in_width=self.perf.in_width, out_width=self.perf.out_width,
                              stall_in=stall_in, stall_out=stall_out, seed=seed, bench=bench,
                              progress=progress)
        y, ints = self.decode(result.outputs)
        from lowbit.sw import reference

        return Simulation(
            outputs=y, ints=ints, reference=reference.run(self.net, x),
            ii_cycles=result.ii_cycles(self.perf.out_beats),
            latency_cycles=result.latency_cycles(self.perf.in_beats, self.perf.out_beats),
            model_ii_cycles=self.perf.ii_cycles, model_latency_cycles=self.perf.latency_cycles,
            rtl=result, stalled=bool(stall_in or stall_out))

    # -- artefacts -------------------------------------------------------------------------------

    def report_json(self) -> dict:
        return {
            "model": str(self.net.source),
            "family": self.family,
            "clock_mhz_assumed": self.clock_mhz,
            "frames_per_s_at_clock": self.frames_per_s,
            **self.perf.to_json(),
        }

    def html(self, *, synth: dict | None = None, rtl: dict | None = None,
             extra: tuple = ()) -> str:
        """``report.html`` for this design."""
        clock = (synth or {}).get("fmax_mhz") or self.clock_mhz
        return report.html_page(self.net, self.perf, clock_mhz=clock, synth=synth, rtl=rtl,
                                extra=extra)

    def _repr_html_(self) -> str:
        p = self.perf
        return (f"<p><b>lowbit design</b>: {len(self.net.layers)} layers, {self.family}, II "
                f"{p.ii_cycles:,} cycles ({self.frames_per_s:,.0f} frames/s at "
                f"{self.clock_mhz:g} MHz), latency {p.latency_cycles:,} cycles, ~"
                f"{p.estimated_luts:,} LUT4 estimated</p>" + report.layer_table_html(p))

    def __repr__(self) -> str:
        return (f"<lowbit.Design {Path(str(self.net.source)).name}: {len(self.net.layers)} "
                f"layers, II {self.perf.ii_cycles} cycles, latency {self.perf.latency_cycles}, "
                f"~{self.perf.estimated_luts:,} LUT4, {self.family}>")

    def write(self, out, *, force: bool = False, reads=(), progress=None) -> list[Path]:
        """Write ``lowbit_top.v``, ``folding.json``, ``report.json``, ``report.md`` and
        ``report.html`` into the folder ``out``; returns their paths."""
        folder = OutputFolder(out, force=force, reads=reads).check(*ARTEFACTS)
        if progress and "verilog" not in self.__dict__:
            progress(f"generating Verilog for {len(self.net.layers)} layers")
        verilog = self.verilog
        data = self.report_json()
        data["verilog_seconds"] = round(getattr(self, "_verilog_seconds", 0.0), 3)
        paths = [folder.write("lowbit_top.v", verilog),
                 folder.write_json("folding.json", self.folding.to_json()),
                 folder.write_json("report.json", data),
                 folder.write("report.md", report.report_markdown(self.net, self.perf,
                                                                  self.clock_mhz)),
                 folder.write("report.html", self.html())]
        return paths

    def synthesize(self, target=None, out=None, *, progress=None, force: bool = False,
                   reads=()) -> Synthesis:
        """yosys (and nextpnr for an FPGA) on the design for ``target`` (default: the design's
        own). With ``out``, the tools' files, ``synth.json`` and ``report.html`` go there."""
        from lowbit.export.synth import synthesize
        from lowbit.export.targets import target as find_target

        t = target if target is not None and not isinstance(target, str) else (
            find_target(target) if target is not None else self.target)
        if t is None:
            raise LowbitError("none given and the design has none: name a device such as "
                              "ice40-up5k", param="target")
        folder = (OutputFolder(out, force=force, reads=reads).check("synth.json", "report.html")
                  if out is not None else None)
        started = time.time()
        result = synthesize(self.perf, t.name, out=None if folder is None else folder.path,
                            clock_mhz=self.clock_mhz, family=self.family, progress=progress)
        synthesis = Synthesis(result, self.perf, self.folding)
        if folder is not None:
            folder.adopt_since(started)
            folder.write_json("synth.json", synthesis.to_json())
            if result.fmax_mhz:
                folder.write("report.html", self.html(synth=synthesis.to_json()))
        return synthesis

    def build(self, board: str, out, *, baud: int = 115200, progress=None, force: bool = False,
              reads=()):
        """A bitstream for ``board`` (``icebreaker`` or ``ulx3s-85f``): the design behind a
        UART, in the folder ``out`` with ``build.json`` and ``folding.json``."""
        from lowbit.boards.build import build_bitstream, uart_divisor

        uart_divisor(board, number(baud, "baud", integer=True))
        folder = OutputFolder(out, force=force, reads=reads).check("build.json", "folding.json")
        started = time.time()
        result = build_bitstream(self.perf, board, folder.path, baud=baud, progress=progress)
        folder.adopt_since(started)
        folder.write_json("folding.json", self.folding.to_json())
        folder.write_json("build.json", result.to_json())
        if not result.timing_met:
            raise ToolError(f"timing not met on {board}: fmax {result.fmax_mhz} MHz < "
                            f"{result.clock_mhz:g} MHz clock; fold the widest layer more")
        return result
