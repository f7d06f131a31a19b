"""The flows the CLI runs, usable from Python too."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from lowbit.errors import InputFileError
from lowbit.sw.ir import Network

__all__ = [
    "inspect_rows", "format_table", "load_inputs", "save_outputs", "run_model", "resolve_folding",
    "run_rtl", "compile_model", "perf_rows", "report_markdown", "output_folder",
]


def _describe_quantizer(q) -> str:
    if q.kind != "int":
        return q.kind
    sign = "int" if q.signed else "uint"
    return f"{sign}{q.bit_width}{' narrow' if q.narrow else ''} x{q.scale:g}"


def layer_shape(layer) -> str:
    """``in -> out`` features, or for a convolution its window, maps and pooling."""
    w = layer.window
    if w is None:
        return f"{layer.in_features} -> {layer.out_features}"
    (kh, kw), (sh, sw) = w.kernel, w.stride
    stride = "" if (sh, sw) == (1, 1) else f"/{sh}" if sh == sw else f"/{sh}x{sw}"
    conv = f"conv {kh}x{kw}{stride}"
    if w.padded:
        conv += " pad " + ",".join(map(str, w.pads))
    text = (f"{conv}: {w.channels}x{w.height}x{w.width} -> "
            f"{layer.out_features}x{w.out_height}x{w.out_width}")
    if layer.pool is not None:
        c, h, wd = layer.out_map
        text += f", maxpool {layer.pool.kernel} -> {c}x{h}x{wd}"
    return text


def inspect_rows(net: Network) -> list[dict]:
    """One row per layer (the input quantizer first), as ``lowbit inspect`` prints them."""
    stage = net.input
    rows = [{
        "layer": stage.name, "kind": f"input {_describe_quantizer(stage.quantizer)}",
        "shape": "x".join(map(str, stage.input_shape)) + f" -> {int(np.prod(stage.out_shape))}",
        "in_bits": 32, "out_bits": stage.out.bits, "weight_bits": "-", "thresholds": "-",
        "acc_bits": "-", "weight_mem_bits": 0,
    }]
    for layer in net.layers:
        act = layer.activation
        rows.append({
            "layer": layer.name,
            "kind": layer.weight_kind.value,
            "shape": layer_shape(layer),
            "in_bits": layer.in_values.bits,
            "out_bits": act.out.bits if act is not None else 32,
            "weight_bits": layer.weight_bits,
            "thresholds": act.levels if act is not None else "float tail",
            "acc_bits": layer.acc_bits,
            "weight_mem_bits": layer.weight_memory_bits,
        })
    return rows


COLUMNS = [
    ("layer", "layer"), ("kind", "kind"), ("shape", "shape"), ("in_bits", "in bits"),
    ("out_bits", "out bits"), ("weight_bits", "w bits"), ("thresholds", "thresholds"),
    ("acc_bits", "acc bits"), ("weight_mem_bits", "weight mem bits"),
]


def format_table(rows: list[dict], columns=COLUMNS) -> str:
    cells = [[str(r[key]) for key, _ in columns] for r in rows]
    heads = [title for _, title in columns]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()  # noqa: E731
    return "\n".join([line(heads), line(["-" * w for w in widths]), *map(line, cells)])


def load_inputs(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"--inputs {path}: no such file")
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise InputFileError(f"--inputs {path}: not a .npy array ({type(exc).__name__})") from None
    if not isinstance(x, np.ndarray):
        raise InputFileError(f"--inputs {path}: holds several arrays; give one .npy array")
    return x


def save_outputs(path: str | os.PathLike, y: np.ndarray, protect: tuple = ()) -> None:
    """Write ``y`` atomically; refuse to write over any file in ``protect`` (the user's inputs)."""
    path = Path(path)
    for p in protect:
        if Path(p).exists() and path.exists() and path.resolve() == Path(p).resolve():
            raise InputFileError(f"--out {path}: is one of the input files; refusing to "
                                 f"overwrite it")
    if not path.parent.is_dir():
        raise InputFileError(f"--out {path}: folder {path.parent} does not exist")
    _write_atomic(path, y)


def resolve_folding(net: Network, spec: str | None = "auto", *, lut_budget: int | None = None,
                    fps: float | None = None, clock_mhz: float = 100.0,
                    label_select: bool = False, bram_budget: int | None = None,
                    family: str = "ice40", cell_budget: int | None = None):
    """``auto`` (fastest within ``lut_budget`` estimated LUTs, or cheapest reaching ``fps``) or a
    folding JSON file."""
    from lowbit.sim import perf

    if spec in (None, "auto"):
        return perf.auto_folding(net, lut_budget=lut_budget, target_fps=fps,
                                 clock_hz=clock_mhz * 1e6, label_select=label_select,
                                 bram_budget=bram_budget, family=family,
                                 cell_budget=cell_budget)
    folding = perf.load_folding(spec, net)
    if label_select and not folding.label_select:
        folding = perf.Folding(folding.layers, True)
        perf.validate_folding(net, folding)
    return folding


def device_budgets(target, lut_budget: int | None, fps: float | None,
                   reserve_bram: int = 0) -> dict:
    """What ``auto`` folding may use on a device: on iCE40 the binding limit is logic cells
    (LUTs + flip-flops, 70 % of the device: the estimate's error and routing need room), on ECP5
    LUTs (80 %); block RAMs less ``reserve_bram``. A user's ``--lut-budget`` or ``--fps`` wins."""
    if target is None or not target.luts:
        return {"lut_budget": lut_budget}
    budgets = {"lut_budget": lut_budget, "bram_budget": target.bram_blocks - reserve_bram}
    if lut_budget is None and fps is None:
        if target.family == "ice40":
            budgets["cell_budget"] = int(target.luts * 0.7)
        else:
            budgets["lut_budget"] = int(target.luts * 0.8)
    return budgets


def run_rtl(net: Network, folding, x: np.ndarray, *, stall_in: float = 0.0,
            stall_out: float = 0.0, seed: int = 1, bench: str = "cpp", family: str = "ice40",
            generated=None, progress=None):
    """Run frames through the Verilated design. Returns (outputs, accumulators or class indices,
    RtlResult, NetworkPerf). ``generated`` is ``generate(net, folding, family)`` if already made."""
    from lowbit.export.verilog import generate
    from lowbit.sim import host, rtl
    from lowbit.sw.reference import check_input

    x = check_input(net, x)
    if generated is None:
        if progress:
            progress("generating Verilog")
        generated = generate(net, folding, family)
    verilog, top = generated
    perf = top.perf
    beats = host.input_beats(net, perf, x)
    result = rtl.simulate(verilog, beats, len(x) * perf.out_beats, in_width=perf.in_width,
                          out_width=perf.out_width, stall_in=stall_in, stall_out=stall_out,
                          seed=seed, bench=bench, progress=progress)
    y, ints = host.decode_outputs(net, perf, result.outputs)
    return y, ints, result, perf


def run_model(net: Network, x: np.ndarray, engine: str = "reference", folding=None,
              family: str = "ice40", progress=None) -> tuple[np.ndarray, float]:
    """Run ``x`` through ``net``; returns the outputs and the seconds it took."""
    from lowbit.sw import reference

    start = time.perf_counter()
    if engine == "reference":
        y = reference.run(net, x)
    elif engine == "rtl":
        if folding is not None and folding.label_select:
            raise InputFileError("--engine rtl returns the model's outputs; drop label_select")
        y, _, result, _ = run_rtl(net, folding or resolve_folding(net), x, family=family,
                                  progress=progress)
        return y, result.seconds
    else:
        raise InputFileError(f"--engine {engine}: unknown engine")
    return y, time.perf_counter() - start


def perf_rows(perf) -> list[dict]:
    return [{
        "layer": lp.name, "engine": lp.engine, "MHxMW": f"{lp.mh}x{lp.mw}", "PE": lp.pe,
        "SIMD": lp.simd, "NF": lp.neuron_fold, "SF": lp.synapse_fold,
        "stages": lp.popcount_stages, "positions": lp.positions,
        "cycles": lp.compute_cycles,
        "zeros": f"{100 * lp.zero_weights:.0f}%" if lp.zero_weights else "-",
        "saved": (f"{100 * (1 - lp.cycles_per_frame / lp.dense_cycles):.0f}%"
                  if lp.cycles_per_frame < lp.dense_cycles else "-"),
        "II": lp.ii_cycles, "out_cycle": lp.last_out_cycle,
        "weights": lp.weight_storage, "mem_bits": lp.weight_memory_bits,
        "est_luts": lp.estimated_luts, "inputs": lp.input_storage,
    } for lp in perf.layers]


PERF_COLUMNS = [("layer", "layer"), ("engine", "engine"), ("MHxMW", "MHxMW"), ("PE", "PE"),
                ("SIMD", "SIMD"), ("NF", "NF"), ("SF", "SF"), ("stages", "tree stages"),
                ("positions", "positions"), ("cycles", "compute cycles/frame"),
                ("zeros", "w=0"), ("saved", "cycles saved"),
                ("II", "II"), ("out_cycle", "last out cycle"), ("weights", "weights"),
                ("inputs", "input banks"), ("mem_bits", "weight bits"),
                ("est_luts", "est. LUTs")]


def report_markdown(net: Network, perf, folding, clock_mhz: float = 100.0) -> str:
    rows = perf_rows(perf)
    head = "| " + " | ".join(t for _, t in PERF_COLUMNS) + " |"
    sep = "|" + "---|" * len(PERF_COLUMNS)
    body = ["| " + " | ".join(str(r[k]) for k, _ in PERF_COLUMNS) + " |" for r in rows]
    fps = clock_mhz * 1e6 / perf.ii_cycles
    return "\n".join([
        f"# lowbit report: {Path(net.source).name}",
        "",
        f"- layers: {len(net.layers)}; input {net.input_shape} float, quantized on the host to "
        f"{perf.in_beats} beats of {perf.in_width} bits",
        f"- initiation interval: **{perf.ii_cycles} cycles** "
        f"({fps:,.0f} frames/s at {clock_mhz:g} MHz)",
        f"- latency: **{perf.latency_cycles} cycles** ({perf.latency_cycles / clock_mhz:.2f} µs "
        f"at {clock_mhz:g} MHz), first input beat to last output beat",
        f"- output: {perf.out_beats} beats of {perf.out_width} bits "
        + ("(class index)" if perf.label_select else "(signed accumulators; the host applies "
                                                      "the float tail)"),
        f"- estimated LUTs: {perf.estimated_luts:,} (first-order model, not yet calibrated "
        f"against synthesis)",
        "- FIFOs between layers: none needed (each unit double-buffers its input frame"
        + (f"; window generators hold {sum(lp.window_storage_bits for lp in perf.layers):,} "
           f"bits of frame banks" if any(lp.positions > 1 for lp in perf.layers) else "") + ")",
        "",
        head, sep, *body, "",
        "Engines: `xnor` XNOR-popcount, `addsub` binary weights on multi-bit inputs, `ternary` "
        "zero-skip, `shift` power-of-two shift-add, `multiply` integer weights. `w=0`: the share "
        "of zero weights; `cycles saved`: what the compacted schedule saves against NF·SF "
        "(unrolled layers drop zero terms from the adder tree instead).",
        "",
        "Cycles come from `lowbit.sim.perf`; `lowbit simulate --rtl` measures the same numbers "
        "on the Verilated design.",
        "",
    ])


def compile_model(net: Network, out: str | os.PathLike, folding, *, protect: tuple = (),
                  clock_mhz: float = 100.0, family: str = "ice40", progress=print) -> tuple:
    """Write lowbit_top.v, folding.json, report.json, report.md and report.html into ``out``.

    Returns the report and ``(verilog, top)`` for :func:`run_rtl` to reuse."""
    import json

    from lowbit.export.verilog import generate

    out = output_folder(out)
    names = ["lowbit_top.v", "folding.json", "report.json", "report.md", "report.html"]
    for p in protect:
        if p and Path(p).exists() and any(
                (out / n).exists() and (out / n).resolve() == Path(p).resolve() for n in names):
            raise InputFileError(f"-o {out}: would overwrite your input {p}; choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    progress(f"generating Verilog for {len(net.layers)} layers")
    start = time.perf_counter()
    verilog, top = generate(net, folding, family)
    seconds = time.perf_counter() - start
    perf = top.perf
    report = {
        "model": str(net.source),
        "family": family,
        "clock_mhz_assumed": clock_mhz,
        "frames_per_s_at_clock": clock_mhz * 1e6 / perf.ii_cycles,
        "verilog_seconds": round(seconds, 3),
        **perf.to_json(),
    }
    files = {
        "lowbit_top.v": verilog,
        "folding.json": json.dumps(folding.to_json(), indent=2) + "\n",
        "report.json": json.dumps(report, indent=2) + "\n",
        "report.md": report_markdown(net, perf, folding, clock_mhz),
    }
    for name, text in files.items():
        _write_atomic(out / name, text)
    from lowbit.report import write_html

    write_html(out / "report.html", net, perf, folding, clock_mhz=clock_mhz)
    progress(f"wrote {', '.join(str(out / n) for n in names)} ({seconds:.1f} s)")
    return report, (verilog, top)


def output_folder(out: str | os.PathLike) -> Path:
    """The ``-o`` folder; refuses a path that is an existing file (never overwritten)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputFileError(f"-o {out}: exists and is not a folder")
    return out


def _write_atomic(path: Path, content: str | np.ndarray) -> None:
    """Write text (or an array as .npy) beside ``path``, then rename: no half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w" if isinstance(content, str) else "wb") as f:
            if isinstance(content, str):
                f.write(content)
            else:
                np.save(f, content)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a normal file is what users expect
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
