"""Sliding windows for convolutions, streaming.

:class:`WindowGenerator` turns a feature map, arriving in HWC order (pixels in raster order, the
channels of a pixel innermost, ``in_width`` bits per beat), into the im2col window vectors of a
:class:`~lowbit.sw.ir.ConvWindow`: for each output position, for each kernel position, the words
of one input pixel, or padding. It keeps two frame banks in one memory (block RAM when large), so
the next frame arrives while this one is read. A window is read as soon as the input words it
needs are in (:meth:`WindowGenerator.need_words`: the rows down to its bottom row, and that row
up to its right column), not when the frame has ended, so a layer starts on its first complete
window; window beats then follow one per cycle while the data is there. A padded position
gives the level index of 0; incoming level indices are re-coded on the way out (a bipolar bit
``b`` becomes the ternary index ``2b`` when the layer pads).

The generator holds its output when it is not taken (a stalled generator freezes its read
pipeline), so nothing is lost under back-pressure. Timing: a window's first beat leaves
:attr:`WindowGenerator.FIRST_BEAT_DELAY` cycles after the last input word it needs was written
(or one cycle after the previous window's last beat was taken, whichever is later), and its
other beats follow back to back while they are taken; :mod:`lowbit.sim.timing` composes this
with the unit behind.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .banks import InputBanks

__all__ = ["WindowGenerator", "WINDOW_BRAM_MIN_BITS"]

WINDOW_BRAM_MIN_BITS = 1024  # frame banks this large go to block RAM; smaller: LUT RAM or FFs


class WindowGenerator(wiring.Component):
    """Window vectors of a convolution from a streamed feature map.

    Parameters
    ----------
    window : lowbit.sw.ir.ConvWindow
    in_width : int
        Bits per input beat; holds ``in_width / in_bits`` elements and divides a pixel.
    in_bits, out_bits : int
        Bits per element (a level index) in and out.

    Members
    -------
    i : In(stream.Signature(in_width))
    o : Out(stream.Signature(elements · out_bits))
    """

    FIRST_BEAT_DELAY = 2  # from the write of a window's last needed word to its first beat

    @staticmethod
    def need_words(window, pixel_words: int) -> np.ndarray:
        """Per output position (raster order): how many of the frame's input words (``pixel_words``
        per pixel) must be written before its window is read: all rows above its bottom row, and
        that row up to its right column (clipped to the map; 0 or less: none). The last window
        waits for the whole frame, so its bank is not freed before it was written."""
        (kh, kw), (sh, sw) = window.kernel, window.stride
        rows = np.minimum(np.arange(window.out_height) * sh - window.pads[0] + kh - 1,
                          window.height - 1)
        cols = np.minimum(np.arange(window.out_width) * sw - window.pads[1] + kw - 1,
                          window.width - 1)
        need = ((rows[:, None] * window.width + cols[None, :] + 1) * pixel_words).ravel()
        need[-1] = window.height * window.width * pixel_words  # the bank is freed only once
        return need  # the whole frame is in, though a stride may leave its last rows unread

    @staticmethod
    def out_beat(window, in_width: int, in_bits: int, out_bits: int) -> tuple[int, int]:
        """``(width, beats)`` of the window stream: each beat carries the elements of one input
        beat (``in_width / in_bits``), re-coded to ``out_bits``; a window vector of
        ``kh·kw·channels`` elements takes ``beats`` of them."""
        elements = in_width // in_bits
        (kh, kw) = window.kernel
        return elements * out_bits, kh * kw * window.channels // elements

    @staticmethod
    def bank_bits(window, in_bits: int) -> int:
        """Bits of the two frame banks."""
        return 2 * window.channels * window.height * window.width * in_bits

    @staticmethod
    def bank_ram(window, in_width: int, in_bits: int,
                 family: str | None = None) -> tuple[int, int] | None:
        """``(depth, width)`` of the frame-bank memory when it is marked for block RAM (at least
        :data:`WINDOW_BRAM_MIN_BITS`), else None (LUT RAM or flip-flops). With ``family``: when
        it lands in block RAM there, which on iCE40 (no LUT RAM) it does whatever its size
        (yosys maps an unmarked one into a block too: bench/estimate_accuracy.py's small
        CNNs)."""
        small = WindowGenerator.bank_bits(window, in_bits) < WINDOW_BRAM_MIN_BITS
        if small and family != "ice40":
            return None
        words = window.height * window.width * window.channels * in_bits // in_width
        return InputBanks.ram_depth(words, contiguous=True), in_width

    def __init__(self, window, *, in_width: int, in_bits: int, out_bits: int):
        elements = in_width // in_bits
        if in_width % in_bits or (window.channels * in_bits) % in_width:
            raise ValueError(f"in_width={in_width} must hold whole elements of {in_bits} bits and "
                             f"divide a pixel of {window.channels}")
        self.window = window
        self.in_bits, self.out_bits, self.elements = in_bits, out_bits, elements
        self.pixel_words = window.channels // elements
        self.frame_words = window.height * window.width * self.pixel_words
        self.out_width = elements * out_bits
        super().__init__({
            "i": In(stream.Signature(in_width)),
            "o": Out(stream.Signature(self.out_width)),
        })

    def _recode(self, data):
        """Incoming level indices → the layer's input level indices, element by element."""
        w, n = self.window, self.elements
        if tuple(w.in_map) == tuple(range(len(w.in_map))) and self.in_bits == self.out_bits:
            return data
        table = Array(Const(v, self.out_bits) for v in w.in_map)
        return Cat(*(table[data.word_select(e, self.in_bits)] for e in range(n)))

    def elaborate(self, platform):
        m = Module()
        w = self.window
        frame, wp = self.frame_words, self.pixel_words
        big = self.bank_ram(w, len(self.i.payload), self.in_bits) is not None

        # -- write side: frames into alternate banks of one memory -------------------------
        inputs = InputBanks(m, frame, len(self.i.payload), 0, bram=True, contiguous=True,
                            attrs={"ram_style": "block"} if big else None)
        full, memory = inputs.full, inputs.memory
        m.d.comb += self.i.ready.eq(~full.bit_select(inputs.wbank, 1))
        inputs.write(m, self.i.valid & self.i.ready, self.i.payload)

        # -- read side: output position, kernel position, word of the pixel ---------------
        # The input coordinates and the word address of the beat about to be read are
        # registers stepped by constants (no multipliers, short carry chains):
        # iy = oy·sh + ky − top, ix = ox·sw + kx − left, addr = (iy·W + ix)·WP + j, where the
        # words of one kernel row are consecutive in memory.
        (kh, kw), (sh, sw) = w.kernel, w.stride
        top, left = w.pads[0], w.pads[1]
        width_words = w.width * wp
        rbank = Signal()
        oy = Signal(range(max(w.out_height, 2)))
        ox = Signal(range(max(w.out_width, 2)))
        ky = Signal(range(max(kh, 2)))
        kx = Signal(range(max(kw, 2)))
        j = Signal(range(max(wp, 2)))
        span = (w.height + w.pads[0] + w.pads[2] + w.width + w.pads[1] + w.pads[3]).bit_length()
        coord = signed(span + 2)
        iy, iy0 = Signal(coord, init=-top), Signal(coord, init=-top)
        ix, ix0 = Signal(coord, init=-left), Signal(coord, init=-left)
        first = (-top * w.width - left) * wp
        extent = (w.height + w.pads[0] + w.pads[2] + 1) * (w.width + w.pads[1] + w.pads[3] + 1)
        word = signed((extent * wp).bit_length() + 2)
        addr, row, win, line = (Signal(word, init=first, name=n)
                                for n in ("addr", "row", "win", "line"))
        pad = Signal()
        m.d.comb += pad.eq((iy < 0) | (iy >= w.height) | (ix < 0) | (ix >= w.width))
        # the words the current window needs (need_words): row part + column part, each a
        # register stepped by a constant and clipped at the map's last row / column
        need0 = self.need_words(w, wp)
        row_cap, col_cap = (w.height - 1) * width_words, w.width * wp
        col0 = (min(kw - 1 - left, w.width - 1) + 1) * wp
        row0 = int(need0[0]) - col0
        need_row = Signal(word, init=row0)
        need_col = Signal(word, init=col0)
        row_next, col_next = need_row + sh * width_words, need_col + sw * wp
        row_step = Mux(row_next > row_cap, row_cap, row_next)
        col_step = Mux(col_next > col_cap, col_cap, col_next)
        here = Signal()  # the window's words are written (or its whole frame is)
        last = (oy == w.out_height - 1) & (ox == w.out_width - 1)  # needs the whole frame
        m.d.comb += here.eq(full.bit_select(rbank, 1) | (~last & (inputs.wbank == rbank) &
                                                        (inputs.widx >= need_row + need_col)))

        valid = Signal()  # the output beat register holds a beat
        pad_out = Signal()
        stall = Signal()
        go = Signal()
        m.d.comb += [stall.eq(valid & ~self.o.ready), go.eq(here & ~stall)]
        read = memory.read_port(domain="sync")
        offset = Signal(range(max(frame, 2)))
        m.d.comb += offset.eq(Mux(pad, 0, addr.as_unsigned()[:len(offset)]))
        m.d.comb += [read.addr.eq(inputs.address(rbank, offset)), read.en.eq(~stall)]
        with m.If(~stall):
            m.d.sync += [valid.eq(go), pad_out.eq(pad)]

        with m.If(go):
            with m.If(j != wp - 1):
                m.d.sync += [j.eq(j + 1), addr.eq(addr + 1)]
            with m.Elif(kx != kw - 1):  # next pixel of the kernel row: the next word too
                m.d.sync += [j.eq(0), kx.eq(kx + 1), ix.eq(ix + 1), addr.eq(addr + 1)]
            with m.Elif(ky != kh - 1):  # next kernel row
                m.d.sync += [j.eq(0), kx.eq(0), ky.eq(ky + 1), ix.eq(ix0), iy.eq(iy + 1),
                             row.eq(row + width_words), addr.eq(row + width_words)]
            with m.Elif(ox != w.out_width - 1):  # next window along the row
                m.d.sync += [j.eq(0), kx.eq(0), ky.eq(0), ox.eq(ox + 1), need_col.eq(col_step),
                             ix0.eq(ix0 + sw), ix.eq(ix0 + sw), iy.eq(iy0),
                             win.eq(win + sw * wp), row.eq(win + sw * wp),
                             addr.eq(win + sw * wp)]
            with m.Elif(oy != w.out_height - 1):  # next row of windows
                step = sh * width_words
                m.d.sync += [j.eq(0), kx.eq(0), ky.eq(0), ox.eq(0), oy.eq(oy + 1),
                             need_row.eq(row_step), need_col.eq(col0),
                             ix0.eq(-left), ix.eq(-left), iy0.eq(iy0 + sh), iy.eq(iy0 + sh),
                             line.eq(line + step), win.eq(line + step), row.eq(line + step),
                             addr.eq(line + step)]
            with m.Else():  # the frame's last window beat: free its bank, start over
                m.d.sync += [j.eq(0), kx.eq(0), ky.eq(0), ox.eq(0), oy.eq(0),
                             need_row.eq(row0), need_col.eq(col0),
                             ix0.eq(-left), ix.eq(-left), iy0.eq(-top), iy.eq(-top),
                             line.eq(first), win.eq(first), row.eq(first), addr.eq(first),
                             rbank.eq(~rbank), full.bit_select(rbank, 1).eq(0)]

        pad_word = Cat(*(Const(w.pad_index or 0, self.out_bits) for _ in range(self.elements)))
        m.d.comb += [
            self.o.valid.eq(valid),
            self.o.payload.eq(Mux(pad_out, pad_word, self._recode(read.data))),
        ]
        return m
