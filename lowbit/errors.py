"""Errors a user can cause, all of them.

Every one carries a single line that names the ONNX node, the layer or the parameter at fault
and, where there is one, what to do about it. ``param`` names the API parameter the error is
about (``folding``, ``inputs``, ``out``, ``target``, ...); the message then starts with the
value the user gave, and the CLI puts its own flag in front (``--folding x.json: ...``), so
library code never spells a command-line flag. The CLI prints that line and exits with 2;
anything else that escapes is a lowbit bug and keeps its traceback.

This module imports nothing from lowbit: every package may raise these.
"""

__all__ = [
    "LowbitError",
    "ModelFileError",
    "UnsupportedError",
    "NotSupportedYet",
    "InputShapeError",
    "InputFileError",
    "FoldingError",
    "SimulationError",
    "DoesNotFit",
    "ToolError",
    "BoardLinkError",
    "MissingExtra",
]


class LowbitError(Exception):
    """Base of all user-facing errors; ``str(error)`` is the one line to show.

    Parameters
    ----------
    message : str
        Whitespace (newlines included) is collapsed: the text is always one line.
    param : str or None
        The API parameter at fault; ``str(error)`` is then ``"<param> <message>"``.
    """

    def __init__(self, message: str, *, param: str | None = None):
        self.message = " ".join(str(message).split())
        self.param = param
        super().__init__(self.message if param is None else f"{param} {self.message}")


class ModelFileError(LowbitError):
    """The model file is missing, unreadable, corrupt or not a valid ONNX graph."""


class UnsupportedError(LowbitError):
    """The model uses an operator, attribute or quantizer lowbit does not handle."""


class NotSupportedYet(UnsupportedError):
    """Recognized, but its datapath is not implemented yet."""


class InputShapeError(LowbitError):
    """Input data does not have the shape the model expects."""


class InputFileError(LowbitError):
    """An input or output file or folder given by the user cannot be used."""


class FoldingError(LowbitError):
    """A folding that does not fit the network (bad PE/SIMD, wrong layer names, bad JSON)."""


class SimulationError(LowbitError):
    """Verilator is missing, the build failed, or the design did not finish in time."""


class DoesNotFit(LowbitError):
    """The design needs more of a resource than the device has."""


class ToolError(LowbitError):
    """yosys, nextpnr or another tool failed for a reason other than size, or is missing."""


class BoardLinkError(LowbitError):
    """The serial port cannot be opened, or the board does not answer as the build says."""


class MissingExtra(LowbitError):
    """The call needs an optional dependency (torch, Brevitas) that is not installed."""

    def __init__(self, what: str, extra: str):
        super().__init__(f"{what} needs the '{extra}' extra, which is not installed: "
                         f"pip install -e '.[{extra}]' (or pip install 'lowbit[{extra}]')")
        self.extra = extra
