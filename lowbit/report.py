"""How lowbit shows a design to a person: tables for the terminal, Markdown, and HTML pages.

Everything here turns objects into text (rows, tables, a Markdown report, a self-contained HTML
page with the per-layer table and plots); nothing here writes a file or runs a tool, and nothing
here imports the flows. The plots are PNGs drawn with matplotlib and embedded as data URIs, so a
page can be mailed or opened from anywhere.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

__all__ = ["layer_shape", "inspect_rows", "COLUMNS", "format_table", "perf_rows",
           "PERF_COLUMNS", "ENGINE_LEGEND", "report_markdown", "html_page", "layer_table_html",
           "buffer_bits"]

ENGINE_LEGEND = ("Engines: xnor = XNOR-popcount, addsub = binary weights on multi-bit inputs, "
                 "ternary = zero-skip, shift = power-of-two shift-add, multiply = integer "
                 "weights.")


def _describe_quantizer(q) -> str:
    if q.kind != "int":
        return q.kind
    sign = "int" if q.signed else "uint"
    return f"{sign}{q.bit_width}{' narrow' if q.narrow else ''} x{q.scale:g}"


def _window_kind(perf) -> str:
    """What the window generators keep: line buffers (rows), frame banks, or both."""
    kinds = {lp.line_buffer for lp in perf.layers if lp.positions > 1}
    if kinds == {True}:
        return "line buffers (rows of the map, not frames)"
    return "frame banks" if kinds == {False} else "line buffers and frame banks"


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


def inspect_rows(net) -> list[dict]:
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
    """Rows as a fixed-width text table with a header line."""
    cells = [[str(r[key]) for key, _ in columns] for r in rows]
    heads = [title for _, title in columns]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()  # noqa: E731
    return "\n".join([line(heads), line(["-" * w for w in widths]), *map(line, cells)])


def perf_rows(perf) -> list[dict]:
    """One row per layer of the cycle model and the estimates."""
    return [{
        "layer": lp.name,
        "engine": (f"{lp.engine} ({lp.planes_per_cycle}/{lp.in_bits} planes)"
                   if lp.planes_per_cycle else lp.engine), "MHxMW": f"{lp.mh}x{lp.mw}", "PE": lp.pe,
        "SIMD": lp.simd, "NF": lp.neuron_fold, "SF": lp.synapse_fold,
        "stages": lp.tree_stages, "positions": lp.positions,
        "cycles": lp.compute_cycles,
        "zeros": f"{100 * lp.zero_weights:.0f}%" if lp.zero_weights else "-",
        "saved": (f"{100 * (1 - lp.schedule_steps / lp.dense_steps):.0f}%"
                  if lp.schedule_steps < lp.dense_steps else "-"),
        "II": lp.ii_cycles, "out_cycle": lp.last_out_cycle,
        "weights": lp.weight_storage, "mem_bits": lp.weight_memory_bits,
        "est_luts": lp.estimated_luts, "inputs": lp.input_storage,
        "buffer_bits": lp.buffer_bits,
    } for lp in perf.layers]


PERF_COLUMNS = [("layer", "layer"), ("engine", "engine"), ("MHxMW", "MHxMW"), ("PE", "PE"),
                ("SIMD", "SIMD"), ("NF", "NF"), ("SF", "SF"), ("stages", "tree stages"),
                ("positions", "positions"), ("cycles", "compute cycles/frame"),
                ("zeros", "w=0"), ("saved", "cycles saved"),
                ("II", "II"), ("out_cycle", "last out cycle"), ("weights", "weights"),
                ("inputs", "input banks"), ("buffer_bits", "buffer bits"),
                ("mem_bits", "weight bits"),
                ("est_luts", "est. LUTs")]


def buffer_bits(perf) -> int:
    """Bits of every buffer: window-generator frame banks, pool rows and units' input banks."""
    return perf.buffer_bits


def report_markdown(net, perf, clock_mhz: float = 100.0) -> str:
    """``report.md``: the summary and the per-layer cycle table."""
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
           f"bits of {_window_kind(perf)}" if any(lp.positions > 1 for lp in perf.layers)
           else "") + ")",
        "",
        head, sep, *body, "",
        ENGINE_LEGEND.replace(" = ", " ") + " `w=0`: the share of zero weights; `cycles "
        "saved`: what the compacted schedule saves against NF·SF (unrolled layers drop zero "
        "terms from the adder tree instead). `buffer bits`: the window generator's line "
        "buffer (or frame banks), the pool's row of partial maxima and the unit's two input banks.",
        "",
        "Cycles come from `lowbit.sim.timing`; `lowbit simulate --rtl` measures the same "
        "numbers on the Verilated design.",
        "",
    ])


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
    dense = [lp.positions * lp.dense_steps for lp in perf.layers]
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


def layer_table_html(perf) -> str:
    """The per-layer cycle table as an HTML table."""
    esc = html.escape
    table = ["<table><tr>" + "".join(f"<th>{esc(t)}</th>" for _, t in PERF_COLUMNS) + "</tr>"]
    for r in perf_rows(perf):
        table.append("<tr>" + "".join(f"<td>{esc(str(r[k]))}</td>" for k, _ in PERF_COLUMNS)
                     + "</tr>")
    table.append("</table>")
    return "".join(table)


def html_page(net, perf, *, clock_mhz: float = 100.0, synth: dict | None = None,
              rtl: dict | None = None, extra: tuple = ()) -> str:
    """``report.html``; ``synth`` is ``lowbit synth``'s summary, ``rtl`` measured cycles,
    ``extra`` more (name, text) rows for the summary table."""
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
    images = "".join(f'<figure><img alt="{esc(t)}" src="{src}"></figure>'
                     for t, src in _plots(perf, synth))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>lowbit report: {esc(facts[0][1])}</title>
<style>{STYLE}</style></head><body>
<h1>lowbit report: {esc(facts[0][1])}</h1>
<table class="facts">{''.join(f'<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>' for k, v in facts)}
</table>
<h2>Layers</h2>
{layer_table_html(perf)}
<p class="note">Cycles come from <code>lowbit.sim.timing</code> and equal the RTL's.
{ENGINE_LEGEND} LUT figures marked estimated come from lowbit's resource model.</p>
<h2>Plots</h2>
{images}
</body></html>
"""
    return page
