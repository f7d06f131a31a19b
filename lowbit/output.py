"""Where lowbit writes: the one place output files are made, and the rules that keep users' files.

- A single output file (``run --out``, ``train -o``) goes only onto a new path or a regular file
  lowbit wrote there before (a record in the user's cache says which: the path, its inode, size
  and modification time), never onto a folder, a device or a FIFO, never onto a file the same
  command reads (the model, the inputs, the folding, the data set), and onto any other existing
  file only with ``force``.
- An output folder (``compile -o``, ``synth -o``, ``build -o``, ``demo -o``) must be new, empty,
  or one lowbit wrote before: lowbit keeps a manifest (:data:`MANIFEST`) of every file it wrote
  there, and refuses a non-empty folder without one unless ``force``. It never replaces a file
  it did not write, nor one the command reads.
- Every write goes to a temporary file beside the target first and is then renamed, so a file is
  never left half-written.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

import numpy as np

from lowbit.errors import InputFileError

__all__ = ["MANIFEST", "OutputFolder", "check_output_file", "write_output_file",
           "write_atomic"]

MANIFEST = ".lowbit-manifest.json"
FORCE = "force it (force=True; --force on the command line)"


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _reads(reads) -> list[Path]:
    return [Path(p) for p in reads if p is not None and str(p) != ""]


def write_atomic(path: Path, content: str | bytes | np.ndarray) -> None:
    """Write text, bytes or an array (as .npy) beside ``path``, then rename it into place."""
    try:
        _write_atomic(path, content)
    except OSError as exc:
        raise InputFileError(f"{path}: cannot be written ({exc.strerror or exc})") from None


def _write_atomic(path: Path, content: str | bytes | np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w" if isinstance(content, str) else "wb") as f:
            if isinstance(content, np.ndarray):
                np.save(f, content)
            else:
                f.write(content)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a normal file is what users expect
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


WRITTEN = Path(os.environ.get("LOWBIT_CACHE", Path.home() / ".cache" / "lowbit")) / \
    "written.json"
WRITTEN_MAX = 2000  # records kept


def _stamp(path: Path) -> list:
    st = path.stat()
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def _written() -> dict:
    try:
        data = json.loads(WRITTEN.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def wrote_it(path: Path) -> bool:
    """lowbit wrote the file at ``path`` and nothing has changed it since."""
    record = _written().get(str(path.resolve()))
    try:
        return record == _stamp(path)
    except OSError:
        return False


def _remember(path: Path) -> None:
    records = _written()
    records.pop(str(path.resolve()), None)
    records[str(path.resolve())] = _stamp(path)
    records = dict(list(records.items())[-WRITTEN_MAX:])
    try:
        WRITTEN.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(WRITTEN, json.dumps(records))
    except OSError:  # no cache: the file is written; a later run asks for force to replace it
        pass


def check_output_file(path, *, param: str = "out", reads=(), force: bool = False) -> Path:
    """Refuse an output file that is not a new path or a regular file, that sits in a missing
    folder, that is one of the files the command reads, or that exists and lowbit did not write
    (unless ``force``)."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            raise InputFileError(f"{path}: cannot be used ({exc.strerror})", param=param) \
                from None
        if stat.S_ISDIR(mode):
            raise InputFileError(f"{path}: is a folder; give a file name", param=param)
        if not stat.S_ISREG(mode):
            raise InputFileError(f"{path}: is not a regular file (a device or a pipe); lowbit "
                                 f"writes only new or regular files", param=param)
    for read in _reads(reads):
        if _same(path, read) or path.resolve() == read.resolve():
            raise InputFileError(f"{path}: is also an input of this command ({read}); refusing "
                                 f"to overwrite it", param=param)
    if not path.parent.is_dir():
        raise InputFileError(f"{path}: folder {path.parent} does not exist", param=param)
    if not os.access(path.parent, os.W_OK):
        raise InputFileError(f"{path}: folder {path.parent} is not writable", param=param)
    if path.is_file() and not force and not wrote_it(path):
        raise InputFileError(f"{path}: exists and lowbit did not write it; choose a new name "
                             f"or {FORCE}", param=param)
    return path


def write_output_file(path, content, *, param: str = "out", reads=(),
                      force: bool = False) -> Path:
    """Check ``path`` (:func:`check_output_file`) and write ``content`` there atomically."""
    path = check_output_file(path, param=param, reads=reads, force=force)
    write_atomic(path, content)
    _remember(path)
    return path


class OutputFolder:
    """A folder lowbit writes its artefacts into, with a manifest of what it wrote.

    Parameters
    ----------
    path : path-like
    force : bool
        Use a non-empty folder lowbit did not write (files lowbit does not write stay as they
        are; files it writes are replaced).
    reads : paths
        Files the command reads; never written over.
    param : str
        The API parameter the folder came from (for error messages).
    """

    def __init__(self, path, *, force: bool = False, reads=(), param: str = "out"):
        self.path = Path(path)
        self.force, self.param = force, param
        self.reads = _reads(reads)
        self._mine: set[str] = set()
        p = self.path
        if p.exists() and not p.is_dir():
            raise InputFileError(f"{p}: exists and is not a folder", param=param)
        if p.is_dir():
            manifest = p / MANIFEST
            if manifest.is_file():
                try:
                    self._mine = set(json.loads(manifest.read_text()).get("files", []))
                except (OSError, ValueError, AttributeError):
                    raise InputFileError(f"{p}: its {MANIFEST} is damaged; remove it or choose "
                                         f"another folder", param=param) from None
            elif any(p.iterdir()) and not force:
                raise InputFileError(f"{p}: is not empty and lowbit did not write it; choose a "
                                     f"new folder or {FORCE}", param=param)
        elif not p.parent.is_dir():
            raise InputFileError(f"{p}: folder {p.parent} does not exist", param=param)

    def _target(self, name: str) -> Path:
        target = self.path / name
        for read in self.reads:
            if _same(target, read) or target.resolve() == read.resolve():
                raise InputFileError(f"{self.path}: would overwrite {read}, an input of this "
                                     f"command; choose another folder", param=self.param)
        if target.exists() and name not in self._mine and not self.force:
            raise InputFileError(f"{self.path}: holds {name}, which lowbit did not write; "
                                 f"choose another folder or {FORCE}", param=self.param)
        if target.exists() and not target.is_file():
            raise InputFileError(f"{target}: is not a regular file", param=self.param)
        return target

    def check(self, *names: str) -> OutputFolder:
        """Refuse now, before any work, if any of ``names`` could not be written."""
        for name in names:
            self._target(name)
        return self

    def write(self, name: str, content: str | bytes | np.ndarray) -> Path:
        """Write one artefact (atomically) and record it in the manifest."""
        self.path.mkdir(parents=True, exist_ok=True)
        target = self._target(name)
        write_atomic(target, content)
        self._record({name})
        return target

    def write_json(self, name: str, data) -> Path:
        return self.write(name, json.dumps(data, indent=2) + "\n")

    def subfolder(self, name: str) -> Path:
        """A folder for a tool's own files (yosys, nextpnr, the board build); it must be new or
        lowbit's. What the tool leaves there is recorded by :meth:`adopt`."""
        folder = self.path / name
        if folder.exists() and not folder.is_dir():
            raise InputFileError(f"{folder}: exists and is not a folder", param=self.param)
        if folder.is_dir() and any(folder.iterdir()) and not self.force and not any(
                f == name or f.startswith(name + "/") for f in self._mine):
            raise InputFileError(f"{folder}: is not empty and lowbit did not write it; choose "
                                 f"another folder or {FORCE}", param=self.param)
        folder.mkdir(parents=True, exist_ok=True)
        self._record({name + "/"})
        return folder

    def adopt_since(self, started: float) -> None:
        """Record every file in the folder written since ``started`` (``time.time()``): what a
        tool left there is lowbit's."""
        names = {str(p.relative_to(self.path)) for p in self.path.rglob("*")
                 if p.is_file() and p.name != MANIFEST and p.stat().st_mtime >= started - 1}
        self._record(names)

    def _record(self, names: set[str]) -> None:
        if names <= self._mine:
            return
        self._mine |= names
        self.path.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path / MANIFEST,
                     json.dumps({"written_by": "lowbit", "files": sorted(self._mine)}, indent=1)
                     + "\n")
