"""Live video out through PyAV: RTMP (FLV), UDP and TCP (MPEG-TS), and SRT where the
FFmpeg build has libsrt. OBS takes any of these as a Media Source.

The encoder is libx264 with the `ultrafast` preset and `zerolatency` tune (no B-frames,
no look-ahead: a frame is sent as soon as it is encoded) on one thread (the other
core belongs to the network) and a keyframe every second,
so a viewer that joins late shows a picture within a second. H.264 has no alpha: RGBA
frames are sent as RGB (see docs/OBS.md for the outputs that keep alpha).

Encoding and sending run on a thread of their own behind a one-frame mailbox: a slow
network drops frames here (counted) instead of holding up the pipeline, and a send
that blocks longer than `stall_s` makes `write` raise, so `SinkStage` drops this output
with a warning while the others go on. PyAV connects when the first packet is written,
and does so holding the GIL, so `check` (at start-up, before the model loads) connects
to a TCP-based receiver itself: a wrong URL is a clear error at start-up, not a frozen
process. That connection is the stream: PyAV reaches it through `pipeline.io.relay`,
so a single-shot receiver (FFmpeg's `?listen`, `-listen 1` RTMP) is not used up by a
probe.
"""

from __future__ import annotations

import contextlib
import threading
import time
from fractions import Fraction
from typing import Any
from urllib.parse import urlparse

import numpy as np

from configs.errors import StageError
from pipeline.engine.messages import Message
from pipeline.engine.stage import Sink
from pipeline.io.protocols import connect_output, scheme, stream_muxer
from pipeline.io.relay import Relay, via
from pipeline.io.video_file import even, fit_frame
from pipeline.io.watchdog import reason

ENCODER = {"preset": "ultrafast", "tune": "zerolatency", "threads": "1"}
MUXER_OPTIONS = {
    "flv": {"flvflags": "no_duration_filesize"},
    "mpegts": {"flush_packets": "1"},
}
UDP_PACKET = 1316  # 7 MPEG-TS packets: one datagram within a 1500-byte MTU


def stream_url(location: str) -> str:
    """`location` with the options PyAV cannot be given otherwise (it opens outputs
    without an options dict): UDP datagrams sized for MPEG-TS."""
    if scheme(location) == "udp" and "pkt_size" not in urlparse(location).query:
        sep = "&" if "?" in location else "?"
        return f"{location}{sep}pkt_size={UDP_PACKET}"
    return location


class StreamSink(Sink):
    """Sends rendered frames to a stream URL (a `pipeline.engine.stage.Sink`)."""

    def __init__(
        self,
        location: str,
        key: str = "rendered",
        bitrate_kbps: int = 4000,
        gop_s: float = 1.0,
        stall_s: float = 5.0,
    ) -> None:
        self.location = location
        self.name = f"stream:{location}"
        self.key = key
        self.bitrate_kbps = bitrate_kbps
        self.gop_s = gop_s
        self.stall_s = stall_s
        self.frames = 0
        self.dropped = 0
        self._muxer = ""
        self._mailbox: tuple[np.ndarray, int, float] | None = None
        self._wake: Any = None  # made in open(): a sink must pickle before
        self._closing = False
        self._busy_since: float | None = None
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        self._relay: Relay | None = None  # in the process that connected
        self._relay_port: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        """A worker process gets the relay's port; the relay stays with its owner."""
        return {**self.__dict__, "_relay": None}

    def check(self) -> None:
        """A URL we can stream to, and (TCP-based) a connection to its receiver, kept
        open for the stream (once: `open` checks again in the worker)."""
        self._muxer = stream_muxer(self.location)
        if self._relay_port is None:
            upstream = connect_output(self.location)
            if upstream is not None:
                answer_s = self.stall_s if scheme(self.location) == "rtmp" else None
                self._relay = Relay(upstream, answer_s)
                self._relay_port = self._relay.port

    def release(self) -> None:
        """End the kept connection's relay (after it delivered what it holds)."""
        if self._relay is not None:
            self._relay.close()

    def open(self) -> None:
        self.check()
        self._wake = threading.Condition()
        self._thread = threading.Thread(
            target=self._run, daemon=True, name=f"partstream-{self.name}"
        )
        self._thread.start()

    def write(self, msg: Message) -> None:
        if self._error is not None:
            raise StageError(self._error)
        busy = self._busy_since
        if busy is not None and time.monotonic() - busy > self.stall_s:
            raise StageError(f"no progress for {self.stall_s:.0f} s")
        image = msg.pixels(self.key)
        item = (
            image,
            int(msg.header.get("index", 0)),
            float(msg.header.get("fps") or 30.0),
        )
        with self._wake:
            if self._mailbox is not None:
                self.dropped += 1
            self._mailbox = item
            self._wake.notify()

    def close(self) -> dict[str, Any]:
        if self._thread is not None:
            with self._wake:
                self._closing = True
                self._wake.notify()
            self._thread.join(timeout=self.stall_s)
        self.release()
        return {"path": self.location, "frames": self.frames, "dropped": self.dropped}

    # -- the sending thread ----------------------------------------------------------

    def _next(self) -> tuple[np.ndarray, int, float] | None:
        with self._wake:
            while self._mailbox is None and not self._closing:
                self._wake.wait()
            item, self._mailbox = self._mailbox, None
            return item

    def _run(self) -> None:
        import av

        container = stream = None
        last_pts = -1
        try:
            while (item := self._next()) is not None:
                image, index, fps = item
                self._busy_since = time.monotonic()
                if stream is None:
                    container, stream = self._start(image, fps)
                last_pts = max(index, last_pts + 1)
                image = fit_frame(image, stream.width, stream.height, "yuv420p")
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts, frame.time_base = last_pts, stream.time_base
                for packet in stream.encode(frame):
                    container.mux(packet)
                self.frames += 1
                self._busy_since = None
            if stream is not None:
                self._busy_since = time.monotonic()
                for packet in stream.encode():
                    container.mux(packet)
        except (av.error.FFmpegError, OSError) as exc:
            relay = self._relay.reason() if self._relay is not None else None
            self._error = relay or _cause(exc)
        finally:
            if container is not None:
                with contextlib.suppress(av.error.FFmpegError, OSError):
                    container.close()

    def _start(self, image: np.ndarray, fps: float) -> tuple[Any, Any]:
        import av

        rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(30)
        target = self.location
        if self._relay_port is not None:
            target = via(target, self._relay_port)
        container = av.open(
            stream_url(target),
            "w",
            format=self._muxer,
            container_options=MUXER_OPTIONS[self._muxer],
        )
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height = even(image.shape[1]), even(image.shape[0])
        stream.pix_fmt = "yuv420p"
        stream.bit_rate = self.bitrate_kbps * 1000
        stream.options = {**ENCODER, "g": str(max(1, round(float(rate) * self.gop_s)))}
        stream.time_base = 1 / rate
        return container, stream


def _cause(exc: BaseException) -> str:
    """Broken pipe / connection reset read better as what they mean here."""
    text = reason(exc)
    if isinstance(exc, BrokenPipeError | ConnectionResetError) or "Broken pipe" in text:
        return f"the receiver went away ({text})"
    return text
