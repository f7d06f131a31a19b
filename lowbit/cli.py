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


def _cmd_run(args) -> int:
    from lowbit.flows import load_inputs, run_model, save_outputs
    from lowbit.sw.onnx_import import import_model

    net = import_model(args.model)
    x = load_inputs(args.inputs)
    y, seconds = run_model(net, x, engine=args.engine)
    save_outputs(args.out, y, protect=(args.inputs, args.model))
    rate = len(x) / seconds if seconds > 0 else float("inf")
    print(f"{len(x)} frames through {args.engine} in {seconds:.3f} s: {rate:,.0f} frames/s")
    print(f"wrote {args.out} {y.shape} float32")
    return 0


def _cmd_demo(args) -> int:
    from lowbit.flows import format_table, inspect_rows, run_model, save_outputs
    import numpy as np
    import onnx

    from lowbit.sw.onnx_import import import_model
    from lowbit.sw.synthetic import binary_mlp

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / "model.onnx"
    print(f"[1/3] writing a random binary MLP (QONNX) to {model_path}")
    onnx.save(binary_mlp((784, 64, 64, 64, 10), input_shape=(1, 28, 28), seed=1), model_path)
    net = import_model(model_path)
    print("[2/3] lowbit inspect")
    print(format_table(inspect_rows(net)))
    x = np.random.default_rng(0).random((10000, 1, 28, 28), dtype=np.float32)
    np.save(out / "inputs.npy", x)
    print("[3/3] lowbit run --engine reference on 10,000 random frames")
    y, seconds = run_model(net, x)
    save_outputs(out / "outputs.npy", y)
    print(f"{len(x)} frames in {seconds:.3f} s: {len(x) / seconds:,.0f} frames/s; "
          f"outputs in {out / 'outputs.npy'}")
    return 0


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
    p.add_argument("--engine", choices=["reference"], default="reference",
                   help="what computes the outputs (default: the bit-exact reference)")
    p.set_defaults(func=_cmd_run)

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
