"""Small helpers shared by the scenario tests, all through lowbit's public API."""

from __future__ import annotations

import subprocess
import sys

from lowbit.sim.perf import analyze

import lowbit


def run_rtl(net, folding, x, *, family: str = "ice40", **options):
    """Frames through the Verilated design: ``(outputs, accumulators or class indices,
    RtlResult, NetworkPerf)``; ``options`` go to :meth:`lowbit.Design.simulate`."""
    design = lowbit.Design(net, folding, analyze(net, folding), family)
    sim = design.simulate(x, **options)
    return sim.outputs, sim.ints, sim.rtl, design.perf


def lowbit_cli(*args, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m lowbit ARGS`` as a user runs it; output captured."""
    return subprocess.run([sys.executable, "-m", "lowbit", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)


def assert_user_error(proc: subprocess.CompletedProcess, *needles: str):
    """One line on stderr, ``lowbit: error: …`` holding every needle, exit code 2."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("lowbit: error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


def cell_bits(m, ports, cell: str = "dff") -> int:
    """Bits of an Amaranth module's ``$<cell>`` cells in its RTLIL: the flip-flop bits for
    ``dff``, the result bits for ``add``."""
    import re

    from amaranth.back import rtlil

    text = rtlil.convert(m, ports=ports)
    pattern = rf"cell \${cell} \S+\n(.*?)\n\s+end"
    total = 0
    for body in re.findall(pattern, text, re.S):
        width = re.search(r"parameter \\(?:Y_)?WIDTH (\d+)", body)
        total += int(width.group(1))
    return total
