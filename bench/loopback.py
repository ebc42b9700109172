"""A live video publisher on 127.0.0.1 for streaming benchmarks, and frame-index stamps.

The publisher encodes frames with libx264 (ultrafast, zerolatency, as a live camera
encoder would) and pushes them at a fixed rate over RTMP (FLV) or UDP (MPEG-TS), noting
when it sent each frame. Each frame carries its index as a row of black/white blocks
that survive H.264, so whatever leaves the pipeline can be matched to its send time:
capture-to-output latency including encode, network, decode and every queue.

RTMP: the pipeline's source is the server (`listen=1`), the publisher connects to it,
retrying until it listens. UDP: the source binds the port; frames sent before it does
are lost, as with any live UDP feed. MPEG-TS over UDP adds about two frame periods
(the demuxer only finishes a video packet when the next one starts).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

STAMP_BITS = 16
STAMP_BLOCK = 16  # pixels per bit; survives H.264 at default quality
PROTOCOLS = ("rtmp", "udp")
_LOW_DELAY = {"fflags": "nobuffer", "flags": "low_delay", "probesize": "32768",
              "analyzeduration": "0"}


def stamp(image: np.ndarray, index: int) -> np.ndarray:
    """A copy of image with `index` written as blocks along its top-left edge."""
    out = image.copy()
    for bit in range(STAMP_BITS):
        x = bit * STAMP_BLOCK
        out[:STAMP_BLOCK, x:x + STAMP_BLOCK] = 255 if (index >> bit) & 1 else 0
    return out


def read_stamp(image: np.ndarray) -> int:
    """The index `stamp` wrote, read from the centre of each block."""
    q, index = STAMP_BLOCK // 4, 0
    for bit in range(STAMP_BITS):
        x = bit * STAMP_BLOCK
        block = image[q:STAMP_BLOCK - q, x + q:x + STAMP_BLOCK - q]
        index |= int(block.mean() > 127) << bit
    return index


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def endpoint(protocol: str) -> tuple[str, str, dict[str, str], dict[str, str]]:
    """(publisher URL, muxer format, publisher options, reader options), free port."""
    if protocol == "rtmp":
        url = f"rtmp://127.0.0.1:{free_port()}/live/bench"
        return url, "flv", {}, {"listen": "1", **_LOW_DELAY}
    if protocol == "udp":
        url = f"udp://127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
        return (url + "?pkt_size=1316", "mpegts", {"flush_packets": "1"},
                {"timeout": "5000000", **_LOW_DELAY})
    raise ValueError(f"unknown protocol '{protocol}' (use {', '.join(PROTOCOLS)})")


class Publisher(threading.Thread):
    """Sends `frames` (cycled, stamped with a running index) at `fps` until stopped."""

    def __init__(self, url: str, fmt: str, options: dict[str, str],
                 frames: Sequence[np.ndarray], fps: float, gop: int = 30) -> None:
        super().__init__(name="bench-publisher", daemon=True)
        self.url, self.fmt, self.options = url, fmt, options
        self.frames = list(frames)
        self.fps = fps
        self.gop = gop
        self.sent: dict[int, float] = {}
        self.stopped = threading.Event()
        self.error: str | None = None

    def _connect(self):
        import av

        while not self.stopped.is_set():
            try:
                return av.open(self.url, "w", format=self.fmt, options=self.options)
            except (av.error.FFmpegError, OSError):
                time.sleep(0.05)  # the server is not listening yet
        return None

    def run(self) -> None:
        import av

        try:
            out = self._connect()
            if out is None:
                return
            height, width = self.frames[0].shape[:2]
            rate = Fraction(self.fps).limit_denominator(1000)
            stream = out.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"preset": "ultrafast", "tune": "zerolatency",
                              "g": str(self.gop)}
            start, index = time.monotonic(), 0
            while not self.stopped.is_set() and index < 2 ** STAMP_BITS:
                image = stamp(self.frames[index % len(self.frames)], index)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts, frame.time_base = index, 1 / rate
                self.sent[index] = time.time()
                for packet in stream.encode(frame):
                    out.mux(packet)
                index += 1
                delay = start + index / self.fps - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            out.close()
        except Exception as exc:  # noqa: BLE001 - reported by the benchmark
            self.error = f"publisher failed: {exc}"

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)
