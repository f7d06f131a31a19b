"""lowbit.export.tools: a tool's output logged, its steps and elapsed time reported, its
failures one line."""

from __future__ import annotations

import pytest
from lowbit.export.tools import elapsed, run_tool

from lowbit.errors import ToolError

STEPS = ("echo '2.3. Executing PROC_CLEAN pass (remove empty switches).'; sleep 1.3; "
         "echo 'Info: Routing..'; echo 'Info:     at iteration #1'; sleep 1.3; echo done")


class Recorder:
    def __init__(self):
        self.lines, self.ticks = [], []

    def __call__(self, message):
        self.lines.append(message)

    def tick(self, message):
        self.ticks.append(message)


def test_steps_and_elapsed_time_are_reported_while_the_tool_runs(tmp_path):
    progress = Recorder()
    run_tool(["sh", "-c", STEPS], tmp_path, "place and route", log="tool.log",
             progress=progress, interval=1.0)
    assert "place and route: yosys proc_clean (0 s)" in progress.ticks
    assert any(t.startswith("place and route: Routing (") for t in progress.ticks)
    assert any(t.endswith(" s)") and "(0 s)" not in t for t in progress.ticks)  # periodic
    assert (tmp_path / "tool.log").read_text().splitlines()[-1] == "done"


def test_a_failing_tool_is_one_line_with_its_error_and_the_log(tmp_path):
    with pytest.raises(ToolError) as info:
        run_tool(["sh", "-c", "echo 'ERROR: no cells'; exit 3"], tmp_path, "yosys",
                 log="yosys.log")
    assert str(info.value) == f"yosys failed: ERROR: no cells (log: {tmp_path / 'yosys.log'})"


def test_a_missing_tool_and_a_tool_past_its_time_are_one_line_errors(tmp_path):
    with pytest.raises(ToolError, match="no-such-tool is not installed"):
        run_tool(["no-such-tool"], tmp_path, "x", log="x.log")
    with pytest.raises(ToolError, match="ran longer than 1 s; stopped"):
        run_tool(["sleep", "30"], tmp_path, "sleeper", log="s.log", timeout=1)


def test_elapsed_reads_as_minutes_and_seconds():
    assert (elapsed(42.7), elapsed(725)) == ("42 s", "12 min 05 s")
