"""Running the EDA tools (YoWASP yosys, nextpnr, the packers) with progress a person can follow.

A place and route can take most of an hour. :func:`run_tool` streams the tool's output into a
log file as it comes, follows which step the tool is in (yosys's ``Executing … pass`` lines,
nextpnr's top-level ``Info:`` lines) and reports it with the elapsed time through
``progress``: on each new step, and every ``interval`` seconds in between. A ``progress``
object with a ``tick`` method gets the periodic reports there (a terminal can redraw one line);
a plain callable gets them as lines, less often.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections import deque
from pathlib import Path

from lowbit.errors import ToolError

__all__ = ["run_tool", "first_run_notice", "elapsed", "YOWASP_CACHE"]

YOWASP_CACHE = Path(os.environ.get("YOWASP_CACHE_DIR", Path.home() / ".cache" / "YoWASP"))
_YOSYS_STEP = re.compile(r"^\s*\d+(?:\.\d+)*\. Executing (\S+) pass")
_NEXTPNR_STEP = re.compile(r"^Info: ([A-Z][a-z]+.*?)\.*\s*$")
_NEXTPNR_STEPS = ("Packing", "Running", "Placing", "Routing", "Setting", "Legalis", "Checksum",
                  "Program", "Detailed", "Critical", "Max frequency", "Promoting", "Constraining")


def elapsed(seconds: float) -> str:
    """``42 s`` or ``12 min 05 s``."""
    seconds = int(seconds)
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


def first_run_notice(progress) -> None:
    """Say through ``progress`` that the first YoWASP run compiles WebAssembly (no cache yet)."""
    if progress and not YOWASP_CACHE.exists():
        progress("first run of the YoWASP tools: compiling WebAssembly (about a minute)")


def _step_of(line: str) -> str | None:
    found = _YOSYS_STEP.match(line)
    if found:
        return f"yosys {found.group(1).lower()}"
    found = _NEXTPNR_STEP.match(line)
    if found and found.group(1).startswith(_NEXTPNR_STEPS):
        return found.group(1)[:70]
    return None


def run_tool(cmd: list[str], cwd: Path, what: str, *, log: str, progress=None,
             env: dict | None = None, timeout: float = 3 * 3600,
             interval: float = 20.0) -> None:
    """Run ``cmd`` in ``cwd``, its output going to ``cwd/log``.

    Raises :class:`~lowbit.errors.ToolError` (one line, the tool's error lines) when the tool is
    missing, fails or runs past ``timeout`` seconds."""
    exe = shutil.which(cmd[0], path=(env or os.environ).get("PATH"))
    if exe is None:
        raise ToolError(f"{cmd[0]} is not installed (it comes with lowbit's install: "
                        f"pip install -e .)")
    start = time.monotonic()
    tail: deque[str] = deque(maxlen=50)
    errors: list[str] = []
    state = {"step": what}
    tick = getattr(progress, "tick", None)
    log_path = Path(cwd) / log

    def report(message: str, periodic: bool) -> None:
        if progress is None:
            return
        if periodic and tick is not None:
            tick(message)
        else:
            progress(message)

    with open(log_path, "w") as sink:
        proc = subprocess.Popen([exe, *cmd[1:]], cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")

        def read() -> None:
            for line in proc.stdout:
                sink.write(line)
                tail.append(line)
                if ("ERROR" in line or "Error" in line) and len(errors) < 20:
                    errors.append(line)
                step = _step_of(line)
                if step is not None and step != state["step"]:
                    state["step"] = step
                    if tick is not None:
                        tick(f"{what}: {step} ({elapsed(time.monotonic() - start)})")

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        every = interval if tick is not None else max(interval, 60.0)
        next_report = every
        try:
            while reader.is_alive():
                reader.join(timeout=0.5)
                spent = time.monotonic() - start
                if spent > timeout:
                    proc.kill()
                    raise ToolError(f"{what} ran longer than {elapsed(timeout)}; stopped (log: "
                                    f"{log_path})")
                if spent >= next_report:
                    report(f"{what}: {state['step']} ({elapsed(spent)})", periodic=True)
                    next_report += every
        except BaseException:
            proc.kill()
            raise
        finally:
            proc.wait()
    if proc.returncode != 0:
        shown = [ln.strip() for ln in errors] or [ln.strip() for ln in list(tail)[-3:]]
        error = ToolError(f"{what} failed: {' | '.join(shown[:3])} (log: {log_path})")
        error.log = "".join(errors + list(tail))
        raise error
