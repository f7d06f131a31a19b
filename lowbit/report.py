"""``report.html``: one self-contained page per design, with the per-layer table and plots.

The plots are PNGs drawn with matplotlib and embedded as data URIs, so the file can be mailed or
opened from anywhere.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

__all__ = ["write_html"]

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
.facts td { text-align: left; } .facts td:first-child { font-weight: 600; }
figure { display: inline-block; margin: 0 1em 1em 0; vertical-align: top; }
img { max-width: 100%; } .note { color: #555; font-size: 0.85em; max-width: 900px; }
"""


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _plots(perf, synth: dict | None) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [lp.name for lp in perf.layers]
    x = range(len(names))
    plots = []

    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    dense = [lp.positions * lp.dense_cycles for lp in perf.layers]
    cycles = [lp.compute_cycles for lp in perf.layers]
    ax.bar([i - 0.2 for i in x], dense, 0.4, label="NF·SF (no zero-skip)", color="#bbb")
    ax.bar([i + 0.2 for i in x], cycles, 0.4, label="schedule", color="#1f77b4")
    ax.axhline(perf.ii_cycles, color="#d62728", ls="--", lw=1,
               label=f"network II = {perf.ii_cycles}")
    ax.set_xticks(list(x), names, rotation=20, fontsize=8)
    ax.set_ylabel("cycles per frame")
    ax.set_title("Cycles per layer")
    ax.set_ylim(0, max(dense + [perf.ii_cycles]) * 1.45)
    ax.legend(fontsize=8, loc="upper left", ncol=2)
    plots.append(("Cycles per layer", _png(fig)))

    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    luts = [lp.estimated_luts for lp in perf.layers]
    mem = [lp.weight_memory_bits / 1000 for lp in perf.layers]
    ax.bar([i - 0.2 for i in x], luts, 0.4, label="estimated LUT4", color="#2ca02c")
    ax2 = ax.twinx()
    ax2.bar([i + 0.2 for i in x], mem, 0.4, label="weight kbit", color="#ff7f0e")
    ax.set_xticks(list(x), names, rotation=20, fontsize=8)
    ax.set_ylabel("estimated LUT4")
    ax2.set_ylabel("weight memory (kbit)")
    ax.set_ylim(0, max(luts) * 1.3)
    ax2.set_ylim(0, max(mem) * 1.3)
    ax.set_title("Resources per layer")
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles, ["estimated LUT4", "weight kbit"], fontsize=8, loc="upper right")
    plots.append(("Resources per layer", _png(fig)))

    if synth and synth.get("luts"):
        fig, ax = plt.subplots(figsize=(4.2, 3.2))
        ax.bar(["estimate", "synthesized"], [perf.estimated_luts, synth["luts"]],
               color=["#2ca02c", "#9467bd"])
        for i, v in enumerate([perf.estimated_luts, synth["luts"]]):
            ax.text(i, v, f"{v:,}", ha="center", va="bottom", fontsize=9)
        ax.set_ylabel("LUT4")
        ax.set_ylim(0, max(perf.estimated_luts, synth["luts"]) * 1.15)
        ax.set_title(f"Estimate vs actual ({synth.get('target', '')})")
        plots.append(("Estimate vs actual", _png(fig)))
    return plots


def write_html(path: str | Path, net, perf, folding, *, clock_mhz: float = 100.0,
               synth: dict | None = None, rtl: dict | None = None,
               extra: tuple = ()) -> Path:
    """Write the report; ``synth`` is ``lowbit synth``'s summary, ``rtl`` measured cycles,
    ``extra`` more (name, text) rows for the summary table."""
    from lowbit.flows import PERF_COLUMNS, layer_shape, perf_rows

    path = Path(path)
    esc = html.escape
    fps = clock_mhz * 1e6 / perf.ii_cycles
    facts = [
        ("model", Path(str(net.source)).name),
        ("layers", f"{len(net.layers)}: " + ", ".join(
            (f"{lp.mw}→{lp.mh}" if layer.window is None else layer_shape(layer).split(":")[0]
             + f" →{lp.mh}") + f" {lp.engine}" for layer, lp in zip(net.layers, perf.layers))),
        ("initiation interval", f"{perf.ii_cycles:,} cycles: {fps:,.0f} frames/s at "
                                f"{clock_mhz:g} MHz"),
        ("latency", f"{perf.latency_cycles:,} cycles ({perf.latency_cycles / clock_mhz:.2f} µs "
                    f"at {clock_mhz:g} MHz)"),
        ("estimated LUT4", f"{perf.estimated_luts:,}"),
        ("output", "class index (label select)" if perf.label_select
         else f"{net.layers[-1].out_features} accumulators, float tail on the host"),
    ]
    facts += list(extra)
    if rtl:
        same = (rtl.get("ii_cycles") == perf.ii_cycles
                and rtl.get("latency_cycles") == perf.latency_cycles)
        facts.append(("measured in Verilator", f"II {rtl.get('ii_cycles')}, latency "
                      f"{rtl.get('latency_cycles')}: {'equal to' if same else 'DIFFERENT from'} "
                      f"the model"))
    if synth and synth.get("fmax_mhz"):
        facts += [
            ("target", esc(str(synth.get("target")))),
            ("synthesized", f"{synth['luts']:,} LUT4, {synth['ffs']:,} FF, "
                            f"{synth.get('bram_blocks', 0)} block RAM, "
                            f"{synth.get('logic_cells') or 0:,} logic cells placed"),
            ("fmax", f"{synth['fmax_mhz']:.1f} MHz: {synth['fmax_mhz'] * 1e6 / perf.ii_cycles:,.0f}"
                     f" frames/s, latency {perf.latency_cycles / synth['fmax_mhz']:.2f} µs"),
        ]
    rows = perf_rows(perf)
    table = ["<table><tr>" + "".join(f"<th>{esc(t)}</th>" for _, t in PERF_COLUMNS) + "</tr>"]
    for r in rows:
        table.append("<tr>" + "".join(f"<td>{esc(str(r[k]))}</td>" for k, _ in PERF_COLUMNS)
                     + "</tr>")
    table.append("</table>")
    images = "".join(f'<figure><img alt="{esc(t)}" src="{src}"></figure>'
                     for t, src in _plots(perf, synth))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>lowbit report: {esc(facts[0][1])}</title>
<style>{STYLE}</style></head><body>
<h1>lowbit report: {esc(facts[0][1])}</h1>
<table class="facts">{''.join(f'<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>' for k, v in facts)}
</table>
<h2>Layers</h2>
{''.join(table)}
<p class="note">Cycles come from <code>lowbit.sim.perf</code> and equal the RTL's. Engines:
xnor = XNOR-popcount, addsub = binary weights on multi-bit inputs, ternary = zero-skip,
shift = power-of-two shift-add, multiply = integer weights. LUT figures marked estimated come
from lowbit's resource model.</p>
<h2>Plots</h2>
{images}
</body></html>
"""
    path.write_text(page)
    return path
