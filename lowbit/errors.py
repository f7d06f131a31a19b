"""Errors a user can cause.

Every one of them carries a single line that names the ONNX node, the layer or the parameter at
fault and, where there is one, what to do about it. The CLI prints that line and exits with 2;
anything else that escapes is a lowbit bug and keeps its traceback.
"""

__all__ = [
    "LowbitError",
    "ModelFileError",
    "UnsupportedError",
    "NotSupportedYet",
    "InputShapeError",
    "InputFileError",
]


class LowbitError(Exception):
    """Base of all user-facing errors; ``str(error)`` is the one line to show."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class ModelFileError(LowbitError):
    """The model file is missing, unreadable, corrupt or not a valid ONNX graph."""


class UnsupportedError(LowbitError):
    """The model uses an operator, attribute or quantizer lowbit does not handle."""


class NotSupportedYet(UnsupportedError):
    """Recognized, but its datapath is not implemented yet."""


class InputShapeError(LowbitError):
    """Input data does not have the shape the model expects."""


class InputFileError(LowbitError):
    """An input or output data file given on the command line cannot be used."""
