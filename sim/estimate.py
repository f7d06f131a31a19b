"""Resource estimates: LUT4s, flip-flops and block RAMs per layer, before any synthesis.

The LUT4 and flip-flop estimates are per family (iCE40 or ECP5) and follow the units' structure:
the trees state their own sums and registers (:func:`~lowbit.hw.popcount.popcount_size`,
:func:`~lowbit.hw.adder.adder_tree_size`), and the remaining coefficients are fitted per unit
to ``synth_ice40`` / ``synth_ecp5 -noflatten`` (see :func:`unit_luts`). The block-RAM count
sizes the memories the RTL builds, from the units' own layouts (the MVTU's and MVAU's weight
ROM words, the input banks' and the window generator's frame memories). ``auto`` folding
budgets with these numbers.
"""

from __future__ import annotations

import math

import numpy as np
from lowbit.hw.adder import adder_tree_size
from lowbit.hw.engines import plane_coefficients
from lowbit.hw.mvau import MVAU
from lowbit.hw.mvtu import MVTU
from lowbit.hw.network import POPCOUNT_STYLE
from lowbit.hw.plan import LayerPlan
from lowbit.hw.pool import MaxPoolUnit
from lowbit.hw.popcount import popcount_size
from lowbit.hw.weights import LUT_ROM_MAX_WORDS, rom_functions, rom_stored_bits, weight_storage
from lowbit.hw.window import WindowGenerator
from lowbit.sw.ir import MatVec

__all__ = ["BRAM", "unit_luts", "unit_ffs", "layer_luts", "layer_ffs", "layer_bram_blocks",
           "layer_memories", "ram_blocks", "ram_mapping", "weight_rom_columns",
           "weight_rom_shape"]

# block RAM port shapes per family, ``(depth, width, lane)``: ``lane`` is the write-enable
# granularity in bits (SB_RAM40_4K masks single bits at 256 × 16; DP16KD enables 9-bit bytes
# at 18 and 36 bits wide, the latter as PDPW16KD)
BRAM = {"ice40": ((256, 16, 1), (512, 8, 8), (1024, 4, 4), (2048, 2, 2)),
        "ecp5": ((512, 36, 9), (1024, 18, 9), (2048, 9, 9), (4096, 4, 4), (8192, 2, 2),
                 (16384, 1, 1))}


# LUT4 per popcount logic bit (popcount_size): carry-chain sums on iCE40, yosys's Wallace tree
# of LUT full adders on ECP5 (fitted per unit, see unit_luts)
POPCOUNT_LUTS = {"ice40": 0.65, "ecp5": 1.65}

# yosys's cost of one block (techlibs ice40/brams.txt, lattice/brams_16kd.txt)
BLOCK_COST = {"ice40": 64, "ecp5": 128}
# LUT4 per sum bit of a multi-bit adder tree: one on iCE40 (a LUT beside each SB_CARRY); on
# ECP5 synth_ecp5 packs the trees tighter (fitted to 7 units of the add/subtract and multiply
# engines in bench/estimate_accuracy.py's CNNs, PE 2 to 16, SIMD 9 to 100, 0 to 3 stages:
# 0.64 to 1.0, most near 0.7)
ADDER_LUTS = {"ice40": 1.0, "ecp5": 0.7}
# a multiply lane's term on ECP5 (``synth_ecp5 -nodsp``: yosys's multipliers there use carry
# chains, a CCU2C counting as two LUT4): 1.5 times the iCE40 structure, fitted to a 100-lane
# 2-bit × int4 unit (3,413 LUT4-equivalents on ECP5 against 2,826 SB_LUT4 on iCE40)
MULTIPLY_LUTS = {"ice40": 1.0, "ecp5": 1.5}

# LUT4 per input beyond one of an XNOR unit's read multiplexer in flip-flop banks (the bank
# select and the synapse fold, per lane), fitted per unit to synth_ice40 / synth_ecp5
# -noflatten: 0.65 up to SIMD 64 (TFC and the built-in model, SIMD 16 to 64), 0.8 from
# WIDE_SIMD on (CNV_1W1A's layers at SIMD 96 to 384 and SF 2 to 24: 0.80 to 0.87 on both
# families)
XNOR_MUX_LUTS, XNOR_MUX_LUTS_WIDE, WIDE_SIMD = 0.65, 0.8, 96


def ram_mapping(depth: int, width: int, family: str, writable: bool = False) -> tuple[int, int]:
    """``(blocks, chunks)`` of ``family`` a memory of ``depth`` words × ``width`` bits maps
    onto, as yosys's ``memory_libmap`` maps it. In a port shape ``(d, w)`` the memory is cut
    into ``chunks = ceil(depth / d)`` chunks of ``d`` words whose bits are packed side by side,
    ``w`` to a block (a 36,864 × 16 ROM takes 32 DP16KD, not 64); a written memory packs whole
    write lanes only (a 9,216 × 4 RAM takes 3 DP16KD, its 4-bit chunks one 9-bit lane each). Of
    the shapes, yosys takes the cheapest: the blocks at their cost plus the multiplexer between
    chunks, half a unit per chunk bit (fitted to 38 mappings by synth_ice40 and synth_ecp5;
    a 7,200 × 16 RAM takes 30 SB_RAM40_4K as 15 × 2 of 512 × 8, not 29 of 256 × 16)."""
    def shape(d: int, w: int, lane: int) -> tuple[float, int, int]:
        chunks = -(-depth // d)
        if writable:
            blocks = -(-chunks * -(-width // lane) // (w // lane))
        else:
            blocks = -(-chunks * width // w)
        return BLOCK_COST[family] * blocks + chunks * width / 2, blocks, chunks
    return min(shape(*s) for s in BRAM[family])[1:]


def ram_blocks(depth: int, width: int, family: str, writable: bool = False) -> int:
    """Blocks of ``family`` a memory of ``depth`` × ``width`` takes (:func:`ram_mapping`)."""
    return ram_mapping(depth, width, family, writable)[0]


def weight_rom_columns(lp: LayerPlan) -> np.ndarray:
    """The layer's weight ROM as its unit builds it, as ``(words, width)`` bits."""
    layer = lp.layer
    if lp.engine == "xnor":
        return MVTU.rom_columns(layer.weights > 0, lp.pe, lp.simd)
    layout = MVAU.rom_layout(lp.engine, layer.weights, lp.pe, lp.simd, lp.schedule)
    return layout.columns(lp.engine, layer.weights, lp.pe, lp.simd, lp.schedule)


def weight_rom_shape(lp: LayerPlan) -> tuple[int, int]:
    """``(words, bits)`` of the layer's weight ROM as its unit builds it, counting only the
    word bits that differ between words (a bit that is the same in every word is a constant,
    and synthesis keeps no memory for it)."""
    columns = weight_rom_columns(lp)
    return len(columns), rom_stored_bits(columns)


def layer_memories(lp: LayerPlan, family: str) -> list[tuple[int, int, bool]]:
    """The layer's memories in block RAM, ``(depth, width, writable)``: its weight ROM (more
    than two words), its input banks when in block RAM, the pool's row of partial maxima, and
    a window generator's banks or ring where they land in block RAM
    (:meth:`~lowbit.hw.window.WindowGenerator.bank_ram`)."""
    memories = []
    if lp.weight_storage == "bram":
        words, width = weight_rom_shape(lp)
        memories += [(words, width, False)] if width else []
    memories += [(depth, width, True) for depth, width in lp.bank_shapes]
    partial = _pool_ram(lp, family)
    if partial is not None:
        memories.append((*partial, True))
    if lp.layer.window is not None:
        ram = WindowGenerator.bank_ram(lp.layer.window, lp.in_width, lp.in_elem_bits, family,
                                       lp.line_buffer)
        if ram is not None:
            memories.append((*ram, True))
    return memories


def layer_bram_blocks(lp: LayerPlan, family: str) -> int:
    """Block RAMs of the layer's memories (:func:`layer_memories`)."""
    return sum(ram_blocks(depth, width, family, writable)
               for depth, width, writable in layer_memories(lp, family))


def _ram_mux_luts(lp: LayerPlan, family: str) -> int:
    """The multiplexers between the chunks of a memory deeper than one block's port: one
    LUT4 per 2:1 step and bit (measured on TFC_2W2A's first layer, 6,272 × 16 codes in 13
    chunks of 512 × 8 on iCE40)."""
    return sum((ram_mapping(depth, width, family, writable)[1] - 1) * width
               for depth, width, writable in layer_memories(lp, family))


def _table_luts(entries: int, width: int) -> float:
    """LUT4s of a constant table read by an index: 16 entries per LUT4, plus the muxes."""
    if entries <= 1:
        return 0.0
    if entries <= 4:  # a few address bits: shares LUTs with the logic it feeds
        return width * 0.5
    return width * math.ceil(entries / 16) * 1.3


def _threshold_table_luts(entries: int, width: int) -> float:
    """LUT4s of a threshold table indexed by the neuron fold: past 16 entries, one LUT4 per 16
    entries and bit and a tree of 2:1 multiplexers of one LUT4 each, as a deep weight ROM in
    logic on iCE40 (:func:`_rom_luts`; ``synth_ecp5 -nowidelut`` has no wide-mux cells
    either): CNV_1W1A's fully connected layers, 512 entries of 10 and 11 bits, took about 60
    LUT4 a bit, not the 42 of :func:`_table_luts`."""
    if entries <= 16:
        return _table_luts(entries, width)
    return _mux_tree_luts(entries, width)


def _mux_tree_luts(entries: int, width: int) -> int:
    """A deep table in LUT4s without wide-mux cells: one LUT4 per 16 entries and bit, then a
    tree of 2:1 multiplexers of one LUT4 each."""
    return width * (2 * math.ceil(entries / 16) - 1)


def _term_width(layer: MatVec, engine: str) -> int:
    """Bits of one MVAU lane's signed term (the magnitude ``|w|·x`` plus a sign bit)."""
    in_bits = layer.in_values.bits
    top = int(np.abs(layer.weights).max(initial=1)) or 1
    extra = {"addsub": 0, "ternary": 0 if top == 1 else top.bit_length(),
             "shift": top.bit_length() - 1, "multiply": top.bit_length()}[engine]
    return in_bits + extra + 1


def unit_luts(layer: MatVec, engine: str, pe: int, simd: int, cycles: int,
              input_bram: bool = False, storage: str | None = None, stages: int = 0,
              family: str = "ice40", planes: int | None = None) -> int:
    """The resource estimate for one unit in LUT4s, from the unit's structure.

    XNOR + popcount per PE: the popcount tree's logic (:func:`~lowbit.hw.popcount.popcount_size`:
    full adders and carry-chain sums on iCE40, yosys's Wallace tree on ECP5), plus one XNOR per
    synapse unless the weights are constants or a two-word LUT ROM (then it merges into the
    first level). Other engines, per lane: the term logic (sign complement, gate, shift or
    multiply), then the adder tree's sums (:func:`~lowbit.hw.adder.adder_tree_size`). The
    bit-plane engine: :func:`_bitplane_luts`, an AND per lane and plane unless the weights are
    constants, the accumulator's shift between passes (``planes`` input planes per pass).
    Threshold
    tables indexed by the neuron fold are logic (:func:`_threshold_table_luts`). Then
    accumulators, comparators, the input banks' read multiplexer (the bank select, and the
    synapse-fold select) and control. ``cycles`` is the schedule length. The coefficients are
    fitted per unit to ``synth_ice40`` / ``synth_ecp5 -noflatten`` of the designs
    bench/estimate_accuracy.py lists.
    """
    mh, mw = layer.out_features, layer.in_features
    nf, sf = mh // pe, mw // simd
    in_bits = layer.in_values.bits
    count = mw.bit_length()
    passes = in_bits // planes if engine == "bitplane" else 1
    words = cycles // passes  # the weight ROM's
    storage = storage or weight_storage(words)
    fused = storage == "constants" or (storage == "lut" and words <= LUT_ROM_MAX_WORDS)
    act = layer.activation
    levels = 1 if act is None else act.levels
    if engine == "xnor":
        acc = count
        logic, _ = popcount_size(simd, stages, POPCOUNT_STYLE[family])
        per_pe = logic * POPCOUNT_LUTS[family] + (0 if fused else simd)
    elif engine == "bitplane":
        acc = layer.acc_bits
        per_pe, shared = _bitplane_luts(layer, simd, stages, planes, fused, family)
        per_pe += acc  # the accumulator's shift between passes
    else:
        exps = max(1, int(np.abs(layer.weights).max(initial=1)).bit_length())
        width = _term_width(layer, engine)
        lanes = simd
        if cycles == 1:  # constants: zero weights vanish, the rest is wiring or constant logic
            lanes = max(1, round(simd * float(np.count_nonzero(layer.weights))
                                 / max(1, layer.weights.size)))
        gate = {"addsub": 0, "ternary": in_bits, "shift": in_bits, "multiply": 0}[engine]
        shape = {"addsub": 0, "ternary": 0,
                 "shift": (in_bits + exps) * max(1, (exps - 1).bit_length()),
                 "multiply": in_bits * layer.weight_bits}[engine]
        if cycles == 1:  # a constant sign is an inverter, a constant shift wiring
            term = 0 if engine in ("addsub", "ternary", "shift") else shape / 2
        else:
            term = (gate + shape + width) * (MULTIPLY_LUTS[family] if engine == "multiply" else 1)
        adders, _ = adder_tree_size([width] * lanes, stages)
        acc = layer.acc_bits
        per_pe = lanes * term + adders * ADDER_LUTS[family]
    if act is not None:
        thresholds = levels * (acc + 1 + _threshold_table_luts(nf, acc + 1))
    else:
        thresholds = acc + _threshold_table_luts(nf, acc)  # output offset / accumulator lanes
    per_pe += 2 * acc + thresholds
    # the input banks' read: the bank select, then the synapse fold per lane (fitted: LUT4 per
    # multiplexer input beyond one, XNOR_MUX_LUTS(_WIDE) for the MVTU, 0.65 for the MVAU). The MVTU
    # selects among 2·SF words per lane; the MVAU selects the bank for the whole frame first,
    # then SF words per lane (one select per lane, and a gate, when zero-skip makes the lanes'
    # schedules differ; on iCE40 yosys then builds a 2·SF-input multiplexer per lane instead).
    if input_bram:
        read_mux = 0
    elif sf == 1:
        read_mux = simd * in_bits
    elif engine == "xnor":
        per_input = XNOR_MUX_LUTS_WIDE if simd >= WIDE_SIMD else XNOR_MUX_LUTS
        read_mux = simd * in_bits * per_input * (2 * sf - 1)
    elif words == nf * sf:  # dense: one select for all lanes
        read_mux = mw * in_bits + simd * in_bits * 0.65 * (sf - 1)
    elif family == "ice40":  # zero-skip: yosys folds the bank select into each lane's mux
        read_mux = simd * in_bits * 1.2 * (2 * sf - 1)  # (TFC_2W2A, fitted per lane)
    else:
        read_mux = mw * in_bits + simd * in_bits * (0.65 * (sf - 1) + 1)
    control = 70 + 2 * (math.ceil(math.log2(max(cycles, 2))))  # counters, flags, handshakes
    if engine == "bitplane":
        control += shared
    return int(round(pe * per_pe + read_mux + control))


def _bitplane_luts(layer: MatVec, simd: int, stages: int, planes: int, fused: bool,
                   family: str) -> tuple[float, float]:
    """``(per PE, shared)`` LUT4s of the bit-plane engine's sums: per PE a popcount of SIMD
    lanes per weight plane and input plane of the pass (and an AND per lane unless the
    weights are constants, or a two-word ROM that merges into the popcount), their
    constant-weighted sum; shared by the PEs the popcounts of the plain input planes
    (``ones``) and each lane's choice of the pass's planes among all of them."""
    coefficients, ones = plane_coefficients(layer.weights)
    logic, _ = popcount_size(simd, stages, POPCOUNT_STYLE[family])
    counts = len(coefficients) * planes
    count_bits = simd.bit_length()
    terms = [count_bits + abs(c).bit_length() + j for c in coefficients for j in range(planes)]
    adders, _ = adder_tree_size(terms + ([count_bits + planes] * planes if ones else []))
    per_pe = (counts * logic * POPCOUNT_LUTS[family] + adders * ADDER_LUTS[family]
              + (0 if fused else simd * counts))
    passes = layer.in_values.bits // planes
    shared = (planes * logic * POPCOUNT_LUTS[family] if ones else 0) \
        + simd * planes * (passes - 1)
    return per_pe, shared


def unit_ffs(layer: MatVec, engine: str, pe: int, simd: int, stages: int, cycles: int,
             input_bram: bool, out_width: int, family: str = "ice40",
             dense: bool = True, planes: int | None = None) -> int:
    """Flip-flops of one unit: input banks (none in block RAM), operand and weight-code
    registers, the tree's pipeline registers (as the tree builds them), accumulators, the
    output beat and control. ``dense``: the schedule skips no zeros."""
    bits = layer.in_values.bits
    banks = 0 if input_bram else 2 * layer.in_features * bits
    # the lanes' operand registers: the RAM's read register holds them for the XNOR unit and
    # for per-lane memories (a zero-skip schedule)
    operands = 0 if input_bram and (engine == "xnor" or not dense) else simd * bits
    if engine == "xnor":
        _, tree = popcount_size(simd, stages, POPCOUNT_STYLE[family])
        acc = layer.in_features.bit_length()
    elif engine == "bitplane":
        coefficients, ones = plane_coefficients(layer.weights)
        passes = bits // planes
        if cycles > passes:
            operands += pe * simd * len(coefficients)
        _, per_count = popcount_size(simd, stages, POPCOUNT_STYLE[family])
        tree = len(coefficients) * planes * per_count
        operands += planes * per_count if ones else 0
        acc = layer.acc_bits
    else:
        if cycles > 1:
            operands += pe * simd * MVAU.code_bits_for(engine, layer.weights)
        _, tree = adder_tree_size([_term_width(layer, engine)] * simd, stages)
        acc = layer.acc_bits
    control = 24  # flags, handshakes, the step counter
    if engine == "bitplane":
        control += 2 * max(1, (bits // planes - 1).bit_length()) + 1  # the pass, and its shift
    if engine != "xnor" and dense and cycles > 1:
        # a dense schedule's folds are counted beside the ROM word (hw.mvau: sf and its
        # registered select, the neuron fold twice, first and last)
        sf_bits = max(1, (layer.in_features // simd - 1).bit_length())
        nf_bits = MVAU.nf_bits(layer.out_features // pe)
        control += 2 * (sf_bits + nf_bits) + 2
    if input_bram:
        # yosys keeps the RAM's read word and the word being written in fabric registers
        # (SB_RAM40_4K has no read-first mode), measured on TFC_1W1A's first layer; on ECP5
        # the same for banks marked for block RAM (bench/bitplane_luts.py: 256 FF more on a
        # 16-lane 8-bit bank, 1,024 on a 64-lane one)
        banks += 2 * simd * bits
    return banks + operands + pe * tree + pe * acc + out_width + control


def _pool_ram(lp: LayerPlan, family: str) -> tuple[int, int] | None:
    """The pool's row of partial maxima as a block RAM on ``family``, or None."""
    pool = lp.layer.pool
    if pool is None:
        return None
    return MaxPoolUnit.partial_ram(pool.out_width, lp.layer.out_features, lp.pe, lp.lane_bits,
                                   family)


def _window_luts(lp: LayerPlan, family: str) -> int:
    """Window generator (counters, stepped address registers, padding muxes) and max pool
    (a row of partial maxima in block RAM, flip-flops or LUT RAM, comparators), in LUT4s (on
    ECP5 a carry cell counts as two, :func:`~lowbit.export.synth.count_cells`); fitted to
    ``synth_ice40 -noflatten`` of a four-convolution network (160–470 LUT4 per layer, within
    10 %), and on iCE40 to bench/estimate_accuracy.py's two small CNNs in both window modes
    (the base and padding terms, and a ring under a block's worth kept in logic: its write
    enables and read multiplexer)."""
    layer = lp.layer
    if layer.window is None:
        return 0
    w = layer.window
    counters = 6 * sum(max(1, (v - 1).bit_length()) for v in
                       (w.out_height, w.out_width, *w.kernel, w.height * w.width))
    pad = (lp.in_width // lp.in_elem_bits) * layer.in_values.bits if w.padded else 0
    # the needed-word sum, kept in a register beside its two parts (two adders)
    counters += 2 * _need_bits(lp)
    base = 80
    if family == "ice40":
        base, pad = 110, pad + (50 if w.padded else 0)
    if lp.line_buffer:  # ring addresses (a compare and subtract per step), the floor, room
        counters += 3 * 5 * max(1, (lp.ring_words - 1).bit_length())
        if _ring_in_logic(lp, family):
            counters += round(0.65 * lp.ring_words * lp.in_width) + lp.ring_words
    generator = base + counters + pad
    if family == "ecp5":
        # counters, compares and address sums are carry chains, a CCU2C counting as two LUT4
        # (CNV_1W1A's six generators and the two small CNNs': 1.39 to 1.67 times this structure)
        generator = round(1.5 * generator)
    pool = 0
    if layer.pool is not None and _pool_ram(lp, family) is not None:
        pool = 40 + 4 * lp.out_width  # compare and max per lane, the write bypass
    elif layer.pool is not None and family == "ecp5":
        # LUT RAM read asynchronously: TRELLIS_DPR16X4 cells (16 words × 4 bits, two LUT4
        # each), a multiplexer over their outputs, compare and max per lane (CNV_1W1A's two
        # pools: 162 LUT4 each against 148 and 126 estimated)
        depth = layer.pool.out_width * layer.out_features // lp.pe
        rows = -(-depth // 16)
        cells = rows * -(-lp.out_width // 4)
        # a write enable per row of cells; the read multiplexer 1.5 LUT4 per row and bit
        # (162 and 126 LUT4 at PE 4; 322 and 243 at PE 1, 896 and 640 words)
        pool = (40 + 2 * cells + rows + round(1.5 * (rows - 1) * lp.out_width)
                + 4 * lp.out_width)
    elif layer.pool is not None:
        words = layer.pool.out_width * layer.out_features * layer.activation.out.bits
        pool = 40 + round(2.2 * words) + 2 * lp.out_width
    return generator + pool


def _need_bits(lp: LayerPlan) -> int:
    """Bits of the window generator's needed-word registers (about twice a frame's words)."""
    w = lp.layer.window
    frame = w.height * w.width * w.channels * lp.in_elem_bits // lp.in_width
    return (2 * frame).bit_length() + 1


def _ring_in_logic(lp: LayerPlan, family: str) -> bool:
    """The line-buffer ring is flip-flops (iCE40, too small for a block)."""
    return family == "ice40" and lp.line_buffer and WindowGenerator.bank_ram(
        lp.layer.window, lp.in_width, lp.in_elem_bits, family, True) is None


def _window_ffs(lp: LayerPlan, family: str) -> int:
    """Window generator registers (frame banks live in block RAM) and the pool's row of partial
    maxima (in block RAM: the read word and the bypassed write word, in fabric on iCE40)."""
    layer = lp.layer
    if layer.window is None:
        return 0
    pool = 0
    if layer.pool is not None and _pool_ram(lp, family) is not None:
        pool = 3 * lp.out_width
    elif layer.pool is not None:
        pool = layer.pool.out_width * layer.out_features * layer.activation.out.bits \
            + lp.out_width
    need = _need_bits(lp)  # the needed-word sum
    ring = 0
    if lp.line_buffer:  # ring addresses, and the freed count registered once (FLOOR_DELAY)
        ring = 3 * max(1, (lp.ring_words - 1).bit_length()) + need // 2
    if _ring_in_logic(lp, family):
        ring += lp.ring_words * lp.in_width
    return 48 + 2 * lp.in_width + pool + need + ring


def layer_luts(lp: LayerPlan, family: str = "ice40") -> int:
    """Estimated LUT4s of the layer on ``family``: its unit, window generator and pool."""
    return (unit_luts(lp.layer, lp.engine, lp.pe, lp.simd, lp.schedule.cycles,
                      lp.input_storage == "bram", lp.weight_storage, lp.tree_stages, family,
                      lp.folding.planes_per_cycle)
            + _rom_luts(lp, family) + _window_luts(lp, family) + _ram_mux_luts(lp, family))


def _rom_luts(lp: LayerPlan, family: str = "ice40") -> int:
    """A weight ROM of more than two words kept in logic. Up to 16 words, one LUT4 per
    distinct function of the address (:func:`~lowbit.hw.weights.rom_functions`), half of one
    up to 4 words, where it merges with the logic it reads into. Deeper, a table of the bits
    it stores; on iCE40 one LUT4 per 16 words and bit plus a tree of 2:1 multiplexers of one
    LUT4 each (no wide-mux cells as ECP5's PFUMX): measured on TFC_2W2A's 1,024 × 8 and
    640 × 2 ROMs (990 and 132 LUT4)."""
    if lp.weight_storage != "lut" or lp.schedule.rom_words <= LUT_ROM_MAX_WORDS:
        return 0
    columns = weight_rom_columns(lp)
    words = len(columns)
    if words <= 16:
        return int(round(rom_functions(columns) * (0.5 if words <= 4 else 1.0)))
    if family == "ice40":
        return _mux_tree_luts(words, rom_stored_bits(columns))
    return int(round(_table_luts(words, rom_stored_bits(columns))))


def layer_ffs(lp: LayerPlan, family: str = "ice40") -> int:
    """Estimated flip-flops of the layer on ``family``: its unit (and operand register), window
    generator and pool."""
    return (unit_ffs(lp.layer, lp.engine, lp.pe, lp.simd, lp.tree_stages, lp.schedule.cycles,
                     lp.input_storage == "bram", lp.out_width, family, lp.schedule.dense,
                     lp.folding.planes_per_cycle)
            + _window_ffs(lp, family)
            + (lp.simd * lp.pe if lp.operand_register else 0))
