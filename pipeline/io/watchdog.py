"""A video source that cannot hang: PyAV open and demux under a watchdog, with
reconnection for live streams.

PyAV can block forever: on open when a server accepts but never streams (PyAV #584),
in demux when a live stream ends without closing its connection (#700, #325), and its
own timeout has been capped or ignored in some versions (#1155, #1243). So a reader
thread does all the blocking work (open, demux, decode) with PyAV's own
`timeout=(open, read)`, and the consumer side holds a second, thread-level deadline on
top: if no frame arrives in time the reader is abandoned (it closes its container
whenever FFmpeg lets go) and a fresh one takes over. Nothing the network does can
stop the pipeline.

What happens when frames stop:
* a file ends cleanly (or starts over with `loop`); a read error in a damaged file ends
  it after every frame that could be decoded;
* a live source (or a network stream without a duration) reconnects with exponential
  backoff, logged and counted, for as long as `give_up_s` allows; the frame index keeps
  counting and media time keeps increasing, so the stages behind never notice;
* the first connection failing is an error (a typo should not retry forever), except
  when listening for a publisher, which may come whenever it likes.

While a network source waits, `frames()` yields None now and then so the worker can
still obey a stop.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from configs.errors import StageError
from pipeline.engine.messages import Message, frame_message
from pipeline.io.protocols import input_options, is_live, scheme
from pipeline.io.source import DEFAULT_FPS, _Pacer

log = logging.getLogger(__name__)

HEARTBEAT_S = 0.1  # longest frames() goes without yielding while it waits
LIVE_QUEUE = 2  # decoded frames a live reader may hold (older ones are dropped)
FILE_QUEUE = 8


@dataclass
class Backoff:
    """Waits between reconnection attempts: initial_s, times factor each time, up to
    max_s (a camera rebooting takes tens of seconds; no need to hammer it)."""

    initial_s: float = 0.5
    factor: float = 2.0
    max_s: float = 8.0

    def delay(self, attempt: int) -> float:
        """Wait before attempt `attempt` (1 = the first retry)."""
        return min(self.max_s, self.initial_s * self.factor ** max(0, attempt - 1))


@dataclass
class Deadlines:
    """How long a source may be silent before it counts as dead.

    open_s: connecting and probing the stream; read_s: between two frames once it runs.
    PyAV gets these as its own timeout; the watchdog allows grace_s more before it
    abandons a reader that PyAV failed to interrupt.
    """

    open_s: float = 10.0
    read_s: float = 5.0
    grace_s: float = 2.0


def reason(exc: BaseException) -> str:
    """A short, user-facing cause from a PyAV/OS error (no FFmpeg log dump)."""
    import av

    if isinstance(exc, av.error.ExitError):
        return "timed out"
    text = getattr(exc, "strerror", None) or (str(exc).splitlines() or [""])[0]
    return text or type(exc).__name__


class _Events(queue.Queue):
    """A reader's events. A live reader makes room by dropping its oldest *frame*:
    the "open" event ahead of them carries the stream's rate and must reach the
    consumer, who may start reading only seconds later (listening: once every stage
    has loaded)."""

    def drop_oldest_frame(self) -> bool:
        with self.mutex:
            for i, event in enumerate(self.queue):
                if event[0] == "frame":
                    del self.queue[i]
                    self.not_full.notify()
                    return True
        return False


class _Reader(threading.Thread):
    """Opens one container and decodes its first video stream into `events`.

    Events: ("open", fps, frames, duration), ("frame", image, seconds),
    ("end", None), ("error", message, cause). After `abandon()` it only closes up.
    """

    def __init__(
        self,
        location: str,
        options: dict[str, str],
        timeout: tuple[float | None, float],
        keep_all: bool,
    ) -> None:
        super().__init__(name="partstream-reader", daemon=True)
        self.location = location
        self.options = options
        self.timeout = timeout
        self.keep_all = keep_all
        self.events = _Events(FILE_QUEUE if keep_all else LIVE_QUEUE)
        self.abandoned = threading.Event()
        self.corrupt = 0
        self.dropped = 0

    def abandon(self) -> None:
        self.abandoned.set()

    def run(self) -> None:
        import av

        try:
            container = av.open(
                self.location, options=self.options, timeout=self.timeout
            )
        except av.error.InvalidDataError:
            what = (
                "a video PyAV can read (damaged, truncated or another kind of file)"
                if not scheme(self.location)
                else "a video stream"
            )
            self._put(("error", f"{self.location} is not {what}", "not a stream"))
            return
        except (av.error.FFmpegError, OSError) as exc:
            self._put(
                ("error", f"cannot open {self.location}: {reason(exc)}", reason(exc))
            )
            return
        try:
            self._decode(container)
        except (av.error.FFmpegError, OSError) as exc:
            self._put(("error", f"{self.location}: {reason(exc)}", reason(exc)))
        finally:
            container.close()

    def _decode(self, container: Any) -> None:
        import av

        if not container.streams.video:
            self._put(
                ("error", f"{self.location} has no video stream", "no video stream")
            )
            return
        stream = container.streams.video[0]
        # frame threading holds back one frame per thread: fine for files, not live
        stream.thread_type = "AUTO" if self.keep_all else "SLICE"
        rate = stream.average_rate or stream.guessed_rate
        duration = container.duration / 1e6 if container.duration else None
        self._put(
            (
                "open",
                float(rate) if rate else DEFAULT_FPS,
                stream.frames or None,
                duration,
            )
        )
        for packet in container.demux(stream):
            if self.abandoned.is_set():
                return
            try:
                decoded = packet.decode()
            except av.error.InvalidDataError:
                self.corrupt += 1
                continue
            for frame in decoded:
                self._put(("frame", frame.to_ndarray(format="rgb24"), frame.time))
        self._put(("end", None))

    def _put(self, event: tuple) -> None:
        """Files wait for the consumer; live sources keep only the newest frames."""
        while not self.abandoned.is_set():
            try:
                self.events.put(event, timeout=HEARTBEAT_S)
                return
            except queue.Full:
                if self.keep_all or event[0] != "frame":
                    continue
                if self.events.drop_oldest_frame():
                    self.dropped += 1


class WatchedSource:
    """Files and network URLs through PyAV, under a watchdog (see the module doc):
    the pipeline's source for everything but cameras and the synthetic crowd.

    A `pipeline.engine.worker.Source`: `frames()` may also yield None while it waits.
    `options` replaces the FFmpeg options chosen from the URL.
    """

    name = "source"
    info: dict[str, Any] | None = None

    def __init__(
        self,
        location: str,
        max_frames: int | None = None,
        pace: bool = False,
        loop: bool = False,
        rtsp_transport: str = "tcp",
        listen: bool = False,
        deadlines: Deadlines | None = None,
        backoff: Backoff | None = None,
        reconnect: bool | None = None,
        give_up_s: float | None = None,
        listen_timeout_s: float | None = None,
        options: dict[str, str] | None = None,
    ) -> None:
        self.location = str(location)
        self.max_frames = max_frames
        self.pace = pace
        self.loop = loop
        self.rtsp_transport = rtsp_transport
        self.listen = listen
        self.deadlines = deadlines or Deadlines()
        self.backoff = backoff or Backoff()
        self.is_url = bool(scheme(self.location))
        self.live = is_live(self.location) or pace
        self.reconnect = self.is_url if reconnect is None else reconnect
        self.give_up_s = give_up_s
        self.listen_timeout_s = listen_timeout_s
        self.total: int | None = max_frames if loop else None
        self.fps = DEFAULT_FPS
        self.duration: float | None = None
        self.listed = 0  # frames the container's index promises
        self.lost = 0
        self.reconnects = 0
        self.corrupt = 0
        self.dropped = 0
        self._reader: _Reader | None = None
        self._options = options  # None: chosen from the URL (protocols.py)

    # -- lifecycle -------------------------------------------------------------------

    def check(self) -> None:
        """What can be checked without connecting: paths, flags, protocols."""
        if not self.is_url and not Path(self.location).is_file():
            raise StageError(f"no such video file: {self.location}")
        if self.loop and self.is_url:
            raise StageError("--loop is for files; live sources reconnect instead")
        if self._options is None:
            self._options = input_options(
                self.location, self.rtsp_transport, self.listen, self.listen_timeout_s
            )

    def open(self) -> None:
        self.check()
        self._reader = self._start_reader()
        if self.listen:
            return  # the publisher may come later: frames() waits
        event = self._wait_open(self._reader)
        if event[0] == "error":
            raise StageError(event[1])
        self._opened(event)

    def close(self) -> dict[str, Any]:
        if self._reader is not None:
            self._retire(self._reader)
            self._reader = None  # threads do not pickle (process transports)
        return {
            "corrupt_packets": self.corrupt,
            "source_lost": self.lost,
            "reconnects": self.reconnects,
            "source_dropped": self.dropped,
        }

    # -- frames ----------------------------------------------------------------------

    def frames(self) -> Iterator[Message | None]:
        index, offset, last_time = 0, 0.0, 0.0
        pacer = _Pacer(self.fps, self.pace)
        reader = self._reader
        assert reader is not None, "open() first"
        if self.listen:
            reader = yield from self._await_publisher(reader)
        deadline = time.monotonic() + self.deadlines.open_s + self.deadlines.grace_s
        start = time.perf_counter()
        while self.max_frames is None or index < self.max_frames:
            try:
                event = reader.events.get(timeout=HEARTBEAT_S)
            except queue.Empty:
                if time.monotonic() < deadline:
                    if self.is_url:  # files never wait long: no heartbeats
                        yield None
                    continue
                silence = f"no frame for {self._silence_s():.0f} s"
                event = ("error", f"{self.location}: {silence}", silence)
            kind = event[0]
            if kind == "frame":
                image, seconds = event[1], event[2]
                # media time never goes back, whatever a reconnected stream restarts at
                now_time = offset + (seconds or 0.0)
                last_time = (
                    now_time
                    if index == 0 or now_time > last_time
                    else last_time + 1.0 / self.fps
                )
                ms = 1000.0 * (time.perf_counter() - start)
                pacer.wait(index)
                msg = frame_message(image, index, time.time(), last_time, self.fps)
                msg.header["dropped"] = self.dropped + reader.dropped
                msg.header["reconnects"] = self.reconnects
                msg.stage_time(self.name, ms)
                yield msg
                index += 1
                deadline = time.monotonic() + self._silence_s()
                start = time.perf_counter()
                continue
            if kind == "open":
                self._opened(event)
                continue
            # end or error: this reader is finished
            self._retire(reader)
            if not self.is_url or (kind == "end" and self.duration is not None):
                if index == 0:
                    cause = f" ({event[2]})" if kind == "error" else ""
                    raise StageError(
                        f"{self.location}: no frame could be decoded"
                        f"{cause}; the file may be damaged or truncated"
                    )
                if kind == "error":
                    log.warning("%s; stopping after %d frames", event[1], index)
                elif not self.loop and self.listed and index < self.listed - 1:
                    log.warning(
                        "%s ended after %d of the %d frames its index lists: "
                        "the file looks truncated or damaged",
                        self.location,
                        index,
                        self.listed,
                    )
                if not (self.loop and kind == "end"):
                    return
                offset = last_time + 1.0 / self.fps
                reader = self._reader = self._start_reader()
                continue
            why = event[2] if kind == "error" else "stream ended"
            if not self.reconnect:
                raise StageError(f"source {self.location} lost: {why}")
            offset = last_time + 1.0 / self.fps
            reader = yield from self._reconnect(why)
            deadline = time.monotonic() + self.deadlines.open_s + self.deadlines.grace_s

    def _reconnect(self, why: str) -> Generator[None, None, _Reader]:
        """Reopen with backoff until frames come back; yields heartbeats meanwhile and
        returns the new reader (as the generator's return value)."""
        self.lost += 1
        lost_at = time.monotonic()
        attempt = 1
        log.warning("source %s lost (%s); reconnecting", self.location, why)
        while True:
            wait = self.backoff.delay(attempt)
            if attempt & (attempt - 1) == 0 and attempt > 1:  # 2, 4, 8...: no spam
                log.warning(
                    "source %s: still reconnecting (attempt %d, %s)",
                    self.location,
                    attempt,
                    why,
                )
            end = time.monotonic() + wait
            while time.monotonic() < end:
                yield None
                time.sleep(min(HEARTBEAT_S, max(0.0, end - time.monotonic())))
            silent = time.monotonic() - lost_at
            if self.give_up_s is not None and silent > self.give_up_s:
                raise StageError(
                    f"source {self.location} lost for more than "
                    f"{self.give_up_s:.0f} s ({why}); giving up"
                )
            reader = self._reader = self._start_reader()
            limit = self.listen_timeout_s if self.listen else self.deadlines.open_s
            if self.give_up_s is not None:
                limit = min(limit or self.give_up_s, self.give_up_s - silent)
            event = yield from self._wait_open_yielding(reader, limit)
            if event[0] == "open":
                self._opened(event)
                self.reconnects += 1
                log.warning(
                    "source %s reconnected after %.1f s",
                    self.location,
                    time.monotonic() - lost_at,
                )
                return reader
            self._retire(reader)
            why = event[2]
            attempt += 1

    def _await_publisher(self, reader: _Reader) -> Generator[None, None, _Reader]:
        """Listening: wait (yielding heartbeats) until a publisher connects."""
        event = yield from self._wait_open_yielding(reader, self.listen_timeout_s)
        if event[0] == "error":
            raise StageError(event[1])
        self._opened(event)
        return reader

    # -- helpers ---------------------------------------------------------------------

    def _start_reader(self) -> _Reader:
        open_s = None if self.listen else self.deadlines.open_s
        reader = _Reader(
            self.location,
            self._options or {},
            (open_s, self.deadlines.read_s),
            keep_all=not self.live,
        )
        reader.start()
        return reader

    def _wait_open(self, reader: _Reader) -> tuple:
        try:
            return reader.events.get(
                timeout=self.deadlines.open_s + self.deadlines.grace_s
            )
        except queue.Empty:
            reader.abandon()
            return (
                "error",
                f"cannot open {self.location}: no answer in "
                f"{self.deadlines.open_s:.0f} s",
                "no answer",
            )

    def _wait_open_yielding(
        self, reader: _Reader, limit_s: float | None
    ) -> Generator[None, None, tuple]:
        """Like `_wait_open` but yields heartbeats; limit_s None waits forever."""
        end = (
            None
            if limit_s is None
            else (time.monotonic() + limit_s + self.deadlines.grace_s)
        )
        while end is None or time.monotonic() < end:
            try:
                return reader.events.get(timeout=HEARTBEAT_S)
            except queue.Empty:
                yield None
        reader.abandon()
        return (
            "error",
            f"no answer from {self.location} in {limit_s:.0f} s",
            "no answer",
        )

    def _opened(self, event: tuple) -> None:
        _, self.fps, frames, self.duration = event
        self.listed = frames or 0
        if not self.loop:
            self.total = (
                min(frames, self.max_frames)
                if frames and self.max_frames
                else frames or self.max_frames
            )

    def _retire(self, reader: _Reader) -> None:
        reader.abandon()
        self.corrupt += reader.corrupt
        self.dropped += reader.dropped
        reader.corrupt = reader.dropped = 0

    def _silence_s(self) -> float:
        return self.deadlines.read_s + self.deadlines.grace_s
