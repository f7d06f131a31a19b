"""Pipeline primitives shared by the units: registers that hold while stalled, the stages of
a tree, control flags carried alongside a datapath, per-channel accumulators and the output
beat register."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value

__all__ = ["register", "TreeStages", "delayed", "accumulate", "output_beat"]


def register(m: Module, values: list, en: Value, domain: str, name: str,
             counter: list) -> list:
    """A pipeline register for each value (advancing while ``en``), named ``<name>_r<n>``;
    ``counter`` is a one-element list numbering the registers of one structure."""
    regs = []
    for v in values:
        counter[0] += 1
        r = Signal(Value.cast(v).shape(), name=f"{name}_r{counter[0]}", reset_less=True)
        with m.If(en):
            m.d[domain] += r.eq(v)
        regs.append(r)
    return regs


class TreeStages:
    """The wires and pipeline registers of one tree (adder or popcount): each node a named wire
    (``<name>_<n>``), registers (``<name>_r<n>``) after the levels listed in ``cuts`` (a level
    listed twice gets two), numbered by one counter."""

    def __init__(self, m: Module, cuts: list[int], en: Value, domain: str, name: str):
        self.m, self.cuts, self.en, self.domain, self.name = m, cuts, en, domain, name
        self.counter = [0]

    def wire(self, value: Value, shape=None, attrs: dict | None = None) -> Signal:
        self.counter[0] += 1
        s = Signal(Value.cast(value).shape() if shape is None else shape,
                   name=f"{self.name}_{self.counter[0]}", attrs=attrs)
        self.m.d.comb += s.eq(value)
        return s

    def cut(self, level: int, values: list) -> list:
        """``values`` after the registers that follow tree level ``level``."""
        for _ in range(self.cuts.count(level)):
            values = register(self.m, values, self.en, self.domain, self.name, self.counter)
        return values


def delayed(m: Module, flags, en: Value, suffix: str) -> list:
    """Control flags one register later (advancing while ``en``; they keep their reset), each
    named ``<flag>_<suffix>``."""
    regs = [Signal.like(v, name=f"{v.name}_{suffix}") for v in flags]
    with m.If(en):
        m.d.sync += [r.eq(v) for r, v in zip(regs, flags)]
    return regs


def accumulate(m: Module, accs: list, nexts: list, terms: list, first: Value,
               en: Value, shift: Value | None = None, by: int = 0) -> None:
    """``nexts[k] = (0 if first else accs[k]) + terms[k]``, taken into ``accs`` while ``en``;
    with ``shift``, ``accs[k]·2^by`` where ``shift`` is high (a bit-serial pass)."""
    for acc, nxt, term in zip(accs, nexts, terms):
        base = acc if shift is None else Mux(shift, acc << by, acc)
        m.d.comb += nxt.eq(Mux(first, 0, base) + term)
    with m.If(en):
        m.d.sync += [acc.eq(nxt) for acc, nxt in zip(accs, nexts)]


def output_beat(m: Module, o, out_valid: Signal, stall: Value, valid: Value, last: Value,
                result: Value) -> None:
    """The unit's output register: it takes ``result`` when a valid step is the last of its
    neuron fold, and holds it (freezing the unit through ``stall``) until ``o`` takes it."""
    with m.If(~stall):
        m.d.sync += out_valid.eq(valid & last)
        with m.If(valid & last):
            m.d.sync += o.payload.eq(result)
    m.d.comb += o.valid.eq(out_valid)
