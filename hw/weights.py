"""Weight storage for a unit: constants, LUT ROM, or block RAM, chosen from the fold.

All three give the word addressed in one cycle on the next cycle (the timing of a synchronous
block-RAM read), so the choice never changes the cycle model.

- ``constants`` (one word): the weights are wires; an XNOR with a constant is a wire or an
  inverter and vanishes into the popcount's first level.
- ``lut`` (two words, or any number when the folding asks for ``lut_weights``): each weight
  bit is a logic function of the registered address. With one address bit the ROM, the XNOR
  and the popcount's first full adder fit together in the same 4-input LUTs (address bit plus
  three activation bits). With more address bits they no longer fit and a LUT ROM costs about
  1.3 LUT4 per stored bit per 16 words: more logic than block RAM plus the XNOR, but no blocks,
  which is the better trade for a wide, shallow ROM (16 words × 2,304 bits take 64 DP16KD).
  Over two words it is a memory marked ``rom_style = "logic"`` read through the registered
  address (unmarked, yosys takes a deep table into block RAM on iCE40).
- ``bram`` (more words): an ``amaranth.lib.memory.Memory`` with a synchronous read port, marked
  for block RAM (yosys would otherwise build a ROM of 64 words or fewer from LUTs, which for a
  wide word costs far more than the blocks).
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Const, Module, Signal, Value
from amaranth.lib.memory import Memory

__all__ = ["LUT_ROM_MAX_WORDS", "rom_functions", "rom_stored_bits", "weight_storage",
           "weight_rom"]

LUT_ROM_MAX_WORDS = 2


def weight_storage(words: int, lut: bool = False) -> str:
    """``constants`` (one word), ``lut`` (two, fused with the first adder level, or any number
    with ``lut``) or ``bram``."""
    if words == 1:
        return "constants"
    if words <= LUT_ROM_MAX_WORDS or lut:
        return "lut"
    return "bram"


def _varying(columns: np.ndarray) -> np.ndarray:
    columns = np.asarray(columns, dtype=bool)
    return columns[:, columns.min(axis=0, initial=True) != columns.max(axis=0, initial=False)]


def rom_stored_bits(columns: np.ndarray) -> int:
    """The bits of a ROM given as ``(words, width)`` bits that a memory must keep: the columns
    that differ between words (synthesis makes a column equal in every word a constant)."""
    return _varying(columns).shape[1]


def rom_functions(columns: np.ndarray) -> int:
    """The different logic functions of the address a ROM in logic needs: its distinct
    non-constant columns (yosys builds one for every equal column: CNV_1W1A's second layer,
    8 words × 4,608 bits at PE 8, keeps 4,579 bits in 254 functions, and 3 address bits give at
    most 254)."""
    varying = _varying(columns)
    return len(np.unique(varying, axis=1).T) if varying.shape[1] else 0


def weight_rom(m: Module, words: list[int], width: int, addr: Value, en: Value,
               name: str = "weights", lut: bool = False) -> Value:
    """The word at ``addr`` one cycle later (while ``en``); ``words`` are ``width``-bit ints;
    ``lut`` keeps more than two words in logic instead of block RAM."""
    kind = weight_storage(len(words), lut)
    if kind == "constants":
        return Const(words[0], width)
    if kind == "lut":
        registered = Signal(len(addr), name=f"{name}_addr")
        with m.If(en):
            m.d.sync += registered.eq(addr)
        word = Signal(width, name=f"{name}_word")
        if len(words) <= LUT_ROM_MAX_WORDS:  # a multiplexer that merges into the logic it feeds
            m.d.comb += word.eq(Array(Const(w, width) for w in words)[registered])
            return word
        # a ROM marked for logic: unmarked, yosys would take a deep one into block RAM
        rom = Memory(shape=width, depth=len(words), init=words,
                     attrs={"rom_style": "logic", "ram_style": "logic"})
        m.submodules[name] = rom
        port = rom.read_port(domain="comb")
        m.d.comb += [port.addr.eq(registered), word.eq(port.data)]
        return word
    rom = Memory(shape=width, depth=len(words), init=words,
                 attrs={"rom_style": "block", "ram_style": "block"})
    m.submodules[name] = rom
    port = rom.read_port(domain="sync")
    m.d.comb += [port.addr.eq(addr), port.en.eq(en)]
    return port.data
