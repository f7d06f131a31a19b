"""Double-buffered input banks: a unit's frame arrives in one bank while it reads the other.

The banks are also the stream width converter between layers: beats of any width that divides
the frame are collected, and the unit reads whatever word it needs. In flip-flops they are shift
registers (beats arrive in order, so no per-word write decoding); in block RAM one memory holds
both banks.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, Value
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
    ``memory`` (block RAM, or None) and ``banks`` (the two flip-flop banks, or None). The caller
    drives ``ready`` of its input and passes the accepting condition to :meth:`write`.
    """

    READ_DELAY = 1  # a frame whose last beat is written in cycle c can be read from c + 1

    def __init__(self, m: Module, beats: int, beat_width: int, frame_width: int, bram: bool,
                 *, contiguous: bool = False, attrs: dict | None = None):
        """``contiguous``: bank 1 starts at word ``beats`` (the RAM holds exactly two frames;
        addresses need an adder) instead of at the next power of two (bank = top address
        bit)."""
        self.beats = beats
        self.full = Signal(2)
        self.wbank = Signal()
        self.widx = Signal(range(max(beats, 2)))
        self.contiguous = contiguous
        self.memory, self.banks = None, None
        if bram:
            depth = self.ram_depth(beats, contiguous)
            self.memory = Memory(shape=beat_width, depth=depth, init=[], attrs=attrs)
            m.submodules.input_banks = self.memory
        else:
            self.banks = [Signal(frame_width, name=f"bank{b}", reset_less=True)
                          for b in range(2)]

    @staticmethod
    def ram_depth(beats: int, contiguous: bool = False) -> int:
        """Words of the block RAM holding both banks of ``beats`` beats each."""
        return 2 * beats if contiguous else 2 << (max(beats, 2) - 1).bit_length()

    @staticmethod
    def bits(beats: int, beat_width: int, frame_width: int, bram: bool) -> int:
        """Bits the two banks hold as built: the block RAM's words, or two flip-flop frames."""
        return InputBanks.ram_depth(beats) * beat_width if bram else 2 * frame_width

    @staticmethod
    def storage(in_width: int, simd: int, bits: int, mw: int, dense: bool = True) -> str:
        """Where a unit keeps its banks: ``"bram"`` when its input beat is one SIMD word, its
        lanes read the same synapse fold at each step (no zero-skip schedule) and a frame holds
        at least :data:`BRAM_MIN_BITS` bits over 4 or more words (flip-flops would cost two per
        bit, the RAM a fraction of one block); otherwise ``"registers"``."""
        words = mw * bits // max(in_width, 1)
        if dense and in_width == simd * bits and words >= 4 and mw * bits >= BRAM_MIN_BITS:
            return "bram"
        return "registers"

    def address(self, bank: Value, word: Value) -> Value:
        """The RAM address of beat ``word`` of ``bank``."""
        if self.contiguous:
            return Mux(bank, self.beats, 0) + word
        return Cat(word.as_unsigned()[:len(self.widx)], bank)

    def write(self, m: Module, accept: Value, beat: Value) -> None:
        if self.memory is not None:
            port = self.memory.write_port()
            m.d.comb += [port.addr.eq(self.address(self.wbank, self.widx)), port.data.eq(beat),
                         port.en.eq(accept)]
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
