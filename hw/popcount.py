"""Popcount as a compressor tree sized for 4-input LUTs.

The first level groups the input bits in threes: each group is a full adder (two 3-input LUTs)
giving a 2-bit count. The counts are then summed by a balanced tree of adders whose sums are
kept as separate wires, so synthesis maps each one onto the FPGA's carry chain (one LUT per result
bit on iCE40 and ECP5) instead of merging everything into one large multi-operand adder built
from LUT full adders.

Pipeline registers can be placed between levels; they advance only while ``en`` is high, so a
stalled pipeline holds its contents.
"""

from __future__ import annotations

import math

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .adder import pairwise_sums
from .pipeline import TreeStages, register

__all__ = ["Popcount", "popcount_tree", "popcount_levels", "popcount_size", "STYLES"]

KEEP = {"keep": 1}  # each full adder and pairwise sum stays its own group of LUTs


def popcount_levels(width: int) -> int:
    """Levels of the tree for ``width`` inputs: the full-adder level plus the adder levels."""
    groups = width // 3 + (width % 3)
    levels = 1
    while groups > 1:
        groups = (groups + 1) // 2
        levels += 1
    return levels


STYLES = ("carry", "wallace")
WALLACE_GROUP = 16  # lanes per flat sum before a wallace tree's first register


def wallace_levels(width: int, stages: int) -> list[list[int]]:
    """The registered levels of a ``wallace`` popcount of ``width`` lanes with ``stages``
    registers, as the lanes each registered value counts: past :data:`WALLACE_GROUP` lanes the
    first register holds flat sums of that many lanes, and each further one sums groups of the
    level before it, as many as spreads the remaining registers evenly (``r = ⌈n^(1/s)⌉`` of
    ``n`` values with ``s`` registers left); registers left when one value remains stack on
    it."""
    if not stages:
        return []
    if width <= WALLACE_GROUP:
        return [[width]] * stages
    values = [min(WALLACE_GROUP, width - k) for k in range(0, width, WALLACE_GROUP)]
    levels = [values]
    for left in range(stages - 1, 0, -1):
        if len(values) > 1:
            r = max(2, math.ceil(len(values) ** (1 / left) - 1e-9))
            values = [sum(values[k:k + r]) for k in range(0, len(values), r)]
        levels.append(values)
    return levels


def _cuts(levels: int, stages: int) -> list[int]:
    """Levels after which the tree's ``stages`` registers go: spread evenly over the levels,
    more stages than distinct positions stacked at the end."""
    cuts = {round((k + 1) * levels / (stages + 1)) - 1 for k in range(stages)}
    cuts = sorted(min(max(c, 0), levels - 1) for c in cuts)
    while len(cuts) < stages:
        cuts.append(levels - 1)
    return cuts


def popcount_size(width: int, stages: int = 0, style: str = "carry") -> tuple[int, int]:
    """``(logic bits, register bits)`` of :func:`popcount_tree`: for ``carry`` the full adders'
    two outputs per group of three plus the result bits of every pairwise sum (one LUT4 each),
    for ``wallace`` the input bits (yosys's full adders); and the bits its pipeline registers
    hold."""
    if style == "wallace":
        return width, sum(v.bit_length() for level in wallace_levels(width, stages)
                          for v in level)
    widths = [2] * (width // 3) + [1] * (width % 3)
    sums, registers = pairwise_sums(widths, _cuts(popcount_levels(width), stages))
    return 2 * (width // 3) + sums, registers


def popcount_tree(m: Module, bits: Value, *, stages: int = 0, en: Value = 1,
                  domain: str = "sync", name: str = "pc", style: str = "carry") -> Value:
    """Build the tree in ``m``; returns the count, ``stages`` clock cycles after ``bits``.

    ``style="carry"`` (iCE40) is the full-adder level plus kept carry-chain adders described above.
    ``style="wallace"`` (ECP5) leaves the whole sum to yosys, which builds a Wallace tree of LUT
    full adders; mapped without wide-LUT muxes (``synth_ecp5 -nowidelut``) that is the smaller
    choice on ECP5. Its pipeline registers split it into levels of flat sums
    (:func:`wallace_levels`): past :data:`WALLACE_GROUP` lanes, sums of 16-lane groups, then
    sums of groups of those (CNV_1W1A's 576-lane popcounts at three stages: 36 sums of 16
    lanes, 6 of 96, one of 576; a flat sum of 32 lanes after a LUT-ROM read was its critical
    path, 15.6 ns, with the later sums in one unregistered tree).
    """
    width = len(bits)
    levels = popcount_levels(width)
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, not {style!r}")
    if not 0 <= stages <= levels:
        raise ValueError(f"popcount of {width} bits has {levels} levels; stages must be "
                         f"0..{levels}, not {stages}")
    tree = TreeStages(m, _cuts(levels, stages), en, domain, name)
    source = Signal(width, name=f"{name}_in")  # slice a signal, not a compound expression
    m.d.comb += source.eq(bits)
    bits = source

    if style == "wallace":
        # flat sums (yosys builds each as a Wallace tree), registered level by level
        # (wallace_levels): g-lane groups, then sums of groups of the level before
        values, counts = [bits[k] for k in range(width)], [1] * width
        for n, level in enumerate(wallace_levels(width, stages)):
            sums, k = [], 0
            for lanes in level:
                take = 0
                group = []
                while take < lanes:
                    group.append(values[k])
                    take += counts[k]
                    k += 1
                part = Signal(range(lanes + 1), name=f"{name}_s{n}_{len(sums)}")
                m.d.comb += part.eq(sum(group))
                sums.append(part)
            values = register(m, sums, en, domain, f"{name}_g", tree.counter)
            counts = level
        if len(values) == 1 and stages:
            return values[0]
        total = Signal(range(width + 1), name=f"{name}_sum")
        m.d.comb += total.eq(sum(values))
        return total

    values = []
    for k in range(0, width - width % 3, 3):
        a, b, c = bits[k], bits[k + 1], bits[k + 2]
        values.append(tree.wire(Cat(a ^ b ^ c, (a & b) | (a & c) | (b & c)), 2, KEEP))
    values += [bits[k] for k in range(width - width % 3, width)]
    if not values:
        values = [Value.cast(0)]
    values = tree.cut(0, values)
    level = 1
    while len(values) > 1:
        nxt = []
        for k in range(0, len(values) - 1, 2):
            a, b = values[k], values[k + 1]
            nxt.append(tree.wire(a + b, max(len(a), len(b)) + 1, KEEP))
        if len(values) % 2:
            nxt.append(values[-1])
        values = tree.cut(level, nxt)
        level += 1
    return values[0]


class Popcount(wiring.Component):
    """Counts the ones of ``i``; ``o`` follows ``i`` by ``stages`` cycles (while ``en``).

    Parameters
    ----------
    width : int
    stages : int
        Pipeline registers, 0 (combinational) to :func:`popcount_levels`.
    """

    def __init__(self, width: int, stages: int = 0, style: str = "carry"):
        if width < 1:
            raise ValueError(f"width must be at least 1, not {width}")
        self.width, self.stages, self.style = width, stages, style
        if not 0 <= stages <= popcount_levels(width):
            raise ValueError(f"stages must be 0..{popcount_levels(width)}, not {stages}")
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, not {style!r}")
        super().__init__({"i": In(width), "en": In(1, init=1), "o": Out(range(width + 1))})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.o.eq(popcount_tree(m, self.i, stages=self.stages, en=self.en,
                                            style=self.style))
        return m
