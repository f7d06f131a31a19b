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

Line buffers (``line=True``): instead of two frames, one ring of
:meth:`WindowGenerator.line_words` words holds the rows the current windows read plus the
first words of the next row of windows (``(kh + sh − 1)·W + kw`` pixels without padding, at
most a frame). Its *floor* is the first word a later window of the frame still reads: it moves
when a row of windows starts (past the rows above it) and to the next frame when the frame's
last window was read. Room is what lies between the floor and the ring's end; a writer gets it
in one of two ways. Fed by the host, ``i.ready`` says whether a word fits. Fed by another
convolution (``credited``), the generator in front reserves one pixel of room through
``up_take`` / ``up_ok`` before it reads the window whose output pixel will need it
(``reserve``, see :meth:`WindowGenerator.producing`), so the units between the two never stall
on their output: the cycle model stays a max-plus recurrence (:mod:`lowbit.sim.timing`).
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .banks import InputBanks

__all__ = ["WindowGenerator", "WINDOW_BRAM_MIN_BITS"]

WINDOW_BRAM_MIN_BITS = 1024  # frame banks this large go to block RAM; smaller: LUT RAM or FFs
ICE40_RING_BITS = 88  # an unmarked ring this large still lands in a block on iCE40 (measured)


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
    # line mode: from the cycle a row's last window beat is read to the first cycle its words
    # count as free (the freed count is registered once before it reaches the room counter)
    FLOOR_DELAY = 2

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
    def row_floors(window, pixel_words: int) -> np.ndarray:
        """Per row of windows: the floor while it is read, the first word (of the frame) any of
        its windows or a later one reads (the rows above its top row are free)."""
        top_rows = np.maximum(np.arange(window.out_height) * window.stride[0] - window.pads[0], 0)
        return top_rows * window.width * pixel_words

    @staticmethod
    def line_words(window, pixel_words: int) -> int:
        """Words of the line-buffer ring: the most any row of windows holds between its floor
        and the words its windows need, counting the first window of the next row (whose words
        arrive before the floor moves past the row above), at most one frame."""
        ow = window.out_width
        need = WindowGenerator.need_words(window, pixel_words)
        floors = WindowGenerator.row_floors(window, pixel_words)
        span = need[ow - 1::ow] - floors  # a row's last window
        ahead = need[ow::ow] - floors[:-1]  # the next row's first window
        frame = window.height * window.width * pixel_words
        return int(min(frame, max(span.max(), ahead.max(initial=0), need[0])))

    @staticmethod
    def producing(out_height: int, out_width: int, pool: int = 1) -> np.ndarray:
        """Per window position (raster order): whether its output leaves the layer as a pixel,
        which with a ``pool × pool`` max pool is the position that completes a pooled pixel."""
        oy, ox = np.meshgrid(np.arange(out_height), np.arange(out_width), indexing="ij")
        inside = (oy < out_height // pool * pool) & (ox < out_width // pool * pool)
        return (inside & (oy % pool == pool - 1) & (ox % pool == pool - 1)).ravel()

    @staticmethod
    def bank_bits(window, in_bits: int, line: bool = False) -> int:
        """Bits of the two frame banks, or of the line-buffer ring."""
        if line:
            return WindowGenerator.line_words(window, 1) * window.channels * in_bits
        return 2 * window.channels * window.height * window.width * in_bits

    @staticmethod
    def bank_ram(window, in_width: int, in_bits: int, family: str | None = None,
                 line: bool = False) -> tuple[int, int] | None:
        """``(depth, width)`` of the frame-bank memory when it is marked for block RAM (at least
        :data:`WINDOW_BRAM_MIN_BITS`), else None (LUT RAM or flip-flops). With ``family``: when
        it lands in block RAM there, which on iCE40 (no LUT RAM) two frame banks do whatever
        their size (yosys maps an unmarked one into a block too: bench/estimate_accuracy.py's
        small CNNs), and a line-buffer ring from :data:`ICE40_RING_BITS` on (yosys weighs a
        block, cost 64 in its iCE40 library, against logic: rings of 94, 672 and 696 bits went to
        blocks, one of 78 stayed in logic, in bench/estimate_accuracy.py's CNNs and a trained
        MNIST CNN)."""
        bits = WindowGenerator.bank_bits(window, in_bits, line)
        if bits < WINDOW_BRAM_MIN_BITS and (family != "ice40" or (line and bits < ICE40_RING_BITS)):
            return None
        if line:
            return WindowGenerator.line_words(window, window.channels * in_bits // in_width), \
                in_width
        words = window.height * window.width * window.channels * in_bits // in_width
        return InputBanks.ram_depth(words, contiguous=True), in_width

    def __init__(self, window, *, in_width: int, in_bits: int, out_bits: int,
                 line: bool = False, credited: bool = False,
                 reserve: tuple[int, int, int] | None = None):
        """``line``: a line-buffer ring instead of two frame banks; ``credited``: (line) the
        writer reserves room through ``up_take`` / ``up_ok``; ``reserve``: ``(pool, height,
        width)`` of this layer's output when the next generator is credited: a window whose
        position is :meth:`producing` is read only once ``down_ok`` grants one pixel, taken on
        ``down_take``."""
        elements = in_width // in_bits
        if in_width % in_bits or (window.channels * in_bits) % in_width:
            raise ValueError(f"in_width={in_width} must hold whole elements of {in_bits} bits and "
                             f"divide a pixel of {window.channels}")
        self.window = window
        self.in_bits, self.out_bits, self.elements = in_bits, out_bits, elements
        self.pixel_words = window.channels // elements
        self.frame_words = window.height * window.width * self.pixel_words
        self.out_width = elements * out_bits
        self.line, self.credited, self.reserve = line, credited and line, reserve
        ports = {
            "i": In(stream.Signature(in_width)),
            "o": Out(stream.Signature(self.out_width)),
        }
        if self.credited:
            ports |= {"up_ok": Out(1), "up_take": In(1)}
        if reserve is not None:
            ports |= {"down_ok": In(1), "down_take": Out(1)}
        super().__init__(ports)

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
        in_width = len(self.i.payload)
        big = self.bank_ram(w, in_width, self.in_bits, line=self.line) is not None
        attrs = {"ram_style": "block"} if big else None

        # -- write side ------------------------------------------------------------------------
        # frame mode: frames into alternate banks of one memory; line mode: a ring of
        # ``ring`` words, ``held`` of them between the floor and the next word written (or
        # reserved)
        if self.line:
            ring = self.line_words(w, wp)
            memory = Memory(shape=in_width, depth=ring, init=[], attrs=attrs)
            m.submodules.line_buffer = memory
            widx = Signal(range(max(frame, 2)))  # word of its frame the writer is at
            wframe = Signal()  # toggles per frame written
            waddr = Signal(range(max(ring, 2)))
            accept = Signal()
            m.d.comb += accept.eq(self.i.valid & self.i.ready)
            port = memory.write_port()
            m.d.comb += [port.addr.eq(waddr), port.data.eq(self.i.payload), port.en.eq(accept)]
            with m.If(accept):
                m.d.sync += [widx.eq(Mux(widx == frame - 1, 0, widx + 1)),
                             waddr.eq(Mux(waddr == ring - 1, 0, waddr + 1))]
                with m.If(widx == frame - 1):
                    m.d.sync += wframe.eq(~wframe)
        else:
            inputs = InputBanks(m, frame, in_width, 0, bram=True, contiguous=True, attrs=attrs)
            full, memory = inputs.full, inputs.memory
            m.d.comb += self.i.ready.eq(~full.bit_select(inputs.wbank, 1))
            inputs.write(m, self.i.valid & self.i.ready, self.i.payload)
            widx = inputs.widx

        def ring_add(value, k: int):
            """``value + k`` on the ring (both below its size)."""
            total = value + k % ring
            return Mux(total >= ring, total - ring, total)

        # -- read side: output position, kernel position, word of the pixel ---------------
        # The input coordinates and the word address of the beat about to be read are
        # registers stepped by constants (no multipliers, short carry chains):
        # iy = oy·sh + ky − top, ix = ox·sw + kx − left, addr = (iy·W + ix)·WP + j, where the
        # words of one kernel row are consecutive in memory (in line mode: on the ring, from
        # the frame's base word).
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
        if self.line:
            word, first_word = range(max(ring, 2)), first % ring
            step = ring_add
        else:
            extent = (w.height + w.pads[0] + w.pads[2] + 1) * (w.width + w.pads[1] + w.pads[3] + 1)
            word, first_word = signed((extent * wp).bit_length() + 2), first

            def step(value, k: int):
                return value + k
        addr, row, win, line = (Signal(word, init=first_word, name=n)
                                for n in ("addr", "row", "win", "line"))
        pad = Signal()
        m.d.comb += pad.eq((iy < 0) | (iy >= w.height) | (ix < 0) | (ix >= w.width))
        # the words the current window needs (need_words): row part + column part, each a
        # register stepped by a constant and clipped at the map's last row / column
        need0 = self.need_words(w, wp)
        row_cap, col_cap = (w.height - 1) * width_words, w.width * wp
        col0 = (min(kw - 1 - left, w.width - 1) + 1) * wp
        row0 = int(need0[0]) - col0
        need_word = signed((max(frame, row0 + col0) * 2).bit_length() + 1)
        need_row = Signal(need_word if self.line else word, init=row0)
        need_col = Signal(need_word if self.line else word, init=col0)
        need = Signal(need_word if self.line else word, init=row0 + col0)  # their sum, kept
        row_next, col_next = need_row + sh * width_words, need_col + sw * wp
        row_step = Mux(row_next > row_cap, row_cap, row_next)
        col_step = Mux(col_next > col_cap, col_cap, col_next)
        here = Signal()  # the window's words are written (or its whole frame is)
        last = (oy == w.out_height - 1) & (ox == w.out_width - 1)  # needs the whole frame
        if self.line:
            ahead = wframe != rbank  # the writer is in the next frame: this one is all in
            m.d.comb += here.eq(ahead | (~last & (widx >= need)))
        else:
            m.d.comb += here.eq(full.bit_select(rbank, 1) | (~last & (inputs.wbank == rbank) &
                                                            (inputs.widx >= need)))

        valid = Signal()  # the output beat register holds a beat
        pad_out = Signal()
        stall = Signal()
        go = Signal()
        granted = None  # the next generator has room for this window's pixel
        starting = (j == 0) & (kx == 0) & (ky == 0)  # the beat about to be read is a window's first
        if self.reserve is not None:
            pool, height, width = self.reserve
            # which windows produce an output pixel: counters of the position modulo the pool
            yin = Signal(range(max(pool, 2)))
            xin = Signal(range(max(pool, 2)))
            producing = ((yin == pool - 1) & (xin == pool - 1) & (oy < height * pool)
                         & (ox < width * pool))
            granted = ~(starting & producing) | self.down_ok
            m.d.comb += self.down_take.eq(go & starting & producing)
        ready = here & ~stall
        m.d.comb += [stall.eq(valid & ~self.o.ready),
                     go.eq(ready if granted is None else ready & granted)]
        read = memory.read_port(domain="sync")
        if self.line:
            m.d.comb += [read.addr.eq(addr), read.en.eq(~stall)]
        else:
            offset = Signal(range(max(frame, 2)))
            m.d.comb += offset.eq(Mux(pad, 0, addr.as_unsigned()[:len(offset)]))
            m.d.comb += [read.addr.eq(inputs.address(rbank, offset)), read.en.eq(~stall)]
        with m.If(~stall):
            m.d.sync += [valid.eq(go), pad_out.eq(pad)]

        if self.line:  # the floor moves past the rows above a new row of windows, and past
            # the whole frame at its end
            freed = Signal(range(frame + 1))
            top_row = Signal(signed(need_word.width + 1), init=-top * width_words)
            floor = Signal(range(frame + 1))  # max(top_row, 0): the frame's first word still read
            next_top = top_row + sh * width_words
            next_floor = Mux(next_top > 0, next_top, 0)

        with m.If(go):
            with m.If(j != wp - 1):
                m.d.sync += [j.eq(j + 1), addr.eq(step(addr, 1))]
            with m.Elif(kx != kw - 1):  # next pixel of the kernel row: the next word too
                m.d.sync += [j.eq(0), kx.eq(kx + 1), ix.eq(ix + 1), addr.eq(step(addr, 1))]
            with m.Elif(ky != kh - 1):  # next kernel row
                m.d.sync += [j.eq(0), kx.eq(0), ky.eq(ky + 1), ix.eq(ix0), iy.eq(iy + 1),
                             row.eq(step(row, width_words)), addr.eq(step(row, width_words))]
            with m.Elif(ox != w.out_width - 1):  # next window along the row
                m.d.sync += [j.eq(0), kx.eq(0), ky.eq(0), ox.eq(ox + 1), need_col.eq(col_step),
                             need.eq(need_row + col_step),
                             ix0.eq(ix0 + sw), ix.eq(ix0 + sw), iy.eq(iy0),
                             win.eq(step(win, sw * wp)), row.eq(step(win, sw * wp)),
                             addr.eq(step(win, sw * wp))]
                if self.reserve is not None:
                    m.d.sync += xin.eq(Mux(xin == pool - 1, 0, xin + 1))
            with m.Elif(oy != w.out_height - 1):  # next row of windows
                down = sh * width_words
                m.d.sync += [j.eq(0), kx.eq(0), ky.eq(0), ox.eq(0), oy.eq(oy + 1),
                             need_row.eq(row_step), need_col.eq(col0), need.eq(row_step + col0),
                             ix0.eq(-left), ix.eq(-left), iy0.eq(iy0 + sh), iy.eq(iy0 + sh),
                             line.eq(step(line, down)), win.eq(step(line, down)),
                             row.eq(step(line, down)), addr.eq(step(line, down))]
                if self.reserve is not None:
                    m.d.sync += [xin.eq(0), yin.eq(Mux(yin == pool - 1, 0, yin + 1))]
                if self.line:
                    m.d.comb += freed.eq(next_floor - floor)
                    m.d.sync += [top_row.eq(next_top), floor.eq(next_floor)]
            with m.Else():  # the frame's last window beat: free its bank, start over
                m.d.sync += [j.eq(0), kx.eq(0), ky.eq(0), ox.eq(0), oy.eq(0),
                             need_row.eq(row0), need_col.eq(col0), need.eq(row0 + col0),
                             ix0.eq(-left), ix.eq(-left), iy0.eq(-top), iy.eq(-top),
                             rbank.eq(~rbank)]
                if self.reserve is not None:
                    m.d.sync += [xin.eq(0), yin.eq(0)]
                if self.line:  # the next frame's words start ``frame`` words on
                    base = Signal(range(max(ring, 2)))
                    start = ring_add(ring_add(base, frame), first_word)
                    m.d.comb += freed.eq(frame - floor)
                    m.d.sync += [base.eq(ring_add(base, frame)), line.eq(start), win.eq(start),
                                 row.eq(start), addr.eq(start),
                                 top_row.eq(-top * width_words), floor.eq(0)]
                else:
                    m.d.sync += [line.eq(first), win.eq(first), row.eq(first), addr.eq(first),
                                 full.bit_select(rbank, 1).eq(0)]

        if self.line:  # words held between the floor and the writer (or its reservations);
            # below 0 when the floor passed words not yet written (a stride skips rows)
            held = Signal(range(-frame, ring + 1))
            released = Signal.like(freed)  # ``freed`` a cycle later (FLOOR_DELAY)
            m.d.sync += released.eq(freed)
            if self.credited:
                m.d.comb += [self.i.ready.eq(1), self.up_ok.eq(held <= ring - wp)]
                m.d.sync += held.eq(held + Mux(self.up_take, wp, 0) - released)
            else:
                m.d.comb += self.i.ready.eq(held < ring)
                m.d.sync += held.eq(held + accept - released)

        pad_word = Cat(*(Const(w.pad_index or 0, self.out_bits) for _ in range(self.elements)))
        m.d.comb += [
            self.o.valid.eq(valid),
            self.o.payload.eq(Mux(pad_out, pad_word, self._recode(read.data))),
        ]
        return m
