"""Random networks × random foldings × random stalls in Verilator: RTL == reference and
measured cycles == model, every engine, dense and convolutional.

Each configuration (one seed makes it again: ``--replay SEED``) draws a network from
``lowbit.sw.synthetic`` (an MLP of 2–4 layers, or a CNN: one or two convolutions of kernel 1–3,
stride 1–2, padding 0–1, an optional 2 × 2 max pool, then dense layers), a weight kind
(binary, ternary, TTQ, power-of-two, int4) with random sparsity, 1- to 3-bit activations and a
1- to 8-bit input; then a random folding (PE and SIMD from each layer's divisors, tree stages,
zero skipping on or off, operand registers on ECP5, weight ROMs in logic), a family and
sometimes a label-select stage. It runs four frames with the input offered every cycle and the
output always ready (outputs == reference, II and latency == the model) and the same frames
under random stalls on both sides (outputs == reference, nothing lost). Writes
bench/results/fuzz_rtl.json, the result so far every 25 configurations.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import traceback
from pathlib import Path

import numpy as np

WEIGHTS = ("binary", "ternary", "ttq", "pow2", "int4")


def network(rng: random.Random):
    """A random model (an onnx.ModelProto) and a description."""
    from lowbit.sw.synthetic import conv_net, quant_mlp

    weights = rng.choice(WEIGHTS)
    act_bits = rng.choice([1, 1, 2, 3])
    in_bits = rng.choice([1, 1, 2, 4, 8])
    sparsity = 0.0 if weights == "binary" else rng.choice([0.2, 0.5, 0.8])
    seed = rng.randrange(1 << 16)
    if rng.random() < 0.5:
        sizes = tuple(rng.choice([4, 6, 8, 9, 12, 16, 20, 24])
                      for _ in range(rng.randint(3, 4)))
        model = quant_mlp(sizes, weights=weights, act_bits=act_bits, in_bits=in_bits,
                          act_signed=rng.random() < 0.3, sparsity=sparsity, seed=seed)
        return model, {"kind": "mlp", "sizes": sizes, "weights": weights,
                       "act_bits": act_bits, "in_bits": in_bits, "sparsity": sparsity}
    c, h = rng.randint(1, 3), rng.randint(5, 8)
    w = rng.randint(5, 8)
    layers, size = [], (h, w)
    for k in range(rng.randint(1, 2)):
        kernel = rng.randint(1, min(3, *size))
        stride = rng.choice([1, 1, 2])
        pad = rng.choice([0, 1]) if kernel > 1 else 0
        layers.append(("conv", rng.randint(2, 6), kernel, stride, pad))
        size = tuple((s + 2 * pad - kernel) // stride + 1 for s in size)
        if min(size) >= 4 and rng.random() < 0.5:
            layers.append(("pool", 2))
            size = tuple(s // 2 for s in size)
    if rng.random() < 0.4:
        layers.append(("fc", rng.choice([6, 8, 12])))
    layers.append(("fc", rng.choice([3, 4, 5])))
    model = conv_net((c, h, w), tuple(layers), weights=weights, act_bits=act_bits,
                     in_bits=in_bits, sparsity=sparsity, seed=seed)
    return model, {"kind": "cnn", "input": (c, h, w), "layers": layers, "weights": weights,
                   "act_bits": act_bits, "in_bits": in_bits, "sparsity": sparsity}


def folding(net, rng: random.Random, family: str):
    from lowbit.hw.engines import engine
    from lowbit.hw.plan import Folding, LayerFolding, divisors, tree_levels

    layers = []
    for layer in net.layers:
        pe = rng.choice(divisors(layer.out_features))
        simd = rng.choice(divisors(layer.in_features))
        stages = rng.choice([None, 0, tree_levels(layer, simd)])
        register = (family == "ecp5" and engine(layer) == "xnor" and rng.random() < 0.5) or None
        layers.append(LayerFolding(layer.name, pe, simd, stages,
                                   rng.choice([None, False]), register,
                                   lut_weights=rng.random() < 0.25 or None))
    return Folding(tuple(layers), label_select=rng.random() < 0.2,
                   line_buffers=rng.random() < 0.8)


def check(case_seed: int) -> dict:
    import lowbit
    from lowbit.errors import FoldingError

    rng = random.Random(case_seed)
    model, description = network(rng)
    net = lowbit.load(model)
    family = rng.choice(["ice40", "ecp5"])
    f = folding(net, rng, family)
    try:
        design = lowbit.compile(net, f, family=family)
    except FoldingError:  # a tail that is not one increasing map cannot take label select
        design = lowbit.compile(net, type(f)(f.layers, False), family=family)
    x = np.random.default_rng(case_seed).random((4, *net.input_shape), dtype=np.float32)
    free = design.simulate(x)
    p_in, p_out = rng.choice([0.2, 0.5]), rng.choice([0.3, 0.6])
    stalled = design.simulate(x, stall_in=p_in, stall_out=p_out, seed=case_seed)
    return {"case_seed": case_seed, **description, "family": family,
            "engines": [lp.engine for lp in design.perf.layers],
            "pe_simd": [(lf.pe, lf.simd) for lf in design.folding.layers],
            "label_select": design.folding.label_select,
            "outputs_equal": free.outputs_equal, "cycles_equal": free.cycles_equal,
            "ii": [design.perf.ii_cycles, free.ii_cycles],
            "latency": [design.perf.latency_cycles, free.latency_cycles],
            "stalled_outputs_equal": stalled.outputs_equal, "stalls": [p_in, p_out]}


def run(count: int, seed: int, progress: bool = True, save=None) -> dict:
    """``save(result)`` is called every 25 configurations with the result so far."""
    rng = random.Random(seed)
    rows, failures = [], []
    start = time.perf_counter()
    for k in range(count):
        case_seed = rng.randrange(1 << 30)
        try:
            row = check(case_seed)
            ok = row["outputs_equal"] and row["cycles_equal"] and row["stalled_outputs_equal"]
        except Exception:
            row = {"case_seed": case_seed, "error": traceback.format_exc()[-600:]}
            ok = False
        rows.append(row)
        if not ok:
            failures.append(row)
            if progress:
                print(f"FAIL seed {case_seed}: {row}", flush=True)
        if (k + 1) % 25 == 0:
            if progress:
                print(f"{k + 1}/{count} in {time.perf_counter() - start:.0f} s, "
                      f"{len(failures)} failures", flush=True)
            if save is not None and k + 1 < count:
                save(_summary(rows, failures, seed, start))
    return _summary(rows, failures, seed, start)


def _summary(rows: list, failures: list, seed: int, start: float) -> dict:
    engines = sorted({e for r in rows for e in r.get("engines", [])})
    return {"configurations": len(rows), "seed": seed, "failures": failures,
            "mismatches": sum(not r.get("outputs_equal", False)
                              or not r.get("stalled_outputs_equal", False) for r in rows),
            "cycle_differences": sum(not r.get("cycles_equal", False) for r in rows),
            "engines_seen": engines,
            "convolutions": sum(r.get("kind") == "cnn" for r in rows),
            "seconds": round(time.perf_counter() - start, 1), "runs": rows}


def main():
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _common import write_result

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replay", type=int, help="run one configuration from its seed")
    args = parser.parse_args()
    if args.replay is not None:
        print(check(args.replay))
        return
    result = run(args.count, args.seed, save=lambda partial: write_result("fuzz_rtl", partial))
    print({k: v for k, v in result.items() if k not in ("runs", "failures")})
    write_result("fuzz_rtl", result)


if __name__ == "__main__":
    main()
