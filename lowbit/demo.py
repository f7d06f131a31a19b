"""``lowbit demo`` (``lowbit.demo.run()``): the whole flow on the built-in model, core install.

The built-in model is a BNN (64-128-128-10) that ``lowbit train --method bnn --arch 128,128``
trained on scikit-learn's digits. The demo imports it, checks the bit-exact reference's accuracy
on the 360 test images, compiles it for an iCE40 UP5K, runs every test image through the
Verilated RTL (bit for bit, with the measured cycles beside the model's), synthesizes it with
yosys and nextpnr and writes ``report.html``. Nothing here needs torch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from . import api, report
from .output import OutputFolder

__all__ = ["run", "DemoResult"]


@dataclass
class DemoResult:
    report: Path
    correct: int
    images: int
    rtl_equal: bool
    cycles_equal: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return self.rtl_equal and self.cycles_equal


def run(out="lowbit-demo", *, force: bool = False, say=print, progress=None) -> DemoResult:
    """Run the demo into the folder ``out``; ``say`` prints each step's report."""
    from lowbit.sw.datasets import load_digits_split

    start = time.perf_counter()
    folder = OutputFolder(out, force=force).check("report.html")
    import lowbit

    model = lowbit.BUILT_IN_MODEL
    say("[1/7] the built-in model: a BNN (64-128-128-10) trained by `lowbit train --method bnn "
        "--arch 128,128` on scikit-learn's digits")
    net = api.load(model)
    say(report.format_table(report.inspect_rows(net)))

    data = load_digits_split()
    x, labels = data.x_test, data.y_test
    y = api.run(net, x)
    correct = int((y.argmax(1) == labels).sum())
    say(f"[2/7] bit-exact reference on the {len(x)} digits test images: {correct}/{len(x)} = "
        f"{100 * correct / len(x):.2f}% top-1")

    design = api.compile(net, target="ice40-up5k", clock_mhz=12.0)
    say(f"[3/7] compiling to Verilog in {folder.path / 'hw'} (auto folding for an iCE40 UP5K)")
    design.write(folder.subfolder("hw"), force=force, progress=progress)

    say(f"[4/7] Verilator: the {len(x)} test images through the RTL")
    sim = design.simulate(x, progress=progress)
    say(f"      RTL outputs {'==' if sim.outputs_equal else '!='} reference on all {len(x)} "
        f"images (bit-exact, {len(x) * net.layers[-1].out_features:,} values compared)")

    perf = design.perf
    say("[5/7] cycle report (lowbit.sim.timing; measured in the RTL beside it)")
    say(report.format_table(report.perf_rows(perf), report.PERF_COLUMNS))
    say(f"      model II {perf.ii_cycles} cycles, latency {perf.latency_cycles} cycles; RTL "
        f"measured II {sim.ii_cycles}, latency {sim.latency_cycles}: "
        f"{'equal' if sim.cycles_equal else 'DIFFERENT'}")

    say("[6/7] synthesis for an iCE40 UP5K with yosys and nextpnr (YoWASP)")
    synthesis = design.synthesize(out=folder.subfolder("synth"), force=force, progress=progress)
    synth = synthesis.result
    say(f"      {synth.luts:,} LUT4 (estimate {perf.estimated_luts:,}), {synth.ffs:,} FF, "
        f"{synth.bram_blocks} block RAM, {synth.logic_cells:,} / {design.target.luts:,} logic "
        f"cells; fmax {synth.fmax_mhz} MHz: {synthesis.frames_per_s or 0:,.0f} frames/s")

    page = design.html(
        synth=synthesis.to_json(), rtl={"ii_cycles": sim.ii_cycles,
                                        "latency_cycles": sim.latency_cycles},
        extra=[("digits test top-1", f"{correct}/{len(x)} = {100 * correct / len(x):.2f}% "
                f"(reference; the RTL "
                f"{'matches it bit for bit' if sim.outputs_equal else 'DIFFERS'})")])
    path = folder.write("report.html", page)
    seconds = time.perf_counter() - start
    say(f"[7/7] report: {path} ({seconds:.0f} s in all)")
    return DemoResult(path, correct, len(x), sim.outputs_equal, sim.cycles_equal, seconds)
