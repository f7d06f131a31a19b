"""lowbit's Python API: load a model, compile it to a design, run, simulate, synthesize, build.

::

    import lowbit

    net = lowbit.load("model.onnx")                  # the exact integer IR
    design = lowbit.compile(net, target="ice40-up5k") # auto folding within the device
    y = design.run(x)                                 # the bit-exact reference
    sim = design.simulate(x)                          # Verilator: outputs and measured cycles
    assert sim.outputs_equal and sim.cycles_equal
    design.write("out")                               # Verilog, folding, reports
    result = design.synthesize(out="synth")           # yosys + nextpnr

The command line (:mod:`lowbit.cli`) is a thin shell over these calls. Every error a user can
cause is a :class:`lowbit.errors.LowbitError` with a one-line message.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from lowbit.errors import (
    BoardLinkError,
    InputFileError,
    LowbitError,
    MissingExtra,
)
from lowbit.hw.plan import Folding
from lowbit.sim.perf import analyze
from lowbit.sw.ir import Network

from .design import Design, number
from .output import write_output_file

__all__ = ["load", "from_torch", "run", "choose_folding", "compile", "BoardBuild",
           "open_board", "train", "Trained", "load_inputs"]


# -- models ---------------------------------------------------------------------------------------


def load(model) -> Network:
    """Import an ONNX/QONNX model (a path or an ``onnx.ModelProto``) into the exact integer IR."""
    from lowbit.sw.onnx_import import import_model

    if isinstance(model, Network):
        return model
    return import_model(model if isinstance(model, onnx.ModelProto) else os.fspath(model))


def from_torch(module, example_input, *, dynamo: bool = False, path=None) -> Network:
    """Export a Brevitas or plain torch module (QONNX through Brevitas where it has quantized
    layers, plain ONNX otherwise) and import it through the same importer as a file.

    ``dynamo`` picks torch's dynamo exporter (Gemm/Reshape) over TorchScript's
    (Transpose + MatMul/Flatten); ``path`` keeps the exported file (else a temporary one)."""
    try:
        import torch
    except ImportError:
        raise MissingExtra("lowbit.from_torch", "torch") from None
    import tempfile

    folder = None
    if path is None:
        folder = tempfile.TemporaryDirectory(prefix="lowbit-torch-")
        path = Path(folder.name) / "model.onnx"
    path = Path(path)
    x = example_input if isinstance(example_input, torch.Tensor) else torch.tensor(
        np.asarray(example_input, dtype=np.float32))
    module = module.eval()
    brevitas_layers = any(type(m).__module__.startswith("brevitas") for m in module.modules())
    try:
        if brevitas_layers:
            try:
                from brevitas.export import export_qonnx
            except ImportError:
                raise MissingExtra("a Brevitas module", "brevitas") from None
            export_qonnx(module, args=x, export_path=str(path), dynamo=dynamo)
        else:
            torch.onnx.export(module, (x,), str(path), dynamo=dynamo,
                              input_names=["x"], output_names=["y"])
        return load(path)
    finally:
        if folder is not None:
            folder.cleanup()


def run(net: Network, x) -> np.ndarray:
    """The bit-exact reference: what the ONNX model outputs for ``x`` ``(N, *input_shape)``."""
    from lowbit.sw import reference

    return reference.run(net, x)


def load_inputs(path) -> np.ndarray:
    """An input batch from a ``.npy`` file (one array, no pickles)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such file", param="inputs")
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise InputFileError(f"{path}: not a .npy array ({type(exc).__name__})",
                             param="inputs") from None
    if not isinstance(x, np.ndarray):
        raise InputFileError(f"{path}: holds several arrays; give one .npy array",
                             param="inputs")
    return x


# -- folding and compile --------------------------------------------------------------------------


def choose_folding(net: Network, folding="auto", *, target=None, lut_budget=None, fps=None,
                   clock_mhz: float = 100.0, label_select: bool = False,
                   family: str | None = None, reserve_bram: int = 0) -> Folding:
    """The folding for ``net``: ``"auto"`` (the fastest within ``lut_budget`` or the target's
    means, or the cheapest reaching ``fps`` frames/s at ``clock_mhz``), a :class:`Folding`, a
    dict in the form of ``folding.json``, or the path of such a file."""
    from lowbit.export.targets import target as find_target
    from lowbit.sim.auto import auto_folding
    from lowbit.sim.folding import load_folding, parse_folding

    lut_budget = number(lut_budget, "lut_budget", integer=True)
    fps = number(fps, "fps")
    clock_mhz = number(clock_mhz, "clock_mhz")
    t = find_target(target) if isinstance(target, str) else target
    family = family or (t.hw_family if t is not None else "ice40")
    if isinstance(folding, Folding):
        chosen = folding
    elif isinstance(folding, dict):
        chosen = parse_folding(folding, net)
    elif folding is None or folding == "auto":
        budgets = (t.budgets(lut_budget, fps, reserve_bram) if t is not None
                   else {"lut_budget": lut_budget})
        return auto_folding(net, target_fps=fps, clock_hz=clock_mhz * 1e6,
                            label_select=label_select, family=family, **budgets)
    else:
        chosen = load_folding(folding, net)
    if label_select and not chosen.label_select:
        chosen = dataclasses.replace(chosen, label_select=True)
    from lowbit.hw.plan import validate_folding

    validate_folding(net, chosen)
    return chosen


def compile(net, folding="auto", target=None, lut_budget=None, fps=None, *,
            clock_mhz: float | None = None, label_select: bool = False,
            family: str | None = None, reserve_bram: int = 0) -> Design:
    """A :class:`Design`: ``net`` (a Network, or a model path) with a folding, its cycle model
    and estimates. ``target`` (e.g. ``"ice40-up5k"``) sets the family and what ``auto`` may use
    (less ``reserve_bram`` block RAMs for logic beside the network); without one, ``auto`` takes
    the fastest folding within ``lut_budget`` (default 5,000 estimated LUT4, or the fully folded
    design when that is larger)."""
    from lowbit.export.targets import target as find_target

    net = load(net)
    t = find_target(target) if isinstance(target, str) else target
    if clock_mhz is None:
        clock_mhz = 12.0 if t is not None and t.luts else 100.0
    clock_mhz = number(clock_mhz, "clock_mhz")
    if family is not None and family not in ("ice40", "ecp5"):
        raise LowbitError(f"{family}: must be ice40 or ecp5", param="family")
    family = family or (t.hw_family if t is not None else "ice40")
    chosen = choose_folding(net, folding, target=t, lut_budget=lut_budget, fps=fps,
                            clock_mhz=clock_mhz, label_select=label_select, family=family,
                            reserve_bram=reserve_bram)
    return Design(net, chosen, analyze(net, chosen, family), family, clock_mhz, t)


# -- boards ---------------------------------------------------------------------------------------


@dataclass
class BoardBuild:
    """A folder ``lowbit build`` wrote: the folding and UART settings the bitstream has."""

    folder: Path
    info: dict
    design: Design

    def run(self, x, port: str, *, timeout: float = 2.0, progress=None):
        """Stream ``x`` through the board on ``port`` (a device or a pyserial URL); returns
        ``(outputs or None, accumulators or class indices)``."""
        from lowbit.boards.link import run_frames

        timeout = number(timeout, "timeout")
        try:
            import serial

            link = serial.serial_for_url(port, baudrate=self.info["baud"], timeout=timeout)
        except (ImportError, OSError, ValueError) as exc:
            raise BoardLinkError(f"{port}: {exc}", param="port") from None
        with link:
            return run_frames(link, self.design.net, self.design.perf, x, progress=progress)


def open_board(build, net) -> BoardBuild:
    """The build folder ``build`` of ``net`` (a Network or a model path)."""
    folder = Path(build)
    info_path, folding_path = folder / "build.json", folder / "folding.json"
    if not info_path.is_file() or not folding_path.is_file():
        raise LowbitError(f"{folder}: no build.json/folding.json; run lowbit build first",
                          param="build")
    try:
        info = json.loads(info_path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        raise LowbitError(f"{folder}: build.json is not valid JSON", param="build") from None
    baud = info.get("baud") if isinstance(info, dict) else None
    if isinstance(baud, bool) or not isinstance(baud, int) or baud <= 0:
        raise LowbitError(f"{folder}: build.json has no valid baud rate", param="build")
    net = load(net)
    folding = choose_folding(net, str(folding_path))
    return BoardBuild(folder, info, Design(net, folding, analyze(net, folding)))


# -- training -------------------------------------------------------------------------------------


@dataclass
class Trained:
    """A trained and exported low-bit network."""

    path: Path | None  # the QONNX file written (None for the float baseline)
    net: Network | None  # as lowbit imports it
    accuracy: float  # top-1 of the exported model in lowbit's reference, %
    torch_accuracy: float  # the torch model's, %
    seconds: float
    snapped: list  # TTQ layers whose Wp/Wn were rounded to a 5-bit grid


def train(method: str, dataset: str = "digits", *, out, hidden=(256, 256), epochs: int = 60,
          lr: float = 0.01, seed: int = 0, stochastic: bool = False, act_bits=None,
          reads=(), force: bool = False, progress=None) -> Trained:
    """Train a network with ``method`` on ``dataset`` (``digits`` or ``mnist-idx:DIR``) and
    write it to ``out`` as QONNX; ``hidden``: the dense layers' widths, or an architecture with
    convolutions such as ``("c16", "p", "c32", "p", "f64")`` (:func:`lowbit.sw.arch.parse_arch`);
    ``act_bits``: the activations' bits (2 to 8; the method's default when None: 4, DoReFa 2);
    ``progress(epoch, epochs, loss)`` after each epoch."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise MissingExtra("training", "train") from None
    from lowbit.sw.datasets import load_digits_split, load_mnist_split
    from lowbit.sw.onnx_export import export_qonnx
    from lowbit.sw.train import METHODS
    from lowbit.sw.train import train as fit

    if method not in METHODS:
        raise LowbitError(f"{method}: unknown; choose one of {', '.join(METHODS)}",
                          param="method")
    epochs = number(epochs, "epochs", integer=True)
    lr = number(lr, "lr")
    act_bits = number(act_bits, "act_bits", integer=True)
    if act_bits is not None:
        from lowbit.sw.train import ACT_BITS

        if method not in ACT_BITS:
            raise LowbitError(f"{method} has no multi-bit activations to size (those of "
                              f"{', '.join(ACT_BITS)} do)", param="act_bits")
        if not 2 <= act_bits <= 8:
            raise LowbitError(f"{act_bits}: activation bits from 2 to 8", param="act_bits")
    hidden = tuple(hidden)
    if not hidden or any(isinstance(h, bool) or not isinstance(h, (int, str)) for h in hidden):
        raise LowbitError(f"{','.join(map(str, hidden))}: hidden layer sizes from 1 to 65536, or "
                          f"an architecture such as c16,p,c32,p,f64", param="arch")
    from lowbit.sw.arch import dataset_image, parse_arch

    try:
        parse_arch(hidden, dataset_image(dataset))
    except ValueError as exc:
        raise LowbitError(f"{','.join(map(str, hidden))}: {exc}", param="arch") from None
    source = None
    if dataset.startswith("mnist-idx:"):
        source = Path(dataset.split(":", 1)[1])
        if not source.is_dir():
            raise InputFileError(f"{dataset}: no such folder {source}", param="dataset")
    elif dataset != "digits":
        raise LowbitError(f"{dataset}: use digits or mnist-idx:DIR", param="dataset")
    out = Path(out)
    if source is not None:  # the data set's own files are inputs too
        reads = tuple(reads) + tuple(source / f"{split}-{kind}-idx{d}-ubyte{gz}"
                                     for split in ("t10k", "train")
                                     for kind, d in (("images", 3), ("labels", 1))
                                     for gz in ("", ".gz"))
    from .output import check_output_file

    check_output_file(out, reads=reads, force=force)
    data = load_digits_split(seed) if source is None else load_mnist_split(source, seed)
    result = fit(data, method, hidden=hidden, epochs=epochs, lr=lr, seed=seed,
                 stochastic=stochastic, act_bits=act_bits, progress=progress)
    if method == "float":  # the baseline: nothing low-bit to export
        return Trained(None, None, result.test_accuracy, result.test_accuracy, result.seconds,
                       [])
    import tempfile

    with tempfile.TemporaryDirectory(prefix="lowbit-train-") as tmp:
        staged = Path(tmp) / "model.onnx"
        info = export_qonnx(result.model, data, staged)
        net = load(staged)
        y = run(net, data.x_test.reshape(len(data.x_test), *net.input_shape))
        write_output_file(out, staged.read_bytes(), reads=reads, force=force)
    accuracy = 100.0 * float((y.argmax(1) == data.y_test).mean())
    return Trained(out, load(out), accuracy, result.test_accuracy, result.seconds,
                   info["snapped"])

