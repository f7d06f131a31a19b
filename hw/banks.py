"""Double-buffered input banks: a unit's frame arrives in one bank while it reads the other.

The banks are also the stream width converter between layers: beats of any width that divides
the frame are collected, and the unit reads whatever word it needs. In flip-flops they are shift
registers (beats arrive in order, so no per-word write decoding); in block RAM one memory holds
both banks, or one memory per lane when the lanes read different words at each step (a
zero-skip schedule): lane ``l``'s memory holds element ``l`` of every beat.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib.memory import Memory

__all__ = ["InputBanks", "shift_in", "BRAM_MIN_BITS"]

BRAM_MIN_BITS = 256  # frames smaller than this stay in flip-flops


def shift_in(bank, beat):
    """The bank with ``beat`` entering at the top: after ``in_beats`` beats, beat ``k`` sits at
    word ``k``. Beats arrive in order, so a shift register replaces addressed writes and each
    flip-flop takes its neighbour's bit: no write-enable decoding per word."""
    if len(beat) == len(bank):
        return beat
    return Cat(bank[len(beat):], beat)


class InputBanks:
    """Two frame banks filled beat by beat, in flip-flops (shift registers) or one block RAM.

    Attributes: ``full`` (2 bits), ``wbank`` (the bank being written), ``widx`` (its beat),
    ``memory`` (block RAM, or None), ``memories`` (the per-lane block RAMs when ``lanes > 1``:
    beat bits ``l·w .. (l+1)·w − 1`` to memory ``l``, else None) and ``banks`` (the two
    flip-flop banks, or None). The caller drives ``ready`` of its input and passes the accepting
    condition to :meth:`write`.
    """

    READ_DELAY = 1  # a frame whose last beat is written in cycle c can be read from c + 1
    # a unit's banks are marked for block RAM, as the estimate counts them: unmarked, yosys
    # took a shallow, wide one into LUT RAM on ECP5 (32 × 128 bits: 64 TRELLIS_DPR16X4 and a
    # 128-bit read register, for an estimated 4 DP16KD)
    BLOCK = {"ram_style": "block"}

    def __init__(self, m: Module, beats: int, beat_width: int, frame_width: int, bram: bool,
                 *, contiguous: bool = False, attrs: dict | None = None, lanes: int = 1,
                 lane_bits: int | None = None):
        """``contiguous``: bank 1 starts at word ``beats`` (the RAM holds exactly two frames;
        addresses need an adder) instead of at the next power of two (bank = top address
        bit). ``lanes``: block RAM split into that many memories of ``lane_bits`` each, one
        per lane of a word of ``lanes`` elements; a beat carries a whole number of elements,
        and a whole number of beats makes a word."""
        self.beats = beats
        self.full = Signal(2)
        self.wbank = Signal()
        self.widx = Signal(range(max(beats, 2)))
        self.contiguous = contiguous
        self.memory, self.memories, self.banks = None, None, None
        self.lane_bits = lane_bits or beat_width
        words = beats
        if bram and lanes > 1:
            per_beat = beat_width // self.lane_bits
            if beat_width % self.lane_bits or lanes % per_beat:
                raise ValueError(f"a beat of {beat_width} bits must carry a divisor of "
                                 f"lanes={lanes} elements of {self.lane_bits} bits")
            self.group = lanes // per_beat  # beats per word
            words = beats // self.group
            self.memories = []
            for lane, (depth, width) in enumerate(self.ram_shapes(beats, beat_width, lanes,
                                                                  self.lane_bits)):
                memory = Memory(shape=width, depth=depth, init=[], attrs=attrs)
                m.submodules[f"input_banks{lane}"] = memory
                self.memories.append(memory)
        elif bram:
            depth = self.ram_depth(beats, contiguous)
            self.memory = Memory(shape=beat_width, depth=depth, init=[], attrs=attrs)
            m.submodules.input_banks = self.memory
        else:
            self.banks = [Signal(frame_width, name=f"bank{b}", reset_less=True)
                          for b in range(2)]
        self.word_bits = (max(words, 2) - 1).bit_length()

    @staticmethod
    def ram_depth(beats: int, contiguous: bool = False) -> int:
        """Words of the block RAM holding both banks of ``beats`` beats each."""
        return 2 * beats if contiguous else 2 << (max(beats, 2) - 1).bit_length()

    @staticmethod
    def ram_shapes(beats: int, beat_width: int, lanes: int = 1,
                   lane_bits: int | None = None) -> list[tuple[int, int]]:
        """``(depth, width)`` of each block RAM the banks take: one memory of whole beats, or
        ``lanes`` memories of one element (``lane_bits``) per word each."""
        if lanes == 1:
            return [(InputBanks.ram_depth(beats), beat_width)]
        words = beats * beat_width // (lanes * lane_bits)
        return [(InputBanks.ram_depth(words), lane_bits)] * lanes

    @staticmethod
    def storage(in_width: int, simd: int, bits: int, mw: int, dense: bool = True) -> str:
        """Where a unit keeps its banks: ``"bram"`` when a frame holds at least
        :data:`BRAM_MIN_BITS` bits over 4 or more words (flip-flops would cost two per bit, the
        RAM a fraction of one block) and its input beat is one SIMD word. With a zero-skip
        schedule (``dense`` false) the lanes read different words, so each lane has its own
        memory (:meth:`ram_shapes`): the bound applies to one lane's share, and a beat may
        carry any divisor of SIMD elements. Otherwise ``"registers"``."""
        words = mw * bits // max(in_width, 1)
        if dense:
            fits, share = in_width == simd * bits, mw * bits
        else:
            fits = in_width % bits == 0 and simd % (in_width // bits) == 0
            share = mw * bits // simd
        if fits and words >= 4 and share >= BRAM_MIN_BITS:
            return "bram"
        return "registers"

    def address(self, bank: Value, word: Value) -> Value:
        """The RAM address of beat ``word`` of ``bank``."""
        if self.contiguous:
            return Mux(bank, self.beats, 0) + word
        return Cat(word.as_unsigned()[:self.word_bits], bank)

    def write(self, m: Module, accept: Value, beat: Value) -> None:
        if self.memory is not None:
            port = self.memory.write_port()
            m.d.comb += [port.addr.eq(self.address(self.wbank, self.widx)), port.data.eq(beat),
                         port.en.eq(accept)]
        elif self.memories is not None:  # lane l: element l % E of beat ⌊l / E⌋ of a word
            bits, group = self.lane_bits, self.group
            per_beat = len(beat) // bits
            word, part = self.widx, Const(0, 1)
            if group > 1:
                word, part = Signal(self.word_bits), Signal(range(group))
                with m.If(accept):
                    with m.If(self.widx == self.beats - 1):
                        m.d.sync += [word.eq(0), part.eq(0)]
                    with m.Elif(part == group - 1):
                        m.d.sync += [word.eq(word + 1), part.eq(0)]
                    with m.Else():
                        m.d.sync += part.eq(part + 1)
            for lane, memory in enumerate(self.memories):
                port = memory.write_port()
                m.d.comb += [port.addr.eq(self.address(self.wbank, word)),
                             port.data.eq(beat.word_select(lane % per_beat, bits)),
                             port.en.eq(accept & (part == lane // per_beat))]
        else:
            with m.If(accept):
                for b in range(2):
                    with m.If(self.wbank == b):
                        m.d.sync += self.banks[b].eq(shift_in(self.banks[b], beat))
        with m.If(accept):
            with m.If(self.widx == self.beats - 1):
                m.d.sync += [self.widx.eq(0), self.wbank.eq(~self.wbank),
                             self.full.bit_select(self.wbank, 1).eq(1)]
            with m.Else():
                m.d.sync += self.widx.eq(self.widx + 1)
