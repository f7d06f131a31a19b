"""``lowbit`` command line: a thin shell over :mod:`lowbit.api`.

Each subcommand parses its arguments, calls the API and prints. A user error is one line,
``lowbit: error: …``, naming the flag where the error is about one, and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lowbit import __version__
from lowbit.errors import LowbitError

__all__ = ["main", "build_parser"]

# API parameter -> the flag that gives it (where the flag is not just --<param>)
FLAGS = {"lut_budget": "--lut-budget", "clock_mhz": "--clock-mhz", "out": "-o"}


class Progress:
    """Progress lines (``... message``) on a stream; :meth:`tick` (a tool's current step and
    elapsed time) redraws one line on a terminal, and elsewhere (a log) prints a line at most
    every :attr:`LOG_EVERY` seconds."""

    LOG_EVERY = 30.0

    def __init__(self, stream=None, quiet: bool = False):
        import time

        self.stream = stream or sys.stdout
        self.quiet = quiet
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._open = False  # a redrawn line is on screen
        self._clock = time.monotonic
        self._last_tick = self._clock()

    def _end_line(self) -> None:
        if self._open:
            print(file=self.stream, flush=True)
            self._open = False

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        self._end_line()
        print(f"... {message}", file=self.stream, flush=True)

    def tick(self, message: str) -> None:
        if self.quiet:
            return
        if self.tty:
            print(f"\r\033[K... {message}", end="", file=self.stream, flush=True)
            self._open = True
        elif self._clock() - self._last_tick >= self.LOG_EVERY:
            self._last_tick = self._clock()
            print(f"... {message}", file=self.stream, flush=True)

    def done(self) -> None:
        self._end_line()


def _say(*lines: str) -> None:
    for line in lines:
        print(line, flush=True)


def _compile(args, **options):
    """``lowbit.compile`` with the command's folding options (``options`` override them)."""
    import lowbit

    given = {"target": getattr(args, "target", None), "lut_budget": args.lut_budget,
             "fps": args.fps, "clock_mhz": getattr(args, "clock_mhz", None),
             "label_select": getattr(args, "label_select", False),
             "family": getattr(args, "family", None)}
    return lowbit.compile(args.model, args.folding, **(given | options))


def _reads(args) -> tuple:
    """The files a command reads: never an output."""
    return tuple(p for p in (getattr(args, "model", None), getattr(args, "inputs", None),
                             getattr(args, "folding", None)) if p not in (None, "auto"))


# -- commands -----------------------------------------------------------------------------------


def _cmd_inspect(args) -> int:
    import lowbit
    from lowbit.report import format_table, inspect_rows

    net = lowbit.load(args.model)
    _say(f"{args.model}: input {net.input.input_name} {net.input_shape}, "
         f"output {net.output_name} {net.output_shape}, {len(net.layers)} layers",
         format_table(inspect_rows(net)), *(f"note: {note}" for note in net.notes))
    return 0


def _cmd_run(args) -> int:
    import time

    import lowbit
    from lowbit.output import check_output_file, write_output_file

    check_output_file(args.out, reads=_reads(args), force=args.force)
    x = lowbit.load_inputs(args.inputs)
    start = time.perf_counter()
    if args.engine == "rtl":
        design = _compile(args)
        y = design.run(x, engine="rtl", progress=Progress())
    else:
        y = lowbit.run(lowbit.load(args.model), x)
    seconds = time.perf_counter() - start
    write_output_file(args.out, y, reads=_reads(args), force=args.force)
    rate = len(x) / seconds if seconds > 0 else float("inf")
    _say(f"{len(x)} frames through {args.engine} in {seconds:.3f} s: {rate:,.0f} frames/s",
         f"wrote {args.out} {y.shape} float32")
    return 0


def _cmd_compile(args) -> int:
    design = _compile(args)
    paths = design.write(args.out, force=args.force, reads=_reads(args), progress=Progress())
    p = design.perf
    _say(f"... wrote {', '.join(map(str, paths))}",
         f"II {p.ii_cycles} cycles, latency {p.latency_cycles} cycles, "
         f"{design.frames_per_s:,.0f} frames/s at {design.clock_mhz:g} MHz, "
         f"~{p.estimated_luts:,} LUTs (estimate)")
    return 0


def _cmd_synth(args) -> int:
    progress = Progress(sys.stderr if args.json else sys.stdout, quiet=args.quiet)
    design = _compile(args)
    synthesis = design.synthesize(out=args.out, force=args.force, reads=_reads(args),
                                  progress=progress)
    progress.done()
    r, p = synthesis.result, design.perf
    if args.json:
        print(json.dumps(synthesis.to_json(), indent=2))
        return 0
    if r.transistors is not None:
        bound = "≥ " if r.transistors_lower_bound else ""
        _say(f"{args.target}: {bound}{r.transistors:,} transistors (CMOS cells, flip-flops not "
             f"counted), {r.ffs:,} flip-flops, logic depth {r.logic_depth}")
        return 0
    _say(f"{args.target}: {r.luts:,} LUT4 (estimate {p.estimated_luts:,}), {r.ffs:,} FF, "
         f"{r.bram_blocks} block RAM, {r.spram_blocks} SPRAM, {r.dsps} DSP, "
         f"{r.logic_cells:,} logic cells placed")
    if r.fmax_mhz:
        _say(f"fmax {r.fmax_mhz:.1f} MHz: {synthesis.frames_per_s:,.0f} frames/s (II "
             f"{p.ii_cycles} cycles), latency {synthesis.latency_us:.2f} µs "
             f"({p.latency_cycles} cycles)")
    _say(f"includes the synthesis wrapper: {r.wrapper_ffs} input shift-register flip-flops and "
         f"an XOR of the output beat; files in {args.out}")
    return 0


def _cmd_simulate(args) -> int:
    import numpy as np

    from lowbit.report import PERF_COLUMNS, format_table, perf_rows

    design = _compile(args)
    p = design.perf
    result = {"model": {"ii_cycles": p.ii_cycles, "latency_cycles": p.latency_cycles,
                        "layers": p.to_json()["layers"]}}
    if args.rtl:
        frames = max(args.frames, 3)
        x = np.random.default_rng(args.seed).random((frames, *design.net.input_shape),
                                                    dtype=np.float32)
        sim = design.simulate(x, progress=Progress(sys.stderr if args.json else sys.stdout))
        result["rtl"] = {
            "ii_cycles": sim.ii_cycles, "latency_cycles": sim.latency_cycles,
            "frames": frames, "cycles": sim.rtl.cycles,
            "cycles_per_s": round(sim.rtl.cycles / max(sim.rtl.seconds, 1e-9)),
            "outputs_equal_reference": sim.outputs_equal,
        }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    line = f"network: II {p.ii_cycles} cycles, latency {p.latency_cycles} cycles (model)"
    if args.rtl:
        r = result["rtl"]
        line += (f"; RTL measured II {r['ii_cycles']}, latency {r['latency_cycles']} over "
                 f"{r['frames']} frames: {'equal' if sim.cycles_equal else 'DIFFERENT'}")
    _say(format_table(perf_rows(p), PERF_COLUMNS), line)
    return 0


def _cmd_demo(args) -> int:
    from lowbit import demo

    result = demo.run(args.out, force=args.force, say=_say, progress=Progress())
    return 0 if result.ok else 1


def _cmd_build(args) -> int:
    from lowbit.boards.build import uart_divisor
    from lowbit.boards.top import BOARDS, UartNetwork

    uart_divisor(args.board, args.baud)  # a bad --baud fails before any work
    board = BOARDS[args.board]
    progress = Progress(quiet=args.quiet)
    design = _compile(args, target=board.target, clock_mhz=board.clock_hz / 1e6,
                      family=board.family, reserve_bram=UartNetwork.BRAM_BLOCKS)
    result = design.build(args.board, args.out, baud=args.baud, progress=progress,
                          force=args.force, reads=_reads(args))
    progress.done()
    used = {k: v for k, v in result.utilization.items()
            if v["used"] and k not in ("SB_IO", "SB_GB", "TRELLIS_IO", "DCCA")}
    _say(f"{args.board}: {result.bitstream} ({result.seconds:.0f} s)",
         "  " + ", ".join(f"{k} {v['used']}/{v['available']}" for k, v in used.items()),
         f"  fmax {result.fmax_mhz} MHz (board clock {result.clock_mhz:g} MHz); II "
         f"{result.ii_cycles} cycles: {result.to_json()['frames_per_s_compute']:,.0f} frames/s "
         f"of compute; the UART at {args.baud} baud carries fewer",
         f"  run it: lowbit board run {args.model} --build {args.out} --port /dev/ttyUSB1 "
         f"--inputs X.npy --out Y.npy")
    if args.program:
        _program(board, result.bitstream)
    return 0


def _program(board, bitstream) -> None:
    import shutil
    import subprocess

    tool = "iceprog" if board.family == "ice40" else "openFPGALoader"
    exe = shutil.which(tool)
    if exe is None:
        raise LowbitError(f"{tool} is not installed; the bitstream is in {bitstream}",
                          param="program")
    cmd = [exe, str(bitstream)] if tool == "iceprog" else [exe, "-b", "ulx3s", str(bitstream)]
    if subprocess.run(cmd).returncode != 0:
        raise LowbitError(f"{tool} failed", param="program")


def _cmd_board_run(args) -> int:
    import numpy as np

    import lowbit
    from lowbit.output import check_output_file, write_output_file

    reads = _reads(args) + (Path(args.build) / "build.json", Path(args.build) / "folding.json")
    check_output_file(args.out, reads=reads, force=args.force)
    board = lowbit.open_board(args.build, args.model)
    x = lowbit.load_inputs(args.inputs)
    y, ints = board.run(x, args.port, timeout=args.timeout, progress=Progress())
    if y is None:  # label select: class indices
        y = ints.astype(np.int64)
    write_output_file(args.out, y, reads=reads, force=args.force)
    _say(f"{len(x)} frames through the {board.info.get('board')} at {board.info['baud']} baud; "
         f"wrote {args.out}")
    return 0


def _cmd_train(args) -> int:
    import lowbit
    from lowbit.sw.arch import dataset_image, parse_arch

    hidden = tuple(int(v) if v.strip().isdigit() else v.strip()
                   for v in args.arch.split(",") if v.strip())
    try:
        parse_arch(hidden, dataset_image(args.dataset))
    except ValueError as exc:
        raise LowbitError(f"{args.arch}: {exc}", param="arch") from None

    def bar(epoch, epochs, loss):
        done = int(30 * epoch / epochs)
        end = "\n" if epoch == epochs else ""
        print(f"\r  [{'#' * done}{'.' * (30 - done)}] epoch {epoch}/{epochs} loss {loss:.4f}",
              end=end, flush=True)

    _say(f"training {args.method} on {args.dataset}, layers {args.arch}")
    trained = lowbit.train(args.method, args.dataset, out=args.out, hidden=hidden,
                           epochs=args.epochs, lr=args.lr, seed=args.seed,
                           stochastic=args.stochastic, act_bits=args.act_bits,
                           force=args.force, progress=bar)
    _say(f"  {trained.seconds:.1f} s; the torch model: {trained.torch_accuracy:.2f}%")
    if trained.path is None:  # the float baseline
        _say(f"test accuracy {trained.accuracy:.2f}%")
        return 0
    if trained.snapped:
        _say(f"  TTQ: Wp/Wn rounded to a 5-bit grid in layers {trained.snapped}")
    _say(f"wrote {trained.path} (QONNX); lowbit imports it as "
         + ", ".join(layer.weight_kind.value for layer in trained.net.layers),
         f"test accuracy {trained.accuracy:.2f}%")
    return 0


# -- the parser ---------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2, like every other error."""

    def error(self, message: str):
        self.exit(2, f"lowbit: error: {message} (see {self.prog} --help)\n")


def _folding_options(p, *, clock_mhz: float | None = 100.0, budget: str = "5000",
                     family: bool = True) -> None:
    p.add_argument("--folding", default="auto",
                   help="auto (default) or a folding JSON file (see folding.json from compile)")
    p.add_argument("--lut-budget", type=int, default=None,
                   help=f"auto: fastest folding within this many estimated LUTs (default "
                        f"{budget})")
    p.add_argument("--fps", type=float, default=None,
                   help="auto: cheapest folding reaching this many frames/s at the clock")
    if clock_mhz is not None:  # a board brings its own clock
        p.add_argument("--clock-mhz", type=float, default=clock_mhz,
                       help=f"clock to assume (and, for synth, constrain) "
                            f"(default {clock_mhz:g})")
    if family:
        p.add_argument("--family", choices=["ice40", "ecp5"], default="ice40",
                       help="FPGA family the popcount structure is built for (default ice40); "
                            "cycles are the same for both")


def _force(p) -> None:
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty folder lowbit did not write (its other files "
                        "stay)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lowbit",
                     description="Low-bit neural networks (ONNX/QONNX) to verified FPGA hardware.")
    parser.add_argument("--version", action="version", version=f"lowbit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    default_budget = "5000, or the fully folded design when larger"
    device_budget = "70%% of an iCE40's logic cells, 80%% of an ECP5's LUTs"

    p = sub.add_parser("inspect", help="import a model and print one row per layer")
    p.add_argument("model", help="ONNX or QONNX file")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("run", help="run a model on inputs from a .npy file")
    p.add_argument("model", help="ONNX or QONNX file")
    p.add_argument("--inputs", required=True, help="X.npy of shape (N, *input shape)")
    p.add_argument("--out", required=True, help="Y.npy to write: (N, *output shape) float32")
    p.add_argument("--engine", choices=["reference", "rtl"], default="reference",
                   help="the bit-exact reference (default) or the Verilated RTL")
    _folding_options(p, budget=default_budget)
    p.add_argument("--force", action="store_true",
                   help="replace an existing --out file lowbit did not write")
    p.set_defaults(func=_cmd_run, out_flag="--out")

    p = sub.add_parser("compile", help="write Verilog, folding and cycle report")
    p.add_argument("model", help="ONNX or QONNX file")
    p.add_argument("-o", "--out", required=True, help="output folder")
    _folding_options(p, budget=default_budget)
    p.add_argument("--label-select", action="store_true",
                   help="end in an argmax stage: one class index per frame")
    _force(p)
    p.set_defaults(func=_cmd_compile)

    p = sub.add_parser("synth", help="synthesize and place-and-route with yosys and nextpnr")
    p.add_argument("model", help="ONNX or QONNX file")
    p.add_argument("--target", required=True,
                   help="ice40-up5k, ice40-hx8k, ecp5-25k, ecp5-45k, ecp5-85k or asic")
    p.add_argument("-o", "--out", required=True, help="output folder")
    _folding_options(p, clock_mhz=12.0, family=False, budget=device_budget)
    p.add_argument("--json", action="store_true", help="print JSON (progress goes to stderr)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    _force(p)
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("train", help="train a low-bit MLP or CNN and write it as QONNX (needs "
                                     "the train extra: torch)")
    p.add_argument("--method", required=True,
                   choices=["float", "bnn", "binaryconnect", "xnor", "twn", "ttq", "inq", "log2",
                            "dorefa", "pact"])
    p.add_argument("--dataset", default="digits",
                   help="digits (default) or mnist-idx:DIR (its train-* IDX files to train on, "
                        "else t10k-* split 80/20)")
    p.add_argument("--arch", default="256,256",
                   help="hidden layer sizes (default 256,256), or with convolutions: cN a 3x3 "
                        "convolution of N channels, p a 2x2 max pool, fN a dense layer "
                        "(e.g. c16,p,c32,p,f64)")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stochastic", action="store_true",
                   help="binaryconnect: stochastic binarization while training")
    p.add_argument("--act-bits", type=int, metavar="K",
                   help="activation bits, 2 to 8 (default 4; dorefa 2): fewer thresholds per "
                        "channel in hardware")
    p.add_argument("-o", "--out", default="model.onnx", help="QONNX file to write")
    p.add_argument("--force", action="store_true",
                   help="replace an existing -o file lowbit did not write")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("simulate", help="print the cycle model; --rtl measures it in Verilator")
    p.add_argument("model", help="ONNX or QONNX file")
    _folding_options(p, budget=default_budget)
    p.add_argument("--rtl", action="store_true", help="also run the Verilated design")
    p.add_argument("--frames", type=int, default=8, help="random frames for --rtl (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("build", help="a bitstream for a board (network behind a UART)")
    p.add_argument("model", help="ONNX or QONNX file")
    p.add_argument("--board", required=True, choices=["icebreaker", "ulx3s-85f"])
    p.add_argument("-o", "--out", required=True, help="output folder")
    _folding_options(p, family=False, clock_mhz=None, budget=device_budget)
    p.add_argument("--label-select", action="store_true",
                   help="answer one class index per frame instead of the accumulators")
    p.add_argument("--baud", type=int, default=115200, help="UART baud rate (default 115200)")
    p.add_argument("--program", action="store_true",
                   help="program the board afterwards (iceprog / openFPGALoader)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    _force(p)
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("board", help="talk to a board built with lowbit build")
    board_sub = p.add_subparsers(dest="board_command", required=True, metavar="ACTION",
                                 parser_class=_Parser)
    p = board_sub.add_parser("run", help="stream inputs through the board over its UART")
    p.add_argument("model", help="the ONNX or QONNX file the bitstream was built from")
    p.add_argument("--build", required=True, help="the folder lowbit build wrote")
    p.add_argument("--port", required=True,
                   help="serial port, e.g. /dev/ttyUSB1 (or a pyserial URL: socket://host:port)")
    p.add_argument("--inputs", required=True, help="X.npy of shape (N, *input shape)")
    p.add_argument("--out", required=True, help="Y.npy to write")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait per frame")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --out file lowbit did not write")
    p.set_defaults(func=_cmd_board_run, out_flag="--out")

    p = sub.add_parser("demo", help="the whole flow on a built-in model")
    p.add_argument("-o", "--out", default="lowbit-demo", help="output folder (default lowbit-demo)")
    _force(p)
    p.set_defaults(func=_cmd_demo)
    return parser


def _flag(args, param: str) -> str:
    if param == "out":
        return getattr(args, "out_flag", "-o")
    return FLAGS.get(param, "--" + param.replace("_", "-"))


def main(argv: list[str] | None = None) -> int:
    import warnings

    import numpy as np

    args = build_parser().parse_args(argv)
    try:
        # a user sees lowbit's lines, not numpy's or a library's warnings about them
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            return args.func(args)
    except LowbitError as exc:
        where = f"{_flag(args, exc.param)} " if exc.param else ""
        print(f"lowbit: error: {where}{exc.message}", file=sys.stderr)
        return 2
    except OSError as exc:  # the machine's, not the model's: a full disk, a lost device
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"lowbit: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lowbit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
