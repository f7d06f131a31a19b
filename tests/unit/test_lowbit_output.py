"""lowbit.output: users' files are never replaced, deleted or written into by surprise."""

from __future__ import annotations

import os

import numpy as np
import pytest

from lowbit.errors import InputFileError
from lowbit.output import MANIFEST, OutputFolder, check_output_file, write_output_file


def test_an_output_file_goes_onto_a_new_path_or_a_regular_file(tmp_path):
    write_output_file(tmp_path / "y.npy", np.zeros(3))
    write_output_file(tmp_path / "y.npy", np.ones(3))  # the user's own output, rewritten
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), np.ones(3))
    assert (tmp_path / "y.npy").stat().st_mode & 0o044  # not mkstemp's 0600
    assert [p.name for p in tmp_path.iterdir()] == ["y.npy"]  # no temporary left behind


@pytest.mark.parametrize("make,needle", [
    (lambda p: p.mkdir(), "is a folder"),
    (lambda p: os.mkfifo(p), "not a regular file"),
])
def test_an_output_file_is_never_a_folder_or_a_pipe(tmp_path, make, needle):
    target = tmp_path / "out"
    make(target)
    with pytest.raises(InputFileError, match=needle):
        check_output_file(target)


def test_an_output_is_never_a_file_the_command_reads(tmp_path):
    x = tmp_path / "x.npy"
    x.write_bytes(b"mine")
    link = tmp_path / "link.npy"
    link.symlink_to(x)
    for target in (x, link, tmp_path / "." / "x.npy"):
        with pytest.raises(InputFileError, match="also an input"):
            write_output_file(target, np.zeros(1), reads=(x,))
    assert x.read_bytes() == b"mine"


def test_a_device_is_never_replaced():
    with pytest.raises(InputFileError, match="not a regular file"):
        check_output_file("/dev/null")


def test_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        check_output_file(tmp_path / "none" / "y.npy")


def test_a_folder_lowbit_did_not_write_is_refused_unless_forced(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "report.md").write_text("my notes")
    with pytest.raises(InputFileError, match="not empty and lowbit did not write it"):
        OutputFolder(out)
    folder = OutputFolder(out, force=True)
    folder.write("lowbit_top.v", "module m; endmodule\n")
    assert (out / "report.md").read_text() == "my notes"
    assert MANIFEST in os.listdir(out)
    OutputFolder(out).write("lowbit_top.v", "// again\n")  # lowbit's own file: rewritten
    with pytest.raises(InputFileError, match="holds report.md, which lowbit did not write"):
        OutputFolder(out).write("report.md", "x")
    assert (out / "report.md").read_text() == "my notes"


def test_a_folder_is_never_written_over_an_input(tmp_path):
    out = tmp_path / "o"
    folder = OutputFolder(out)
    folder.write("folding.json", "{}")
    with pytest.raises(InputFileError, match="an input of this command"):
        OutputFolder(out, reads=(out / "folding.json",)).check("folding.json")


def test_a_file_where_the_folder_should_be_is_refused(tmp_path):
    (tmp_path / "taken").write_text("mine")
    with pytest.raises(InputFileError, match="not a folder"):
        OutputFolder(tmp_path / "taken")
