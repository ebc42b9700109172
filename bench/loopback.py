"""A live video publisher on 127.0.0.1 for streaming benchmarks.

The publisher encodes frames with libx264 (ultrafast, zerolatency, as a live camera
encoder would) and pushes them at a fixed rate over RTMP (FLV) or UDP (MPEG-TS), noting
when it sent each frame. Each frame carries its index (tests/loopback.py's stamp), so
whatever leaves the pipeline can be matched to its send time: capture-to-output
latency including encode, network, decode and every queue.

RTMP, RTSP: the pipeline's source is the server (the product's listen mode), the
publisher connects to it, retrying until it listens. UDP: the source binds the port;
frames sent before it does are lost, as with any live UDP feed.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import queue
import time
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from pipeline.io.watchdog import WatchedSource
from tests.loopback import STAMP_BITS, stamp


def live_source(protocol: str, url: str) -> WatchedSource:
    """The product's network source reading `url`: RTMP and RTSP as the server
    (listen mode, the publisher connects to it), UDP bound to the port."""
    if protocol == "udp":
        return WatchedSource(url)
    return WatchedSource(url, listen=True)


class Publisher:
    """Sends `frames` (cycled, stamped with a running index) at `fps` until stopped.

    Runs in its own process so encoding never competes with the pipeline's threads for
    the GIL; `stop()` returns {index: send wall-clock time}.
    """

    def __init__(
        self,
        url: str,
        fmt: str,
        options: dict[str, str],
        frames: Sequence[np.ndarray],
        fps: float,
        gop: int = 30,
    ) -> None:
        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        self._results = ctx.Queue()
        self.process = ctx.Process(
            target=_publish,
            name="bench-publisher",
            daemon=True,
            args=(url, fmt, options, list(frames), fps, gop, self._stop, self._results),
        )

    def start(self) -> None:
        self.process.start()

    def stop(self) -> dict[int, float]:
        """Stop sending; {frame index: time.time() it was handed to the encoder}."""
        if not self.process.is_alive() and self.process.exitcode is None:
            return {}  # never started
        self._stop.set()
        try:
            error, sent = self._results.get(timeout=30)
        except queue.Empty as exc:
            raise RuntimeError("publisher did not report") from exc
        finally:
            self.process.join(timeout=10)
        if error:
            raise RuntimeError(f"publisher failed: {error}")
        return sent


def _connect(
    url: str,
    fmt: str,
    options: dict[str, str],
    first: np.ndarray,
    fps: float,
    gop: int,
    stop: Any,
) -> tuple[Any, Any, float]:
    """(container, stream, send time) once frame 0 is through, or Nones if stopped.

    A client muxer only reaches the server when it writes its header, with the first
    packet: until that succeeds the server is not listening yet, so try again.
    """
    import av

    rate = Fraction(fps).limit_denominator(1000)
    while not stop.is_set():
        out = None
        try:
            out = av.open(url, "w", format=fmt, options=options)
            stream = out.add_stream("libx264", rate=rate)
            stream.width, stream.height = first.shape[1], first.shape[0]
            stream.pix_fmt = "yuv420p"
            stream.options = {
                "preset": "ultrafast",
                "tune": "zerolatency",
                "g": str(gop),
            }
            frame = av.VideoFrame.from_ndarray(stamp(first, 0), format="rgb24")
            frame.pts, frame.time_base = 0, 1 / rate
            sent = time.time()
            out.mux(stream.encode(frame))
            return out, stream, sent
        except (av.error.FFmpegError, OSError):
            if out is not None:
                with contextlib.suppress(av.error.FFmpegError, OSError):
                    out.close()
            time.sleep(0.05)
    return None, None, 0.0


def _publish(
    url: str,
    fmt: str,
    options: dict[str, str],
    frames: list[np.ndarray],
    fps: float,
    gop: int,
    stop: Any,
    results: Any,
) -> None:
    import av

    sent: dict[int, float] = {}
    try:
        out, stream, first_sent = _connect(url, fmt, options, frames[0], fps, gop, stop)
        if out is not None:
            sent[0] = first_sent
            time_base = 1 / Fraction(fps).limit_denominator(1000)
            start, index = time.monotonic(), 1
            while not stop.is_set() and index < 2**STAMP_BITS:
                delay = start + index / fps - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                image = stamp(frames[index % len(frames)], index)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts, frame.time_base = index, time_base
                sent[index] = time.time()
                try:
                    out.mux(stream.encode(frame))
                except (av.error.FFmpegError, OSError):
                    break  # the receiver has gone: the run is over
                index += 1
            with contextlib.suppress(av.error.FFmpegError, OSError):
                out.close()
        results.put((None, sent))
    except Exception as exc:  # noqa: BLE001 - reported by stop()
        results.put((str(exc), sent))
