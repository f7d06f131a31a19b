"""The host side of the UART link: frames to bytes, bytes to outputs, and a serial-port loop."""

from __future__ import annotations

import numpy as np
from lowbit.sim.host import beat_bytes, decode_outputs, input_beats
from lowbit.sim.perf import NetworkPerf
from lowbit.sw.ir import Network

from lowbit.errors import BoardLinkError

from .top import RESYNC_BYTES

__all__ = ["frame_bytes", "reply_bytes", "decode_reply", "run_frames"]


def frame_bytes(net: Network, perf: NetworkPerf, x) -> np.ndarray:
    """Float frames ``(N, *input_shape)`` → ``(N, bytes)``: what the host sends per frame."""
    beats = input_beats(net, perf, x)
    return beats.reshape(len(beats), -1)


def reply_bytes(perf: NetworkPerf) -> int:
    """Bytes the board answers per frame."""
    return perf.out_beats * beat_bytes(perf.out_width)


def decode_reply(net: Network, perf: NetworkPerf, data: bytes, frames: int):
    """The board's answer to ``frames`` frames → ``(outputs, accumulators or class indices)``,
    as :func:`lowbit.sim.host.decode_outputs` returns them."""
    per_beat = beat_bytes(perf.out_width)
    raw = np.frombuffer(bytes(data), dtype=np.uint8).reshape(frames * perf.out_beats, per_beat)
    return decode_outputs(net, perf, raw)


def run_frames(port, net: Network, perf: NetworkPerf, x, progress=None):
    """Send every frame through ``port`` (``write(bytes)``, ``read(n) -> bytes``, as pyserial's
    ``Serial``) and collect the answers, one frame at a time."""
    frames = frame_bytes(net, perf, x)
    want = reply_bytes(perf)
    answer = bytearray()
    for k, frame in enumerate(frames):
        port.write(frame.tobytes())
        got = port.read(want)
        if len(got) != want:
            raise BoardLinkError(
                f"frame {k}: the board answered {len(got)} of {want} bytes; is the bitstream "
                f"built from this model and folding, and the baud rate right? (after "
                f"{RESYNC_BYTES} idle byte times the board starts a new frame)"
            )
        answer += got
        if progress and (k + 1) % 100 == 0:
            progress(f"{k + 1}/{len(frames)} frames")
    return decode_reply(net, perf, bytes(answer), len(frames))
