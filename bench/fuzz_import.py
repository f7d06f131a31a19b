"""A mutation fuzzer for lowbit's readers: mutants of real models through ``lowbit inspect`` and
``lowbit run``, every accepted one checked against an independent evaluation.

Seeds: the built-in model, QONNX networks from ``lowbit.sw.synthetic`` (binary, ternary and int4
MLPs, binary and int4 CNNs) and, where ../shared is present, Xilinx's TFC_1W1A (old
``onnx.brevitas`` dialect). Each mutant is one of:

- bytes: flipped, inserted, deleted or duplicated bytes, or a truncation, of the serialized file;
- protobuf: an initializer's values (NaN, infinity, huge, zero, negative), dims, data type or
  raw bytes changed, or the initializer removed; a node's type, inputs, outputs or attributes
  changed, the node removed or duplicated; the graph output renamed to another tensor or a
  second output added; the input's dims or type changed; a name made invalid UTF-8; an opset
  changed.

Each runs in-process through ``lowbit.cli.main``, ``inspect`` then ``run`` on four random
frames, with a time limit. Outcomes: ``refused`` (exit 2 with one line ``lowbit: error: …``),
``accepted`` (exit 0), ``traceback`` (an exception left ``main``), ``hang`` (over the time limit),
``bad-refusal`` (exit 2 with more than one line, or any other exit code). Every accepted run's
outputs are compared with qonnx's executor running the mutant itself (node by node, as the
model states it): equal (``==``), or within float32 rounding of the last sum where the import
noted non-power-of-two scales; any other answer is ``differs``, as is an
accepted mutant the evaluator cannot run. A failure prints the seed that makes it again.

``--count N`` mutants (default 10,000). Writes bench/results/fuzz_import.json.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TIME_LIMIT = 60  # seconds per mutant (a hang otherwise)
QONNX_DOMAINS = ("qonnx.custom_op.general", "onnx.brevitas", "finn.custom_op.general")


# -- seeds -----------------------------------------------------------------------------------


def seeds(shared: Path | None) -> dict[str, bytes]:
    from lowbit.sw.synthetic import binary_mlp, conv_net, quant_mlp

    import lowbit

    models = {
        "built-in": Path(lowbit.BUILT_IN_MODEL).read_bytes(),
        "binary-mlp": binary_mlp((24, 12, 6), seed=1).SerializeToString(),
        "ternary-mlp": quant_mlp((20, 12, 6), weights="ternary", act_bits=2,
                                 seed=2).SerializeToString(),
        "int4-mlp": quant_mlp((16, 10, 4), weights="int4", act_bits=3, in_bits=4,
                              seed=3).SerializeToString(),
        "binary-cnn": conv_net((2, 6, 6), seed=4).SerializeToString(),
        "int4-cnn": conv_net((1, 6, 6), (("conv", 3, 3, 1, 0), ("fc", 4)), weights="int4",
                             act_bits=2, in_bits=2, seed=5).SerializeToString(),
    }
    tfc = shared / "models" / "tfc" / "TFC_1W1A.onnx" if shared else None
    if tfc is not None and tfc.exists():
        models["TFC_1W1A"] = tfc.read_bytes()
    return models


# -- mutators --------------------------------------------------------------------------------


SPECIAL = [float("nan"), float("inf"), -float("inf"), 1e38, -1e38, 0.0, -1.0, 1e-40, 3.5, 1e6]
OPS = ["Mul", "Add", "MatMul", "Gemm", "Relu", "Sign", "Quant", "BipolarQuant", "Reshape",
       "Flatten", "Transpose", "Identity", "Conv", "MaxPool", "BatchNormalization", "Softmax",
       "Max", "Neg", "Abs", "Clip", "Div", "Sub", "Squeeze", "Unsqueeze", "Trunc", "Constant"]


def mutate_bytes(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    b = bytearray(data)
    kind = rng.choice(["flip", "flip", "insert", "delete", "truncate", "duplicate"])
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            k = rng.randrange(len(b))
            b[k] ^= 1 << rng.randrange(8)
    elif kind == "insert":
        k = rng.randrange(len(b))
        b[k:k] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    elif kind == "delete":
        k = rng.randrange(len(b))
        del b[k:k + rng.randint(1, 16)]
    elif kind == "truncate":
        b = b[:rng.randrange(len(b))]
    else:
        k = rng.randrange(len(b))
        n = rng.randint(1, 64)
        b[k:k] = b[k:k + n]
    return bytes(b), f"bytes:{kind}"


def _tensor_names(model) -> list[str]:
    names = [i.name for i in model.graph.input] + [i.name for i in model.graph.initializer]
    for n in model.graph.node:
        names += list(n.output)
    return [n for n in names if n]


def mutate_proto(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    model = onnx.load_from_string(data)
    g = model.graph
    kind = rng.choice(["init-value", "init-value", "init-dims", "init-type", "init-raw",
                       "init-remove", "node-op", "node-input", "node-output", "node-attr",
                       "node-attr", "node-remove", "node-duplicate", "graph-output",
                       "graph-output2", "input-dims", "input-type", "utf8", "opset"])
    inits = list(g.initializer)
    nodes = list(g.node)
    if kind.startswith("init") and inits:
        t = rng.choice(inits)
        if kind == "init-value":
            a = numpy_helper.to_array(t).copy()
            if a.size:
                flat = a.reshape(-1)
                for _ in range(rng.randint(1, 3)):
                    v = rng.choice(SPECIAL) if a.dtype.kind == "f" else rng.choice(
                        [0, -1, 1 << 30, 7])
                    flat[rng.randrange(flat.size)] = v
                if rng.random() < 0.3:
                    flat[:] = flat[0]
                t.CopyFrom(numpy_helper.from_array(a.astype(a.dtype), t.name))
        elif kind == "init-dims":
            dims = list(t.dims)
            if dims and rng.random() < 0.5:
                dims[rng.randrange(len(dims))] = rng.choice([0, 1, 2, 3, 10 ** 6])
            else:
                dims.append(rng.choice([1, 2]))
            del t.dims[:]
            t.dims.extend(dims)
        elif kind == "init-type":
            t.data_type = rng.choice([TensorProto.INT64, TensorProto.DOUBLE, TensorProto.INT8,
                                      TensorProto.FLOAT16, TensorProto.STRING, 99])
        elif kind == "init-raw":
            if t.raw_data:
                t.raw_data = t.raw_data[:rng.randrange(len(t.raw_data))]
            else:
                del t.float_data[len(t.float_data) // 2:]
        else:
            g.initializer.remove(t)
    elif kind.startswith("node") and nodes:
        n = rng.choice(nodes)
        if kind == "node-op":
            n.op_type = rng.choice(OPS)
            if rng.random() < 0.3:
                n.domain = rng.choice(["", QONNX_DOMAINS[0], "onnx.brevitas", "custom"])
        elif kind == "node-input":
            names = _tensor_names(model)
            choice = rng.random()
            if n.input and choice < 0.4:
                n.input[rng.randrange(len(n.input))] = rng.choice(names + ["missing"])
            elif n.input and choice < 0.7:
                del n.input[rng.randrange(len(n.input))]
            else:
                n.input.append(rng.choice(names))
        elif kind == "node-output":
            n.output[0] = rng.choice(_tensor_names(model))
        elif kind == "node-attr":
            if n.attribute and rng.random() < 0.8:
                a = rng.choice(list(n.attribute))
                if a.type == onnx.AttributeProto.INT:
                    a.i = rng.choice([0, -1, 2, 10 ** 9, 3])
                elif a.type == onnx.AttributeProto.FLOAT:
                    a.f = rng.choice(SPECIAL)
                elif a.type == onnx.AttributeProto.INTS:
                    del a.ints[:]
                    a.ints.extend(rng.choice([[], [0], [-1, 2], [3, 3, 3, 3], [10 ** 6, 1]]))
                elif a.type == onnx.AttributeProto.STRING:
                    a.s = rng.choice([b"", b"FLOOR", b"NOPE", b"\xff\xfe"])
                else:
                    n.attribute.remove(a)
            else:
                n.attribute.append(helper.make_attribute(
                    rng.choice(["axis", "alpha", "transB", "group", "strides", "narrow"]),
                    rng.choice([0, 1, 2, -1, 1.5, [2, 2]])))
        elif kind == "node-remove":
            g.node.remove(n)
        else:
            g.node.insert(rng.randrange(len(nodes) + 1), n)
    elif kind == "graph-output":
        g.output[0].name = rng.choice(_tensor_names(model))
    elif kind == "graph-output2":
        g.output.append(helper.make_tensor_value_info(rng.choice(_tensor_names(model)),
                                                      TensorProto.FLOAT, None))
    elif kind == "input-dims":
        dims = g.input[0].type.tensor_type.shape.dim
        if len(dims) > 1:
            d = dims[rng.randrange(1, len(dims))]
            d.dim_value = rng.choice([0, 1, 3, 10 ** 6, 2 ** 40])
        if rng.random() < 0.2:
            dims.add().dim_value = 10 ** 6
    elif kind == "input-type":
        g.input[0].type.tensor_type.elem_type = rng.choice([TensorProto.INT64,
                                                            TensorProto.DOUBLE, 0])
    elif kind == "utf8":
        raw = bytearray(model.SerializeToString())
        name = rng.choice([n.name for n in nodes if n.name] or [g.name or "x"]).encode()
        at = raw.find(name)
        if at >= 0:
            raw[at] = 0xFF
        return bytes(raw), "proto:utf8"
    else:
        o = rng.choice(list(model.opset_import))
        o.version = rng.choice([1, 7, 9, 11, 13, 18, 99])
    return model.SerializeToString(), f"proto:{kind}"


# -- the independent evaluation --------------------------------------------------------------


def evaluate(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """The mutant run by qonnx's executor (node by node: onnxruntime for standard ops, qonnx's
    own Quant and BipolarQuant), frame by frame."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    model = ModelWrapper(onnx.load_from_string(model_bytes)).transform(InferShapes())
    inp, out = model.graph.input[0].name, model.graph.output[0].name
    return np.stack([execute_onnx(model, {inp: row[None]})[out][0] for row in x])


# -- the harness -----------------------------------------------------------------------------


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def cli(argv: list[str]) -> tuple[str, int | None, str]:
    """``(outcome, exit code, stderr)`` of ``lowbit ARGV`` in this process."""
    from lowbit.cli import main

    err = io.StringIO()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIME_LIMIT)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main(argv)
    except Hang:
        return "hang", None, ""
    except SystemExit as exc:  # argparse
        code = exc.code
    except BaseException:
        return "traceback", None, traceback.format_exc()
    finally:
        signal.alarm(0)
    text = err.getvalue()
    lines = text.strip().splitlines()
    if code == 0:
        return "accepted", 0, text
    if code == 2 and len(lines) == 1 and lines[0].startswith("lowbit: error: "):
        return "refused", 2, text
    return "bad-refusal", code, text


def check_one(data: bytes, work: Path) -> tuple[str, str]:
    """Outcome of one mutant, and a detail line."""
    import lowbit

    path = work / "mutant.onnx"
    path.write_bytes(data)
    outcome, _, text = cli(["inspect", str(path)])
    if outcome != "accepted":
        return outcome, text.strip().splitlines()[-1] if text.strip() else ""
    net = lowbit.load(path)
    x = np.random.default_rng(0).random((4, *net.input_shape), dtype=np.float32)
    np.save(work / "x.npy", x)
    (work / "y.npy").unlink(missing_ok=True)
    outcome, _, text = cli(["run", str(path), "--inputs", str(work / "x.npy"), "--out",
                            str(work / "y.npy")])
    if outcome != "accepted":
        return outcome, text.strip().splitlines()[-1] if text.strip() else ""
    y = np.load(work / "y.npy")
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            want = evaluate(data, x)
    except Exception as exc:  # lowbit ran a model ONNX itself cannot run
        return "differs", f"accepted, but the evaluator refuses it: {type(exc).__name__}: " \
                          f"{str(exc)[:120]}"
    if want.shape != y.shape:
        return "differs", f"output shape {y.shape} != {want.shape}"
    if np.array_equal(y, want, equal_nan=True):
        return "accepted", "=="
    exact = all(layer.exact_float for layer in net.layers)
    finite = np.isfinite(want) & np.isfinite(y)
    same_nan = np.array_equal(np.isnan(y), np.isnan(want))
    ulp = np.spacing(np.float32(np.nanmax(np.abs(np.where(np.isfinite(want), want, 0))) + 1))
    within = np.all(np.abs(y[finite] - want[finite]) <= (net.layers[-1].in_features + 2) * ulp)
    if not exact and same_nan and within:
        return "accepted", "within float32 rounding of the last sum"
    return "differs", f"max difference {float(np.nanmax(np.abs(y - want))):g}"


def run(count: int, seed: int, shared: Path | None, progress: bool = True) -> dict:
    base = seeds(shared)
    rng = random.Random(seed)
    outcomes: Counter = Counter()
    failures = []
    kinds: Counter = Counter()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lowbit-fuzz-") as tmp:
        work = Path(tmp)
        for k in range(count):
            case_seed = rng.randrange(1 << 30)
            case = random.Random(case_seed)
            name = case.choice(sorted(base))
            data = base[name]
            mutator = mutate_bytes if case.random() < 0.35 else mutate_proto
            try:
                for _ in range(case.choice([1, 1, 1, 2, 3])):
                    data, how = mutator(data, case)
                    mutator = mutate_proto if case.random() < 0.5 else mutate_bytes
            except Exception:  # a mutant the mutator itself cannot parse again: use it as is
                how = "bytes:chained"
            kinds[how.split(":")[0]] += 1
            outcome, detail = check_one(data, work)
            outcomes[outcome] += 1
            if outcome in ("traceback", "hang", "differs", "bad-refusal"):
                failures.append({"case_seed": case_seed, "seed_model": name, "mutation": how,
                                 "outcome": outcome, "detail": detail[-400:]})
                if progress:
                    print(f"FAIL {outcome}: seed {case_seed} ({name}, {how}): "
                          f"{detail.splitlines()[-1] if detail else ''}", flush=True)
            if progress and (k + 1) % 500 == 0:
                print(f"{k + 1}/{count} in {time.perf_counter() - start:.0f} s: "
                      f"{dict(outcomes)}", flush=True)
    return {"mutants": count, "seed": seed, "seeds": sorted(base), "mutations": dict(kinds),
            "outcomes": dict(outcomes), "failures": failures,
            "seconds": round(time.perf_counter() - start, 1)}


def replay(case_seed: int, shared: Path | None) -> None:
    """Make one mutant again and print its outcome (for a failure's seed)."""
    base = seeds(shared)
    case = random.Random(case_seed)
    name = case.choice(sorted(base))
    data = base[name]
    mutator = mutate_bytes if case.random() < 0.35 else mutate_proto
    for _ in range(case.choice([1, 1, 1, 2, 3])):
        data, how = mutator(data, case)
        mutator = mutate_proto if case.random() < 0.5 else mutate_bytes
    out = Path(f"mutant-{case_seed}.onnx")
    out.write_bytes(data)
    with tempfile.TemporaryDirectory() as tmp:
        print(name, how, check_one(data, Path(tmp)), f"(written to {out})")


def main():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import SHARED, write_result

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replay", type=int, help="make one mutant again from its case seed")
    args = parser.parse_args()
    shared = SHARED if SHARED.exists() else None
    if args.replay is not None:
        replay(args.replay, shared)
        return
    result = run(args.count, args.seed, shared)
    print(result["outcomes"])
    write_result("fuzz_import", result)


if __name__ == "__main__":
    main()
