"""Matrix-vector-threshold unit for binary weights on bipolar activations (XNOR-popcount).

One frame is a vector of ``in_features`` bits (1 ↔ +1). It arrives as ``in_features / in_width``
beats on ``i`` and is collected into one of two input banks, so the next frame can arrive while
this one is computed; the bank is the stream width converter between layers. The unit then works
through ``neuron_fold × synapse_fold`` steps: each step takes ``simd`` bits of the input vector and
``pe × simd`` weight bits, counts the matches (XNOR + popcount) for ``pe`` output channels and adds
them to per-channel accumulators. After the last synapse fold of a neuron fold the ``pe`` results
leave on ``o`` as one beat: either threshold bits or, for the last layer, the signed bipolar
accumulators ``2·matches − in_features``. The input vector is reused across the neuron folds.

Weights live in a ROM of ``neuron_fold · synapse_fold`` words of ``pe · simd`` bits, kept as
constants, LUT logic or block RAM by the number of words (:mod:`lowbit.hw.weights`); as constants
the XNOR reduces to wires and inverters.

Timing (no stalls): the step for (nf, sf) issues ``in_beats + nf·synapse_fold + sf`` cycles after
the first input beat of a frame, and output beat ``nf`` is valid ``synapse_fold + 1 +
popcount_stages`` cycles after its first step. A back-pressured output freezes the whole unit.
:mod:`lowbit.sim.perf` states the same timing and is checked against this RTL.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .banks import InputBanks
from .pipeline import accumulate, delayed, output_beat, register
from .popcount import popcount_levels, popcount_tree
from .weights import weight_rom

__all__ = ["MVTU", "accumulator_bits"]


def accumulator_bits(in_features: int) -> int:
    """Signed width of an output accumulator ``2·matches − in_features``."""
    return (2 * in_features).bit_length() + 1


class MVTU(wiring.Component):
    """Binary matrix-vector-threshold unit.

    Parameters
    ----------
    weights : array of bool, shape (out_features, in_features)
        True ↔ +1.
    pe, simd : int
        Output channels and input lanes per cycle; must divide out_features and in_features.
    in_width : int
        Bits per input beat; must divide in_features.
    thresholds : array of int, shape (out_features,), or None
        Per channel, in the match-count domain (0..in_features). ``None`` makes the unit emit
        accumulators.
    greater_equal : array of bool, shape (out_features,)
        Per channel: output +1 when ``matches >= threshold`` (True) or ``matches <= threshold``.
    popcount_stages : int
        Pipeline registers inside each popcount tree.
    popcount_style : str
        ``"carry"`` (iCE40) or ``"wallace"`` (ECP5), see :func:`lowbit.hw.popcount.popcount_tree`.
    input_bram : bool
        Keep the two input banks in one block RAM (``2 × synapse_fold`` words of ``simd`` bits)
        instead of flip-flops; needs ``in_width == simd``. The RAM's registered read port takes
        the place of the operand register, so the timing is the same.
    operand_register : bool
        A register behind the XNORs of the operands (``pe·simd`` bits), so a block RAM's slow
        clock-to-output (5.8 ns on ECP5), or a LUT ROM's address fanned out to every weight
        bit, does not share a cycle with the popcount: one cycle more latency, the same II.
    lut_weights : bool
        Keep a weight ROM of more than two words in logic instead of block RAM (the same
        timing: its address is registered).

    Members
    -------
    i : In(stream.Signature(in_width))
    o : Out(stream.Signature(pe or pe·acc_bits))
    """

    @staticmethod
    def pipeline_depth(operand_register: bool = False) -> int:
        """Registers from a step's issue to its accumulator: the operand stage (the bank word
        or the block RAM's read port), and one more with ``operand_register``."""
        return 1 + bool(operand_register)

    @staticmethod
    def rom_shape(out_features: int, in_features: int, pe: int, simd: int) -> tuple[int, int]:
        """``(words, bits)`` of the weight ROM: one word of ``pe·simd`` bits per step."""
        return (out_features // pe) * (in_features // simd), pe * simd

    @staticmethod
    def rom_columns(weights, pe: int, simd: int) -> np.ndarray:
        """The ROM as bits, ``(words, pe·simd)``: row ``nf·SF + sf`` is the word
        :meth:`_weight_words` builds, column ``k·simd + j`` its bit of PE ``k``, lane ``j``."""
        w = np.asarray(weights, dtype=bool)
        mh, mw = w.shape
        lanes = w.reshape(mh // pe, pe, mw // simd, simd)  # (NF, PE, SF, SIMD)
        return lanes.transpose(0, 2, 1, 3).reshape(-1, pe * simd)

    def __init__(self, weights, *, pe: int, simd: int, in_width: int, thresholds=None,
                 greater_equal=None, popcount_stages: int = 0, popcount_style: str = "carry",
                 input_bram: bool = False, operand_register: bool = False,
                 lut_weights: bool = False):
        weights = np.asarray(weights, dtype=bool)
        if weights.ndim != 2:
            raise ValueError(f"weights must be 2-D, not {weights.shape}")
        mh, mw = weights.shape
        for name, value, total in (("pe", pe, mh), ("simd", simd, mw), ("in_width", in_width, mw)):
            if value < 1 or total % value:
                raise ValueError(f"{name}={value} must divide {total}")
        if not 0 <= popcount_stages <= popcount_levels(simd):
            raise ValueError(f"popcount_stages must be 0..{popcount_levels(simd)}, "
                             f"not {popcount_stages}")
        self.weights = weights
        self.out_features, self.in_features = mh, mw
        self.pe, self.simd, self.in_width = pe, simd, in_width
        self.neuron_fold, self.synapse_fold = mh // pe, mw // simd
        self.in_beats = mw // in_width
        if input_bram and in_width != simd:
            raise ValueError(f"input_bram needs in_width == simd, not {in_width} != {simd}")
        self.popcount_stages = popcount_stages
        self.popcount_style = popcount_style
        self.input_bram = input_bram
        self.operand_register = operand_register
        self.lut_weights = lut_weights
        self.acc_bits = accumulator_bits(mw)
        if thresholds is None:
            self.thresholds = None
            out_width = pe * self.acc_bits
        else:
            t = np.clip(np.asarray(thresholds, dtype=np.int64), -1, mw + 1)
            self.thresholds = t
            self.greater_equal = (np.ones(mh, bool) if greater_equal is None
                                  else np.asarray(greater_equal, dtype=bool))
            out_width = pe
        super().__init__({
            "i": In(stream.Signature(in_width)),
            "o": Out(stream.Signature(out_width)),
        })

    def _weight_words(self) -> list[int]:
        """ROM word nf·SF + sf: PE lanes of SIMD bits, lane k at bits [k·simd, (k+1)·simd)."""
        words = []
        for nf in range(self.neuron_fold):
            rows = self.weights[nf * self.pe:(nf + 1) * self.pe]
            for sf in range(self.synapse_fold):
                block = rows[:, sf * self.simd:(sf + 1) * self.simd].ravel()
                words.append(int.from_bytes(np.packbits(block, bitorder="little").tobytes(),
                                            "little"))
        return words

    def elaborate(self, platform):
        m = Module()
        pe, simd, nf_max, sf_max = self.pe, self.simd, self.neuron_fold, self.synapse_fold
        mw = self.in_features

        # -- input banks (double buffer; also the width converter) -----------------------------
        # data registers are reset-less: only control state needs a reset, and FFs without one
        # pack more freely with logic
        inputs = InputBanks(m, self.in_beats, self.in_width, mw, self.input_bram,
                            attrs=InputBanks.BLOCK)
        full, memory, banks = inputs.full, inputs.memory, inputs.banks
        m.d.comb += self.i.ready.eq(~full.bit_select(inputs.wbank, 1))
        inputs.write(m, self.i.valid & self.i.ready, self.i.payload)

        # -- step counters ---------------------------------------------------------------------
        out_valid = Signal()
        stall = Signal()
        m.d.comb += stall.eq(out_valid & ~self.o.ready)
        rbank = Signal()
        nf = Signal(range(max(nf_max, 2)))
        sf = Signal(range(max(sf_max, 2)))
        addr = Signal(range(max(nf_max * sf_max, 2)))
        go = Signal()
        m.d.comb += go.eq(full.bit_select(rbank, 1) & ~stall)
        with m.If(go):
            with m.If(sf == sf_max - 1):
                m.d.sync += sf.eq(0)
                with m.If(nf == nf_max - 1):
                    m.d.sync += [nf.eq(0), rbank.eq(~rbank), full.bit_select(rbank, 1).eq(0)]
                with m.Else():
                    m.d.sync += nf.eq(nf + 1)
            with m.Else():
                m.d.sync += sf.eq(sf + 1)
            m.d.sync += addr.eq(Mux(addr == nf_max * sf_max - 1, 0, addr + 1))

        # -- stage B: operands -----------------------------------------------------------------
        valid_b, first_b, last_b = Signal(), Signal(), Signal()
        nf_b = Signal.like(nf)
        with m.If(~stall):
            m.d.sync += [
                valid_b.eq(go), first_b.eq(sf == 0), last_b.eq(sf == sf_max - 1), nf_b.eq(nf),
            ]
        if self.input_bram:
            read = memory.read_port(domain="sync")
            m.d.comb += [read.addr.eq(inputs.address(rbank, sf)), read.en.eq(~stall)]
            x = read.data
        else:
            x = Signal(simd, reset_less=True)
            with m.If(~stall):
                m.d.sync += x.eq(Mux(rbank, banks[1], banks[0]).word_select(sf, simd))
        w = weight_rom(m, self._weight_words(), pe * simd, addr, ~stall, lut=self.lut_weights)

        valid_p, first_p, last_p, nf_p = valid_b, first_b, last_b, nf_b
        products = [~(x ^ w[k * simd:(k + 1) * simd]) for k in range(pe)]
        if self.operand_register:  # the XNORs of every PE, registered
            products = register(m, products, ~stall, "sync", "operand", [0])
            valid_p, first_p, last_p, nf_p = delayed(m, (valid_p, first_p, last_p, nf_p), ~stall,
                                                     "r")

        # -- popcount per PE, with the control flags pipelined alongside ----------------------
        matches = [popcount_tree(m, products[k], stages=self.popcount_stages, en=~stall,
                                 name=f"pc{k}", style=self.popcount_style) for k in range(pe)]
        for s in range(self.popcount_stages):
            valid_p, first_p, last_p, nf_p = delayed(m, (valid_p, first_p, last_p, nf_p), ~stall,
                                                     f"p{s}")

        # -- accumulate, threshold, output -----------------------------------------------------
        count_bits = mw.bit_length()
        accs = [Signal(count_bits, name=f"acc{k}", reset_less=True) for k in range(pe)]
        nexts = [Signal(count_bits, name=f"acc_next{k}") for k in range(pe)]
        accumulate(m, accs, nexts, matches, first_p, ~stall & valid_p)

        if self.thresholds is None:
            lanes = []
            for k, nxt in enumerate(nexts):
                lane = Signal(signed(self.acc_bits), name=f"out{k}")
                m.d.comb += lane.eq(2 * nxt - mw)
                lanes.append(lane)
            result = Cat(*lanes)
        else:
            bits = []
            tbits = (mw + 2).bit_length() + 1
            for k, nxt in enumerate(nexts):
                chans = [nf_i * pe + k for nf_i in range(nf_max)]
                t = [Const(int(self.thresholds[c]), signed(tbits)) for c in chans]
                ge = [Const(int(self.greater_equal[c]), 1) for c in chans]
                if nf_max == 1:
                    t_k, ge_k = t[0], ge[0]
                else:
                    t_k, ge_k = Array(t)[nf_p], Array(ge)[nf_p]
                count = Cat(nxt, Const(0, 1)).as_signed()
                bits.append(Mux(ge_k, count >= t_k, count <= t_k))
            result = Cat(*bits)

        output_beat(m, self.o, out_valid, stall, valid_p, last_p, result)
        return m
