"""A balanced adder tree over signed terms, with optional pipeline registers between levels."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, Value, signed

from .pipeline import TreeStages

__all__ = ["adder_tree", "adder_levels", "adder_tree_size", "pairwise_sums", "tree_cuts"]


def _signed(v: Value) -> Value:
    return v if v.shape().signed else Cat(v, Const(0, 1)).as_signed()


def adder_levels(terms: int) -> int:
    """Levels of pairwise adders for ``terms`` operands (0 for one operand)."""
    return max(0, (max(terms, 1) - 1).bit_length())


def tree_cuts(levels: int, stages: int) -> list[int]:
    """The levels after which an adder tree of ``levels`` levels has its ``stages`` registers:
    spread evenly; stages beyond the tree's levels stack after its last level."""
    return sorted(min(round((k + 1) * levels / (stages + 1)), levels) for k in range(stages))


def pairwise_sums(widths: list[int], cuts: list[int]) -> tuple[int, int]:
    """``(sum bits, register bits)`` of a balanced tree of pairwise sums over values of
    ``widths`` bits (each sum one bit wider than its wider operand, an odd value passed on),
    with registers after the levels in ``cuts`` (level 0: the values themselves)."""
    widths = list(widths) or [1]
    sums, registers = 0, cuts.count(0) * sum(widths)
    level = 1
    while len(widths) > 1:
        nxt = [max(widths[k], widths[k + 1]) + 1 for k in range(0, len(widths) - 1, 2)]
        sums += sum(nxt)
        if len(widths) % 2:
            nxt.append(widths[-1])
        widths = nxt
        registers += cuts.count(level) * sum(widths)
        level += 1
    return sums, registers


def adder_tree_size(widths: list[int], stages: int = 0) -> tuple[int, int]:
    """``(adder bits, register bits)`` of :func:`adder_tree` over signed terms of ``widths``
    bits: the result bits of every pairwise sum (one LUT4 each on a carry chain) and the bits
    its pipeline registers hold."""
    return pairwise_sums(widths, tree_cuts(adder_levels(len(widths)), stages))


def adder_tree(m: Module, terms: list[Value], *, stages: int = 0, en: Value = 1,
               domain: str = "sync", name: str = "sum") -> Value:
    """The signed sum of ``terms``, ``stages`` clock cycles later (registers advance while
    ``en``). Each pairwise sum is its own wire, so synthesis maps it onto a carry chain.
    Registers go between levels, evenly; stages beyond the tree's levels are stacked after its
    last level."""
    levels = adder_levels(len(terms))
    if stages < 0:
        raise ValueError(f"stages must be 0 or more, not {stages}")
    # registers spread over the levels; more stages than levels stack at the end (a unit whose
    # constant weights dropped zero terms keeps the pipeline depth its folding states)
    tree = TreeStages(m, tree_cuts(levels, stages), en, domain, name)

    values = [_signed(Value.cast(t)) for t in terms] or [Const(0, signed(1))]
    values = tree.cut(0, values)
    level = 1
    while len(values) > 1:
        nxt = [tree.wire(values[k] + values[k + 1]) for k in range(0, len(values) - 1, 2)]
        if len(values) % 2:
            nxt.append(values[-1])
        values = tree.cut(level, nxt)
        level += 1
    out = Signal(signed(len(values[0])), name=f"{name}_out")
    m.d.comb += out.eq(values[0])
    return out
