"""Matrix-vector-activation unit for multi-bit activations and non-binary weights.

The same frame protocol as :class:`lowbit.hw.mvtu.MVTU`: a frame of ``in_features`` elements,
each an ``in_bits`` level index, arrives ``in_width`` bits per beat into one of two input banks,
and the unit emits ``pe`` lanes per neuron fold. Element ``i`` has the value ``a·index + lo``
(``a = 2, lo = −1`` for bipolar inputs, ``a = 1`` otherwise).

The unit walks a compile-time :class:`~lowbit.hw.schedule.Schedule`. Each step reads, per input
lane, the synapse fold the schedule names, and per PE row a weight code from the ROM. Each lane
forms one term from ``|w|·x``, complemented for a negative weight (``~v = −v − 1``), by the
layer's engine:

- ``addsub`` (binary weights): ``|w| = 1``;
- ``ternary``: 0, or a constant ``a`` (positive) or ``b`` (negative) for weights 0, +a, −b;
- ``shift`` (power-of-two weights): 0 or a shift by ``e``, from a sign bit and an exponent field
  holding ``e + 1`` (0 for a zero weight): a 4-bit code covers ±1..±64 and 0;
- ``multiply`` (integer weights): ``|w|`` from the code;
- ``bitplane`` (any integer weights, chosen by the folding): no lane terms; the weight code holds
  the weight's planes (:func:`~lowbit.hw.engines.plane_codes`), and per PE an AND-popcount of
  each weight plane with each input bit plane of the pass is shifted and added
  (:meth:`MVAU._plane_sums`); the sum is the dot product itself, no negative-weight offset.

The sum of the terms is the dot product minus the number of negative weights of the row, a
per-channel constant folded into the thresholds and the output offset. A zero
weight never needs a lane: skipped positions shorten the schedule when folded, and with a
single step (all weights constants) zero terms are not built at all.

The sum of the ``simd`` terms goes through an adder tree (``stages`` pipeline registers) into a
per-PE accumulator. After the last step of a neuron fold the lanes leave on ``o``: output level
indices (``#{j : acc compared with threshold j}``, the comparison per channel ``>=`` or ``<=``),
or, without thresholds, the signed accumulators ``a·dot + lo·Σw``.

Timing (no stalls): step ``t`` of a frame issues ``in_beats + t`` cycles after its first input
beat; output beat ``nf`` is valid ``2 + stages`` cycles after the last step of its neuron fold.
A back-pressured output freezes the whole unit. :mod:`lowbit.sim.perf` states the same timing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from lowbit.sw.ir import signed_bits

from .adder import adder_levels, adder_tree
from .banks import InputBanks
from .engines import MVAU_ENGINES, plane_codes, plane_coefficients, ternary_magnitudes
from .pipeline import accumulate, delayed, output_beat, register
from .popcount import popcount_levels, popcount_tree
from .weights import weight_rom

__all__ = ["MVAU", "RomLayout"]


@dataclass(frozen=True)
class RomLayout:
    """The MVAU's ROM: one word per schedule step. ``fields`` maps a field name (``codes``,
    ``select``, ``active``, ``first``, ``last``, ``nf``) to its ``(start, width)`` in the word;
    ``shared`` says all lanes read one ``select`` (a dense schedule): then the word holds the
    codes only, and the unit counts the synapse and neuron folds (select, first, last, nf)."""

    depth: int
    width: int
    fields: dict
    sel_bits: int
    shared: bool

    def columns(self, engine: str, weights: np.ndarray, pe: int, simd: int,
                schedule) -> np.ndarray:
        """The ROM as bits, ``(depth, width)``: column ``c`` is bit ``c`` of the word
        :meth:`MVAU._rom_words` builds for every step."""
        codes = MVAU.step_codes(engine, weights, pe, simd, schedule)
        steps = len(codes)
        cb = self.fields["codes"][1] // max(1, pe * simd)
        flat = codes.reshape(steps, -1)  # pe-major lanes, code bits side by side
        planes = [((flat >> b) & 1).astype(bool) for b in range(cb)]
        bits = [np.stack(planes, axis=2).reshape(steps, -1)]
        if not self.shared:
            select = [((schedule.select >> b) & 1).astype(bool) for b in range(self.sel_bits)]
            bits.append(np.stack(select, axis=2).reshape(steps, -1))  # lane-major
            bits.append(np.asarray(schedule.active, dtype=bool))
            starts = np.cumsum((0,) + tuple(schedule.steps))
            t = np.arange(self.depth)
            nf = np.searchsorted(starts, t, side="right") - 1
            bits += [np.isin(t, starts[:-1])[:, None], np.isin(t, starts[1:] - 1)[:, None]]
            bits += [((nf >> b) & 1).astype(bool)[:, None]
                     for b in range(self.fields["nf"][1])]
        return np.concatenate(bits, axis=1)


class MVAU(wiring.Component):
    """Matrix-vector-activation unit on a compile-time schedule.

    Parameters
    ----------
    weights : array of int, shape (out_features, in_features)
        Integer weights; their values must suit ``engine``.
    engine : str
        One of ``ENGINES``.
    pe, simd : int
        Output channels and input lanes per step; must divide out_features and in_features.
    in_bits : int
        Bits of one input element (its level index).
    in_width : int
        Bits per input beat; must divide ``in_features · in_bits``.
    in_scale, in_offset : int
        Element value ``in_scale · index + in_offset``.
    schedule : lowbit.hw.schedule.Schedule
        Steps per neuron fold and the synapse fold each lane reads at each step.
    thresholds : array of int, shape (out_features, levels − 1), or None
        On the accumulator ``a·dot + lo·Σw``, with ``direction``: channel ``c``'s output index is
        ``#{j : direction[c]·acc >= thresholds[c, j]}``. ``None``: emit accumulators.
    direction : array of ±1, shape (out_features,)
    out_bits : int
        Bits per output index lane (with thresholds).
    acc_bits : int
        Bits per output accumulator lane (without thresholds).
    stages : int
        Pipeline registers in the adder tree.
    input_bram : bool
        Keep the two input banks in block RAM: for a dense schedule one memory of SIMD words
        (needs ``in_width == simd · in_bits``) read a cycle ahead; for a zero-skip one a memory
        per lane (a beat of any divisor of SIMD elements) read at the lane's select from the
        ROM word (its read register is the lane's operand).
    lut_weights : bool
        Keep a weight ROM of more than two words in logic instead of block RAM.
    planes : int
        ``bitplane`` only: input planes per step, a divisor of ``in_bits``; the schedule makes
        ``in_bits / planes`` passes over each neuron fold's synapse folds, the most significant
        planes first (``acc ← 2^planes·acc + sum`` at the start of each later pass).
    popcount_style : str
        ``bitplane`` only: the popcounts' style (:func:`~lowbit.hw.popcount.popcount_tree`).

    Members
    -------
    i : In(stream.Signature(in_width))
    o : Out(stream.Signature(pe · out_bits or pe · acc_bits))
    """

    def __init__(self, weights, *, engine: str, pe: int, simd: int, in_bits: int, in_width: int,
                 in_scale: int, in_offset: int, schedule, thresholds=None, direction=None,
                 out_bits: int = 1, acc_bits: int = 32, stages: int = 0,
                 input_bram: bool = False, lut_weights: bool = False,
                 planes: int | None = None, popcount_style: str = "carry"):
        weights = np.asarray(weights, dtype=np.int64)
        if weights.ndim != 2:
            raise ValueError(f"weights must be 2-D, not {weights.shape}")
        if engine not in MVAU_ENGINES:
            raise ValueError(f"engine must be one of {MVAU_ENGINES}, not {engine!r}")
        mh, mw = weights.shape
        for name, value, total in (("pe", pe, mh), ("simd", simd, mw),
                                   ("in_width", in_width, mw * in_bits)):
            if value < 1 or total % value:
                raise ValueError(f"{name}={value} must divide {total}")
        levels = self.tree_levels(engine, simd)
        if not 0 <= stages <= levels:
            raise ValueError(f"stages must be 0..{levels}, not {stages}")
        if engine == "bitplane":
            if planes is None or planes < 1 or in_bits % planes:
                raise ValueError(f"engine 'bitplane' takes planes dividing in_bits={in_bits}, "
                                 f"not {planes}")
            passes = in_bits // planes
            if not schedule.dense or schedule.passes != passes:
                raise ValueError(f"engine 'bitplane' at planes={planes} needs the dense "
                                 f"schedule of {passes} passes")
        self.planes, self.popcount_style = planes, popcount_style
        nonzero = np.abs(weights[weights != 0])
        if engine == "addsub" and np.any(np.abs(weights) != 1):
            raise ValueError("engine 'addsub' takes weights ±1")
        if engine == "shift" and np.any(nonzero & (nonzero - 1)):
            raise ValueError("engine 'shift' takes weights 0 and ±2^e")
        if engine == "ternary" and ternary_magnitudes(weights) is None:
            raise ValueError("engine 'ternary' takes weights 0, +a and −b")
        self.weights, self.engine = weights, engine
        self.out_features, self.in_features = mh, mw
        self.pe, self.simd, self.in_bits, self.in_width = pe, simd, in_bits, in_width
        self.neuron_fold, self.synapse_fold = mh // pe, mw // simd
        self.in_beats = mw * in_bits // in_width
        self.in_scale, self.in_offset = in_scale, in_offset
        self.schedule = schedule
        self.stages = stages
        if input_bram and (schedule.dense and in_width != simd * in_bits
                           or simd % max(1, in_width // in_bits)):
            raise ValueError("input_bram needs in_width == simd · in_bits (a dense schedule) or "
                             "a beat of a divisor of SIMD elements (zero-skip)")
        self.input_bram = input_bram
        self.lut_weights = lut_weights
        if len(schedule.steps) != self.neuron_fold:
            raise ValueError(f"schedule has {len(schedule.steps)} neuron folds, not "
                             f"{self.neuron_fold}")
        self.positive = int(weights[weights > 0].max(initial=1))
        self.negative = int(-weights[weights < 0].min(initial=-1))

        # dot' = Σ terms = dot − #(w < 0); acc = a·dot' + offset (the bit-plane sum is dot)
        negatives = (weights < 0).sum(axis=1) * (engine != "bitplane")
        self.offset = in_scale * negatives + in_offset * weights.sum(axis=1)
        top = (1 << in_bits) - 1
        bound = int((np.abs(weights) * top).sum(axis=1).max()) + int(negatives.max()) + 1
        self.dot_bits = signed_bits(-bound, bound)
        self.acc_bits = acc_bits
        if thresholds is None:
            self.thresholds = None
            out_width = pe * acc_bits
        else:
            t = np.asarray(thresholds, dtype=np.int64).reshape(mh, -1)
            up = np.asarray(direction) > 0
            off = self.offset[:, None]
            # up: a·d + off >= t  ⇔  d >= ceil((t − off)/a);  down: d <= floor((−t − off)/a)
            dot_t = np.where(up[:, None], -((off - t) // in_scale), (-t - off) // in_scale)
            self.thresholds = np.clip(dot_t, -bound - 1, bound + 1)
            self.greater_equal = up
            out_width = pe * out_bits
        self.out_bits = out_bits
        super().__init__({
            "i": In(stream.Signature(in_width)),
            "o": Out(stream.Signature(out_width)),
        })

    # -- compile-time tables -----------------------------------------------------------------------

    PIPELINE_DEPTH = 2  # registers from a step's issue to its accumulator (ROM, lanes + codes)

    @staticmethod
    def tree_levels(engine: str, simd: int) -> int:
        """Register positions in the engine's tree: the adder tree over SIMD terms, or for
        ``bitplane`` a popcount over SIMD lanes."""
        if engine == "bitplane":
            return popcount_levels(simd)
        return max(1, adder_levels(simd))

    @staticmethod
    def bank_lanes(schedule, simd: int) -> int:
        """Memories the input banks take in block RAM: one of SIMD words for a dense schedule,
        one per lane for a zero-skip schedule (the lanes read different words)."""
        return 1 if schedule.dense else simd

    @staticmethod
    def lane_value(values) -> tuple[int, int]:
        """``(a, lo)`` with element value ``a·index + lo`` for a level index of ``values``:
        ``(2, −1)`` for bipolar, ``(1, levels[0])`` otherwise."""
        return (2, -1) if values.bipolar else (1, values.levels[0])

    @staticmethod
    def code_bits_for(engine: str, weights: np.ndarray) -> int:
        """Bits of one weight code: the sign, then the engine's magnitude field."""
        top = int(np.abs(np.asarray(weights)).max(initial=1)) or 1
        if engine == "bitplane":
            return len(plane_coefficients(weights)[0])
        return {"addsub": 1, "ternary": 2, "shift": 1 + max(1, top.bit_length().bit_length()),
                "multiply": 1 + max(1, top.bit_length())}[engine]

    def code_bits(self) -> int:
        return self.code_bits_for(self.engine, self.weights)

    @staticmethod
    def rom_layout(engine: str, weights: np.ndarray, pe: int, simd: int,
                   schedule) -> RomLayout:
        """The ROM word the unit stores per schedule step: ``pe·simd`` weight codes; for a
        zero-skip schedule also each lane's select and active bit, and the first, last and
        neuron-fold flags (a dense schedule counts those instead of storing them)."""
        mh, mw = np.shape(weights)
        nf_max, sf_max = mh // pe, mw // simd
        sel_bits = max(1, (sf_max - 1).bit_length())
        shared = schedule.dense
        fields = {"codes": (0, pe * simd * MVAU.code_bits_for(engine, weights))}
        pos = fields["codes"][1]
        if not shared:
            for name, width in (("select", sel_bits * simd), ("active", simd), ("first", 1),
                                ("last", 1), ("nf", MVAU.nf_bits(nf_max))):
                fields[name] = (pos, width)
                pos += width
        return RomLayout(schedule.rom_words, pos, fields, sel_bits, shared)

    @staticmethod
    def nf_bits(nf_max: int) -> int:
        return max(1, (nf_max - 1).bit_length())

    @staticmethod
    def code_of(engine: str, w: np.ndarray) -> np.ndarray:
        """Weight code per weight: bit 0 negative, then the engine's magnitude field: nothing
        (addsub), non-zero (ternary), ``e + 1`` or 0 for a zero weight (shift), ``|w|``."""
        neg = (w < 0).astype(np.int64)
        mag = np.abs(w)
        if engine == "addsub":
            return neg
        if engine == "ternary":
            return neg | ((w != 0).astype(np.int64) << 1)
        if engine == "shift":
            exp = np.where(mag > 0, np.log2(np.maximum(mag, 1)).astype(np.int64) + 1, 0)
            return neg | (exp << 1)
        return neg | (mag << 1)

    @staticmethod
    def step_codes(engine: str, weights: np.ndarray, pe: int, simd: int,
                   schedule) -> np.ndarray:
        """Codes ``(T, pe, simd)`` of every step (of one pass): inactive lanes get the zero
        weight; a ``bitplane`` code holds weight plane ``m`` in bit ``m``."""
        if engine == "bitplane":  # dense: ROM word nf·SF + sf
            codes = plane_codes(weights)[0]
            mh, mw = codes.shape
            return codes.reshape(mh // pe, pe, mw // simd, simd).transpose(0, 2, 1, 3) \
                .reshape(-1, pe, simd)
        nf_of_step = np.repeat(np.arange(len(schedule.steps)), schedule.steps)
        rows = nf_of_step[:, None] * pe + np.arange(pe)[None, :]  # (T, pe)
        cols = schedule.select * simd + np.arange(simd)[None, :]  # (T, simd)
        w = np.asarray(weights)[rows[:, :, None], cols[:, None, :]] * schedule.active[:, None, :]
        return MVAU.code_of(engine, w)

    def _code(self, w: np.ndarray) -> np.ndarray:
        return self.code_of(self.engine, w)

    def _step_codes(self) -> np.ndarray:
        return self.step_codes(self.engine, self.weights, self.pe, self.simd, self.schedule)

    def _rom_words(self) -> tuple[list[int], dict]:
        """ROM word per step: the codes, then (zero-skip) the lane selects and active bits,
        first, last, nf."""
        s = self.schedule
        codes = self._step_codes()
        cb = self.code_bits()
        total = len(codes)
        layout = self.rom_layout(self.engine, self.weights, self.pe, self.simd, s)
        fields, sel_bits, shared = layout.fields, layout.sel_bits, layout.shared
        starts = np.cumsum((0,) + s.steps)
        words = []
        for t in range(total):
            word = 0
            flat = codes[t].ravel()  # pe-major: lane k·simd + l
            for j, c in enumerate(flat.tolist()):
                word |= c << (j * cb)
            words.append(word)
            if shared:
                continue
            for lane in range(self.simd):
                word |= int(s.select[t, lane]) << (fields["select"][0] + lane * sel_bits)
                word |= int(s.active[t, lane]) << (fields["active"][0] + lane)
            nf = int(np.searchsorted(starts, t, side="right") - 1)
            word |= int(t == starts[nf]) << fields["first"][0]
            word |= int(t == starts[nf + 1] - 1) << fields["last"][0]
            word |= nf << fields["nf"][0]
            words[-1] = word
        return words, fields | {"width": layout.width, "sel_bits": sel_bits, "shared": shared}

    # -- terms -------------------------------------------------------------------------------------

    def _term(self, m, x, code, name):
        """One lane's term from the index ``x`` and the weight code (a Value, or a Python int
        for constant weights, where a zero weight gives ``None``: no term at all).

        The magnitude ``|w|·x`` is formed unsigned; a zero weight gates ``x`` itself (which
        merges into the first shift or multiply level) and the sign complements the result
        (which merges into the last)."""
        if isinstance(code, int):
            neg, rest = bool(code & 1), code >> 1
            if self.engine == "addsub":
                mag = x
            elif not rest:
                return None
            elif self.engine == "ternary":
                mag = x * (self.negative if neg else self.positive)
            elif self.engine == "shift":
                mag = x << (rest - 1)
            else:
                mag = x * rest
        else:
            neg, rest = code[0], code[1:]
            if self.engine == "addsub":
                mag = x
            elif self.engine == "ternary":
                gated = Mux(rest[0], x, 0)
                mag = (gated if self.positive == self.negative == 1
                       else Mux(neg, gated * self.negative, gated * self.positive))
            elif self.engine == "shift":
                gated = Mux(rest.any(), x, 0)
                mag = (gated << rest)[1:]  # rest = e + 1
            else:
                mag = x * rest
        wide = Cat(mag, Const(0, 1)).as_signed()
        term = Signal(signed(len(wide)), name=name)  # narrow: the tree widens level by level
        if isinstance(neg, bool):
            m.d.comb += term.eq(~wide if neg else wide)
        else:
            m.d.comb += term.eq(Mux(neg, ~wide, wide))
        return term

    def _plane_sums(self, m, lanes, codes, group, en):
        """Per PE the bit-plane sum of one step: over the pass's input planes ``j`` (the
        group ``group``, most significant first), ``2^j·(Σ_m c_m·popcount(W_m ∧ X_j) + ones ·
        popcount(X_j))``, the last count shared by all PEs; ``codes`` per lane (Values, or ints
        for constant weights), ``stages`` registers in each popcount."""
        pe, simd, g = self.pe, self.simd, self.planes
        passes = self.in_bits // g
        coefficients, ones = plane_coefficients(self.weights)
        low = Signal(range(max(passes, 2)), name="plane_group")  # from the least significant
        m.d.comb += low.eq(passes - 1 - group)
        planes = [[x[j] if passes == 1 else x.word_select(low, g)[j] for x in lanes]
                  for j in range(g)]
        counter = [0]

        def count(bits, name):
            stages = min(self.stages, popcount_levels(len(bits)))
            value = popcount_tree(m, Cat(*bits), stages=stages, en=en, name=name,
                                  style=self.popcount_style)
            for _ in range(self.stages - stages):
                value = register(m, [value], en, "sync", name, counter)[0]
            return value

        def weighted(value, coefficient, name):
            term = Signal(signed(len(value) + abs(coefficient).bit_length() + 1), name=name)
            m.d.comb += term.eq(value * coefficient)
            return term

        shared = [weighted(count(planes[j], f"pc_x{j}"), ones << j, f"s_x{j}")
                  for j in range(g)] if ones else []
        sums = []
        for k in range(pe):
            terms = list(shared)
            for b, c in enumerate(coefficients):
                for j in range(g):
                    lane_codes = codes[k * simd:(k + 1) * simd]
                    if isinstance(lane_codes[0], int):  # constants: a zero bit has no lane
                        bits = [x for x, code in zip(planes[j], lane_codes) if code >> b & 1]
                    else:
                        bits = [x & code[b] for x, code in zip(planes[j], lane_codes)]
                    if bits:
                        terms.append(weighted(count(bits, f"pc{k}_{b}_{j}"), c << j,
                                              f"s{k}_{b}_{j}"))
            sums.append(adder_tree(m, terms, name=f"sum{k}") if terms else Const(0, 1))
        return sums

    # -- the unit ----------------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        pe, simd, sf_max, nf_max = self.pe, self.simd, self.synapse_fold, self.neuron_fold
        bits, mw = self.in_bits, self.in_features
        words, fields = self._rom_words()
        total = self.schedule.cycles  # steps per frame
        passes = self.schedule.passes

        # -- input banks (double buffer; also the width converter) ---------------------------------
        lane_ram = self.input_bram and not self.schedule.dense  # a memory per lane
        inputs = InputBanks(m, self.in_beats, self.in_width, mw * bits, self.input_bram,
                            lanes=self.bank_lanes(self.schedule, simd), lane_bits=bits,
                            attrs=InputBanks.BLOCK)
        full, memory, banks = inputs.full, inputs.memory, inputs.banks
        out_valid = Signal()
        stall = Signal()
        m.d.comb += stall.eq(out_valid & ~self.o.ready)
        valid_b, bank_b = Signal(), Signal()
        # a bank is free once its last step has issued, but that step reads it one cycle later
        # (stage B); while a stall holds that step there, the bank must not be overwritten
        reading = Signal()
        m.d.comb += reading.eq(valid_b & stall & (bank_b == inputs.wbank))
        m.d.comb += self.i.ready.eq(~full.bit_select(inputs.wbank, 1) & ~reading)
        inputs.write(m, self.i.valid & self.i.ready, self.i.payload)

        # -- stage A: step counter, ROM address ----------------------------------------------------
        rbank = Signal()
        step = Signal(range(max(total, 2)))
        go = Signal()
        m.d.comb += go.eq(full.bit_select(rbank, 1) & ~stall)
        with m.If(go):
            with m.If(step == total - 1):
                m.d.sync += [step.eq(0), rbank.eq(~rbank), full.bit_select(rbank, 1).eq(0)]
            with m.Else():
                m.d.sync += step.eq(step + 1)
        counted = {}
        address = step
        if fields["shared"]:  # dense: the synapse and neuron folds are counted, not stored
            sf = Signal(range(max(sf_max, 2)))
            nf_a = Signal(self.nf_bits(nf_max))
            group = Signal(range(max(passes, 2)))  # the pass: input planes, most significant first
            with m.If(go & (sf == sf_max - 1)):
                m.d.sync += sf.eq(0)
                with m.If(group == passes - 1):
                    m.d.sync += [group.eq(0), nf_a.eq(Mux(nf_a == nf_max - 1, 0, nf_a + 1))]
                with m.Else():
                    m.d.sync += group.eq(group + 1)
            with m.Elif(go):
                m.d.sync += sf.eq(sf + 1)
            flags = (("select", sf), ("first", (sf == 0) & (group == 0)),
                     ("last", (sf == sf_max - 1) & (group == passes - 1)), ("nf", nf_a))
            if passes > 1:  # the ROM word of the step's folds, the same in every pass
                address = Signal(range(max(len(words), 2)), name="rom_address")
                m.d.comb += address.eq(nf_a * sf_max + sf)
                flags += (("group", group), ("shift", (sf == 0) & (group != 0)))
            for name, value in flags:
                counted[name] = Signal(len(value), name=f"{name}_b")
                with m.If(~stall):  # beside the ROM word, which its read port holds alike
                    m.d.sync += counted[name].eq(value)
        if self.input_bram and not lane_ram:  # the step's synapse fold, read one cycle early
            read = memory.read_port(domain="sync")
            m.d.comb += [read.addr.eq(inputs.address(rbank, sf)), read.en.eq(~stall)]

        # -- stage B: the ROM word; read the input lanes -------------------------------------------
        word = weight_rom(m, words, fields["width"], address, ~stall, lut=self.lut_weights)
        with m.If(~stall):
            m.d.sync += [valid_b.eq(go), bank_b.eq(rbank)]

        def field(name, index=0, width=None):
            if name in counted:
                return counted[name]
            start, size = fields[name]
            width = size if width is None else width
            return word[start + index * width:start + (index + 1) * width]

        if not self.input_bram:
            source = Signal(mw * bits, name="bank_read")
            m.d.comb += source.eq(Mux(bank_b, banks[1], banks[0]))
        lanes = []
        for lane in range(simd):
            options = [] if self.input_bram else [
                source[(j * simd + lane) * bits:(j * simd + lane + 1) * bits]
                for j in range(sf_max)]
            if lane_ram:  # the lane's memory, read at its select; gated by its active bit
                sel = field("select", lane, fields["sel_bits"])
                port = (inputs.memories or [memory])[lane].read_port(domain="sync")
                m.d.comb += [port.addr.eq(inputs.address(bank_b, sel)), port.en.eq(~stall)]
                active = Signal(name=f"active{lane}")
                with m.If(~stall):
                    m.d.sync += active.eq(field("active", lane, 1))
                x_lane = Signal(bits, name=f"x{lane}")
                m.d.comb += x_lane.eq(Mux(active, port.data, 0))
                lanes.append(x_lane)
                continue
            if self.input_bram:  # the RAM's read port already holds this step's word
                value = read.data[lane * bits:(lane + 1) * bits]
            elif sf_max == 1:
                value = options[0]
            else:
                sel = (field("select", 0, fields["sel_bits"]) if fields["shared"]
                       else field("select", lane, fields["sel_bits"]))
                value = Array(options)[sel]
            x_lane = Signal(bits, name=f"x{lane}", reset_less=True)
            with m.If(~stall):
                if fields["shared"]:
                    m.d.sync += x_lane.eq(value)
                else:
                    m.d.sync += x_lane.eq(Mux(field("active", lane, 1), value, 0))
            lanes.append(x_lane)

        # -- stage C: codes and flags registered beside the lanes; terms; adder tree ---------------
        constant = len(words) == 1
        cb = self.code_bits()
        code_c = Signal(pe * simd * cb, name="codes", reset_less=True)
        valid_c, first_c, last_c = Signal(), Signal(), Signal()
        nf_c = Signal(self.nf_bits(nf_max))
        with m.If(~stall):
            m.d.sync += [valid_c.eq(valid_b), first_c.eq(field("first")),
                         last_c.eq(field("last")), nf_c.eq(field("nf"))]
            if not constant:
                m.d.sync += code_c.eq(field("codes"))
        codes_const = self._step_codes()[0] if constant else None
        group_c, shift_c = Signal.like(counted.get("group", Signal())), Signal()
        if passes > 1:
            with m.If(~stall):
                m.d.sync += [group_c.eq(field("group")), shift_c.eq(field("shift"))]

        sums = []
        if self.engine == "bitplane":
            codes = ([int(c) for c in codes_const.ravel()] if constant else
                     [code_c[j * cb:(j + 1) * cb] for j in range(pe * simd)])
            sums = self._plane_sums(m, lanes, codes, group_c, ~stall)
        for k in range(pe if self.engine != "bitplane" else 0):
            terms = []
            for lane in range(simd):
                if constant:
                    code = int(codes_const[k, lane])
                else:
                    j = k * simd + lane
                    code = code_c[j * cb:(j + 1) * cb]
                term = self._term(m, lanes[lane], code, f"t{k}_{lane}")
                if term is not None:
                    terms.append(term)
            sums.append(adder_tree(m, terms, stages=self.stages, en=~stall, name=f"sum{k}"))
        valid_p, first_p, last_p, nf_p, shift_p = valid_c, first_c, last_c, nf_c, shift_c
        for s in range(self.stages):
            valid_p, first_p, last_p, nf_p, shift_p = delayed(
                m, (valid_p, first_p, last_p, nf_p, shift_p), ~stall, f"p{s}")

        # -- accumulate, activate, output ----------------------------------------------------------
        accs = [Signal(signed(self.dot_bits), name=f"acc{k}", reset_less=True) for k in range(pe)]
        nexts = [Signal(signed(self.dot_bits), name=f"acc_next{k}") for k in range(pe)]
        # a later pass's planes are less significant: the sum so far moves up by its planes
        accumulate(m, accs, nexts, sums, first_p, ~stall & valid_p,
                   shift=shift_p if passes > 1 else None, by=self.planes or 0)

        def per_channel(k, values, width):
            consts = [Const(int(values[nf * pe + k]), signed(width)) for nf in range(nf_max)]
            return consts[0] if nf_max == 1 else Array(consts)[nf_p]

        out_lanes = []
        if self.thresholds is None:
            off_bits = signed_bits(int(self.offset.min()), int(self.offset.max()))
            for k, nxt in enumerate(nexts):
                lane = Signal(signed(self.acc_bits), name=f"out{k}")
                m.d.comb += lane.eq(nxt * self.in_scale + per_channel(k, self.offset, off_bits))
                out_lanes.append(lane)
        else:
            t_bits = self.dot_bits + 1
            for k, nxt in enumerate(nexts):
                hits = []
                for j in range(self.thresholds.shape[1]):
                    t = per_channel(k, self.thresholds[:, j], t_bits)
                    ge = per_channel(k, self.greater_equal.astype(np.int64), 2)
                    hits.append(Mux(ge[0], nxt >= t, nxt <= t))
                lane = Signal(self.out_bits, name=f"out{k}")
                m.d.comb += lane.eq(sum(hits))
                out_lanes.append(lane)
        result = Cat(*out_lanes)

        output_beat(m, self.o, out_valid, stall, valid_p, last_p, result)
        return m
