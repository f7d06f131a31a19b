"""``lowbit`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lowbit import __version__
from lowbit.errors import LowbitError

__all__ = ["main"]


def _cmd_inspect(args) -> int:
    from lowbit.flows import format_table, inspect_rows
    from lowbit.sw.onnx_import import import_model

    net = import_model(args.model)
    print(f"{args.model}: input {net.input.input_name} {net.input_shape}, "
          f"output {net.output_name} {net.output_shape}, {len(net.layers)} layers")
    print(format_table(inspect_rows(net)))
    for note in net.notes:
        print(f"note: {note}")
    return 0


def _progress(message: str) -> None:
    print(f"... {message}", flush=True)


def _progress_stderr(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def _folding(args, net):
    from lowbit.flows import resolve_folding

    return resolve_folding(net, args.folding, lut_budget=args.lut_budget, fps=args.fps,
                           clock_mhz=args.clock_mhz,
                           label_select=getattr(args, "label_select", False))


def _cmd_run(args) -> int:
    from lowbit.flows import load_inputs, run_model, save_outputs
    from lowbit.sw.onnx_import import import_model

    net = import_model(args.model)
    x = load_inputs(args.inputs)
    folding = _folding(args, net) if args.engine == "rtl" else None
    y, seconds = run_model(net, x, engine=args.engine, folding=folding, family=args.family,
                           progress=_progress)
    save_outputs(args.out, y, protect=(args.inputs, args.model))
    rate = len(x) / seconds if seconds > 0 else float("inf")
    print(f"{len(x)} frames through {args.engine} in {seconds:.3f} s: {rate:,.0f} frames/s")
    print(f"wrote {args.out} {y.shape} float32")
    return 0


def _cmd_compile(args) -> int:
    from lowbit.flows import compile_model
    from lowbit.sw.onnx_import import import_model

    net = import_model(args.model)
    folding = _folding(args, net)
    report, _ = compile_model(net, args.out, folding, protect=(args.model, args.folding),
                              clock_mhz=args.clock_mhz, family=args.family, progress=_progress)
    print(f"II {report['ii_cycles']} cycles, latency {report['latency_cycles']} cycles, "
          f"{report['frames_per_s_at_clock']:,.0f} frames/s at {args.clock_mhz:g} MHz, "
          f"~{report['estimated_luts']:,} LUTs (estimate)")
    return 0


def _cmd_synth(args) -> int:
    import json

    from lowbit.export.synth import TARGETS, synthesize
    from lowbit.flows import device_budgets, output_folder, resolve_folding
    from lowbit.sim.perf import analyze
    from lowbit.sw.onnx_import import import_model

    net = import_model(args.model)
    target = TARGETS.get(args.target)
    family = target.family if target is not None and target.family != "asic" else "ice40"
    folding = resolve_folding(net, args.folding, fps=args.fps, clock_mhz=args.clock_mhz,
                              family=family,
                              **device_budgets(target, args.lut_budget, args.fps))
    perf = analyze(net, folding)
    out = output_folder(args.out)
    progress = _progress_stderr if args.json else _progress  # stdout carries the JSON
    result = synthesize(net, folding, args.target, out=out, clock_mhz=args.clock_mhz,
                        progress=progress)
    summary = {**result.to_json(), "ii_cycles": perf.ii_cycles,
               "latency_cycles": perf.latency_cycles, "estimated_luts": perf.estimated_luts,
               "folding": folding.to_json()}
    if result.fmax_mhz:
        summary["frames_per_s"] = round(result.fmax_mhz * 1e6 / perf.ii_cycles, 1)
        summary["latency_us"] = round(perf.latency_cycles / result.fmax_mhz, 3)
    (out / "synth.json").write_text(json.dumps(summary, indent=2) + "\n")
    if result.fmax_mhz:
        from lowbit.report import write_html

        write_html(out / "report.html", net, perf, folding, clock_mhz=result.fmax_mhz,
                   synth=summary)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    if result.transistors is not None:
        bound = "≥ " if result.transistors_lower_bound else ""
        print(f"{args.target}: {bound}{result.transistors:,} transistors (CMOS cells, flip-flops "
              f"not counted), {result.ffs:,} flip-flops, logic depth {result.logic_depth}")
        return 0
    print(f"{args.target}: {result.luts:,} LUT4 (estimate {perf.estimated_luts:,}), "
          f"{result.ffs:,} FF, {result.bram_blocks} block RAM, {result.spram_blocks} SPRAM, "
          f"{result.dsps} DSP, {result.logic_cells:,} logic cells placed")
    if result.fmax_mhz:
        print(f"fmax {result.fmax_mhz:.1f} MHz: {summary['frames_per_s']:,.0f} frames/s "
              f"(II {perf.ii_cycles} cycles), latency {summary['latency_us']:.2f} µs "
              f"({perf.latency_cycles} cycles)")
    print(f"includes the synthesis wrapper: {result.wrapper_ffs} input shift-register flip-flops "
          f"and an XOR of the output beat; files in {out}")
    return 0


def _cmd_simulate(args) -> int:
    import json

    import numpy as np

    from lowbit.flows import PERF_COLUMNS, format_table, perf_rows, run_rtl
    from lowbit.sim.perf import analyze
    from lowbit.sw.onnx_import import import_model

    net = import_model(args.model)
    folding = _folding(args, net)
    perf = analyze(net, folding)
    result = {"model": {"ii_cycles": perf.ii_cycles, "latency_cycles": perf.latency_cycles,
                        "layers": [dict(r) for r in perf.to_json()["layers"]]}}
    if args.rtl:
        frames = max(args.frames, 3)
        x = np.random.default_rng(args.seed).random((frames, *net.input_shape), dtype=np.float32)
        progress = _progress_stderr if args.json else _progress  # stdout carries the JSON
        _, _, rtl_result, _ = run_rtl(net, folding, x, family=args.family, progress=progress)
        result["rtl"] = {
            "ii_cycles": rtl_result.ii_cycles(perf.out_beats),
            "latency_cycles": rtl_result.latency_cycles(perf.in_beats, perf.out_beats),
            "frames": frames, "cycles": rtl_result.cycles,
            "cycles_per_s": round(rtl_result.cycles / max(rtl_result.seconds, 1e-9)),
        }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(format_table(perf_rows(perf), PERF_COLUMNS))
    line = f"network: II {perf.ii_cycles} cycles, latency {perf.latency_cycles} cycles (model)"
    if args.rtl:
        r = result["rtl"]
        same = r["ii_cycles"] == perf.ii_cycles and r["latency_cycles"] == perf.latency_cycles
        line += (f"; RTL measured II {r['ii_cycles']}, latency {r['latency_cycles']} over "
                 f"{r['frames']} frames: {'equal' if same else 'DIFFERENT'}")
    print(line)
    return 0


def _cmd_demo(args) -> int:
    import time
    from importlib.resources import files

    import numpy as np

    from lowbit.export.synth import TARGETS, synthesize
    from lowbit.flows import (
        PERF_COLUMNS,
        compile_model,
        device_budgets,
        format_table,
        inspect_rows,
        output_folder,
        perf_rows,
        resolve_folding,
        run_rtl,
    )
    from lowbit.report import write_html
    from lowbit.sw import reference
    from lowbit.sw.onnx_import import import_model
    from lowbit.sw.train import load_digits_split

    start = time.perf_counter()
    out = output_folder(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = files("lowbit") / "data" / "digits_bnn.onnx"
    print("[1/7] the built-in model: a BNN (64-128-128-10) trained by `lowbit train --method bnn "
          "--arch 128,128` on scikit-learn's digits")
    net = import_model(str(model))
    print(format_table(inspect_rows(net)))

    data = load_digits_split()
    x, labels = data.x_test, data.y_test
    y = reference.run(net, x)
    correct = int((y.argmax(1) == labels).sum())
    print(f"[2/7] bit-exact reference on the {len(x)} digits test images: {correct}/{len(x)} = "
          f"{100 * correct / len(x):.2f}% top-1")

    target = TARGETS["ice40-up5k"]
    folding = resolve_folding(net, "auto", family="ice40",
                              **device_budgets(target, None, None, 1))
    print(f"[3/7] compiling to Verilog in {out / 'hw'} (auto folding for an iCE40 UP5K)")
    _, generated = compile_model(net, out / "hw", folding, progress=_progress,
                                 clock_mhz=12.0)

    print(f"[4/7] Verilator: the {len(x)} test images through the RTL")
    y_rtl, _, result, perf = run_rtl(net, folding, x, generated=generated, progress=_progress)
    same = bool(np.array_equal(y_rtl, y))
    ii, lat = result.ii_cycles(perf.out_beats), result.latency_cycles(perf.in_beats, perf.out_beats)
    cycles_equal = ii == perf.ii_cycles and lat == perf.latency_cycles
    print(f"      RTL outputs {'==' if same else '!='} reference on all {len(x)} images "
          f"(bit-exact, {len(x) * net.layers[-1].out_features:,} values compared)")

    print("[5/7] cycle report (lowbit.sim.perf; measured in the RTL beside it)")
    print(format_table(perf_rows(perf), PERF_COLUMNS))
    print(f"      model II {perf.ii_cycles} cycles, latency {perf.latency_cycles} cycles; RTL "
          f"measured II {ii}, latency {lat}: {'equal' if cycles_equal else 'DIFFERENT'}")

    print("[6/7] synthesis for an iCE40 UP5K with yosys and nextpnr (YoWASP)")
    synth = synthesize(net, folding, "ice40-up5k", out=out / "synth", clock_mhz=12.0,
                       progress=_progress)
    summary = {**synth.to_json(), "ii_cycles": perf.ii_cycles,
               "latency_cycles": perf.latency_cycles, "estimated_luts": perf.estimated_luts}
    fps = synth.fmax_mhz * 1e6 / perf.ii_cycles if synth.fmax_mhz else 0.0
    print(f"      {synth.luts:,} LUT4 (estimate {perf.estimated_luts:,}), {synth.ffs:,} FF, "
          f"{synth.bram_blocks} block RAM, {synth.logic_cells:,} / {target.luts:,} logic cells; "
          f"fmax {synth.fmax_mhz} MHz: {fps:,.0f} frames/s")

    report = write_html(out / "report.html", net, perf, folding,
                        clock_mhz=synth.fmax_mhz or 12.0, synth=summary,
                        rtl={"ii_cycles": ii, "latency_cycles": lat},
                        extra=[("digits test top-1", f"{correct}/{len(x)} = "
                                f"{100 * correct / len(x):.2f}% (reference; the RTL "
                                f"{'matches it bit for bit' if same else 'DIFFERS'})")])
    print(f"[7/7] report: {report} ({time.perf_counter() - start:.0f} s in all)")
    return 0 if same and cycles_equal else 1


def _cmd_build(args) -> int:
    from lowbit.boards.build import build_bitstream, uart_divisor
    from lowbit.boards.top import BOARDS
    from lowbit.export.synth import TARGETS
    from lowbit.flows import device_budgets, output_folder, resolve_folding
    from lowbit.sw.onnx_import import import_model

    uart_divisor(args.board, args.baud)  # a bad --baud fails before any work
    net = import_model(args.model)
    board = BOARDS[args.board]
    target = TARGETS[board.target]
    folding = resolve_folding(net, args.folding, fps=args.fps, clock_mhz=board.clock_hz / 1e6,
                              family=board.family, label_select=args.label_select,
                              # the UART's FIFO takes a block RAM
                              **device_budgets(target, args.lut_budget, args.fps, 2))
    out = output_folder(args.out)
    result = build_bitstream(net, folding, args.board, out, baud=args.baud, progress=_progress)
    used = {k: v for k, v in result.utilization.items()
            if v["used"] and k not in ("SB_IO", "SB_GB", "TRELLIS_IO", "DCCA")}
    print(f"{args.board}: {result.bitstream} ({result.seconds:.0f} s)")
    print("  " + ", ".join(f"{k} {v['used']}/{v['available']}" for k, v in used.items()))
    print(f"  fmax {result.fmax_mhz} MHz (board clock {result.clock_mhz:g} MHz); II "
          f"{result.ii_cycles} cycles: {result.to_json()['frames_per_s_compute']:,.0f} frames/s "
          f"of compute; the UART at {args.baud} baud carries fewer")
    print(f"  run it: lowbit board run {args.model} --build {out} --port /dev/ttyUSB1 "
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
        raise LowbitError(f"--program: {tool} is not installed; the bitstream is in {bitstream}")
    cmd = [exe, str(bitstream)] if tool == "iceprog" else [exe, "-b", "ulx3s", str(bitstream)]
    if subprocess.run(cmd).returncode != 0:
        raise LowbitError(f"--program: {tool} failed")


def _cmd_board_run(args) -> int:
    import json

    from lowbit.boards.link import BoardLinkError, run_frames
    from lowbit.flows import load_inputs, save_outputs
    from lowbit.sim.perf import analyze, load_folding
    from lowbit.sw.onnx_import import import_model

    build = Path(args.build)
    if not (build / "build.json").exists() or not (build / "folding.json").exists():
        raise LowbitError(f"--build {build}: no build.json/folding.json; run lowbit build first")
    info = json.loads((build / "build.json").read_text())
    net = import_model(args.model)
    folding = load_folding(build / "folding.json", net)
    perf = analyze(net, folding)
    x = load_inputs(args.inputs)
    try:
        import serial

        port = serial.serial_for_url(args.port, baudrate=info["baud"], timeout=args.timeout)
    except (ImportError, OSError, ValueError) as exc:
        raise BoardLinkError(f"--port {args.port}: {exc}") from None
    with port:
        y, ints = run_frames(port, net, perf, x, progress=_progress)
    if y is None:  # label select: class indices
        import numpy as np

        y = ints.astype(np.int64)
    save_outputs(args.out, y, protect=(args.inputs, args.model))
    print(f"{len(x)} frames through the {info['board']} at {info['baud']} baud; wrote {args.out}")
    return 0


def _cmd_train(args) -> int:
    from lowbit.sw import reference
    from lowbit.sw.onnx_export import export_qonnx
    from lowbit.sw.onnx_import import import_model
    from lowbit.sw.train import load_digits_split, load_mnist_split, train

    if args.dataset == "digits":
        data = load_digits_split(args.seed)
    elif args.dataset.startswith("mnist-idx:"):
        folder = Path(args.dataset.split(":", 1)[1])
        if not folder.is_dir():
            raise LowbitError(f"--dataset {args.dataset}: no such folder {folder}")
        data = load_mnist_split(folder, args.seed)
    else:
        raise LowbitError(f"--dataset {args.dataset}: use digits or mnist-idx:DIR")
    try:
        hidden = tuple(int(v) for v in args.arch.split(",") if v.strip())
    except ValueError:
        raise LowbitError(f"--arch {args.arch}: hidden layer sizes, e.g. 256,256") from None
    if not hidden or min(hidden) < 1:
        raise LowbitError(f"--arch {args.arch}: at least one hidden layer of 1 or more")
    out = Path(args.out)
    if out.exists() and out.is_dir():
        raise LowbitError(f"-o {out}: is a folder; give a .onnx file name")
    if not out.parent.is_dir():
        raise LowbitError(f"-o {out}: folder {out.parent} does not exist")

    def bar(epoch, epochs, loss):
        done = int(30 * epoch / epochs)
        end = "\n" if epoch == epochs else ""
        print(f"\r  [{'#' * done}{'.' * (30 - done)}] epoch {epoch}/{epochs} loss {loss:.4f}",
              end=end, flush=True)

    print(f"training {args.method} on {data.name} ({len(data.x_train)} train, "
          f"{len(data.x_test)} test), {data.x_train.shape[1]}-{args.arch}-10")
    result = train(data, args.method, hidden=hidden, epochs=args.epochs, lr=args.lr,
                   seed=args.seed, stochastic=args.stochastic, progress=bar)
    print(f"  {result.seconds:.1f} s; the torch model: {result.test_accuracy:.2f}%")
    if args.method == "float":
        print(f"test accuracy {result.test_accuracy:.2f}%")
        return 0
    info = export_qonnx(result.model, data, out)
    if info["snapped"]:
        print(f"  TTQ: Wp/Wn rounded to a 5-bit grid in layers {info['snapped']}")
    net = import_model(out)
    y = reference.run(net, data.x_test)
    accuracy = 100.0 * float((y.argmax(1) == data.y_test).mean())
    print(f"wrote {out} (QONNX); lowbit imports it as "
          + ", ".join(layer.weight_kind.value for layer in net.layers))
    print(f"test accuracy {accuracy:.2f}%")
    return 0


def _folding_options(p, *, clock_mhz: float | None = 100.0, budget: str = "5000",
                     family: bool = True) -> None:
    p.add_argument("--folding", default="auto",
                   help="auto (default) or a folding JSON file (see folding.json from compile)")
    p.add_argument("--lut-budget", type=int, default=None,
                   help=f"auto: fastest folding within this many estimated LUTs (default {budget})")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lowbit",
        description="Low-bit neural networks (ONNX/QONNX) to verified FPGA hardware.",
    )
    parser.add_argument("--version", action="version", version=f"lowbit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("inspect", help="import a model and print one row per layer")
    p.add_argument("model", help="ONNX or QONNX file")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("run", help="run a model on inputs from a .npy file")
    p.add_argument("model", help="ONNX or QONNX file")
    p.add_argument("--inputs", required=True, help="X.npy of shape (N, *input shape)")
    p.add_argument("--out", required=True, help="Y.npy to write: (N, *output shape) float32")
    p.add_argument("--engine", choices=["reference", "rtl"], default="reference",
                   help="the bit-exact reference (default) or the Verilated RTL")
    _folding_options(p)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("compile", help="write Verilog, folding and cycle report")
    p.add_argument("model", help="ONNX or QONNX file")
    p.add_argument("-o", "--out", required=True, help="output folder")
    _folding_options(p)
    p.add_argument("--label-select", action="store_true",
                   help="end in an argmax stage: one class index per frame")
    p.set_defaults(func=_cmd_compile)

    p = sub.add_parser("synth", help="synthesize and place-and-route with yosys and nextpnr")
    p.add_argument("model", help="ONNX or QONNX file")
    p.add_argument("--target", required=True,
                   help="ice40-up5k, ice40-hx8k, ecp5-25k, ecp5-45k, ecp5-85k or asic")
    p.add_argument("-o", "--out", required=True, help="output folder")
    _folding_options(p, clock_mhz=12.0, family=False,
                     budget="70%% of an iCE40's logic cells, 80%% of an ECP5's LUTs")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("train", help="train a low-bit MLP and write it as QONNX")
    p.add_argument("--method", required=True,
                   choices=["float", "bnn", "binaryconnect", "xnor", "twn", "ttq", "inq", "log2",
                            "dorefa", "pact"])
    p.add_argument("--dataset", default="digits", help="digits (default) or mnist-idx:DIR")
    p.add_argument("--arch", default="256,256", help="hidden layer sizes (default 256,256)")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--stochastic", action="store_true",
                   help="binaryconnect: stochastic binarization while training")
    p.add_argument("-o", "--out", default="model.onnx", help="QONNX file to write")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("simulate", help="print the cycle model; --rtl measures it in Verilator")
    p.add_argument("model", help="ONNX or QONNX file")
    _folding_options(p)
    p.add_argument("--rtl", action="store_true", help="also run the Verilated design")
    p.add_argument("--frames", type=int, default=8, help="random frames for --rtl (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("build", help="a bitstream for a board (network behind a UART)")
    p.add_argument("model", help="ONNX or QONNX file")
    p.add_argument("--board", required=True, choices=["icebreaker", "ulx3s-85f"])
    p.add_argument("-o", "--out", required=True, help="output folder")
    _folding_options(p, family=False, clock_mhz=None,
                     budget="70%% of an iCE40's logic cells, 80%% of an ECP5's LUTs")
    p.add_argument("--label-select", action="store_true",
                   help="answer one class index per frame instead of the accumulators")
    p.add_argument("--baud", type=int, default=115200, help="UART baud rate (default 115200)")
    p.add_argument("--program", action="store_true",
                   help="program the board afterwards (iceprog / openFPGALoader)")
    p.set_defaults(func=_cmd_build)

    p = sub.add_parser("board", help="talk to a board built with lowbit build")
    board_sub = p.add_subparsers(dest="board_command", required=True, metavar="ACTION")
    p = board_sub.add_parser("run", help="stream inputs through the board over its UART")
    p.add_argument("model", help="the ONNX or QONNX file the bitstream was built from")
    p.add_argument("--build", required=True, help="the folder lowbit build wrote")
    p.add_argument("--port", required=True,
                   help="serial port, e.g. /dev/ttyUSB1 (or a pyserial URL: socket://host:port)")
    p.add_argument("--inputs", required=True, help="X.npy of shape (N, *input shape)")
    p.add_argument("--out", required=True, help="Y.npy to write")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait per frame")
    p.set_defaults(func=_cmd_board_run)

    p = sub.add_parser("demo", help="the whole flow on a built-in model")
    p.add_argument("-o", "--out", default="lowbit-demo", help="output folder (default lowbit-demo)")
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except LowbitError as exc:
        print(f"lowbit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lowbit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
