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
    from lowbit.export.synth import SynthTop, yosys_stat
    from lowbit.export.verilog import convert

    work.mkdir(parents=True, exist_ok=True)
    (work / "synth_top.v").write_text(convert(SynthTop(design.plan, design.family),
                                              "synth_top"))
    start = time.perf_counter()
    cells = yosys_stat(work, "synth_top.v", "synth_top", design.family)["synth_top"]
    return cells, round(time.perf_counter() - start, 1)


def best_of(fn, repeat: int = 5) -> float:
    """Fastest wall time of ``repeat`` calls, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def auto_designs(models: list[str], work: Path, make=None):
    """The designs the estimate benchmarks compare with yosys: each model at its ``auto``
    foldings (CNV_1W1A within 20,000 LUT4; the others within 5,000 LUT4 on both families and,
    unless its name starts with ``conv``, for an UP5K). The built-in model and the TFC models
    are found here, any other through ``make(name, work) -> path``. Yields ``(row, design)``:
    the row names model, folding and family; a design that does not fit is None, with the
    one-line reason in ``row["does_not_fit"]``."""
    import lowbit

    for name in models:
        if name == "digits_bnn":
            path = lowbit.BUILT_IN_MODEL
        elif name.startswith("TFC"):
            path = require(SHARED / "models" / "tfc" / f"{name}.onnx")
        else:
            path = make(name, work)
        net = lowbit.load(path)
        options = ([("auto, 20,000 LUT4", {"lut_budget": 20000})] if name == "CNV_1W1A" else
                   [("auto, 5,000 LUT4", {})] if name.startswith("conv") else
                   [("auto, 5,000 LUT4", {}), ("auto, ice40-up5k", {"target": "ice40-up5k"})])
        for label, kwargs in options:
            for family in ("ice40", "ecp5"):
                if "target" in kwargs and family == "ecp5":
                    continue
                row = {"model": name, "folding": label, "family": family}
                try:
                    design = lowbit.compile(net, family=family, **kwargs)
                except lowbit.LowbitError as exc:
                    yield {**row, "does_not_fit": str(exc)}, None
                    continue
                yield {**row, "pe_simd": [(f.pe, f.simd) for f in design.folding.layers]}, design
