"""Benchmark sources for the pipeline's runner (`pipeline.engine.worker.Source`).

* `FramesSource`: frames made before the run (so generating them costs nothing while
  we time), released at a fixed rate like a live camera; with a `Lockstep`, only once
  the previous frame has left the pipeline, so latency is one frame's way through every
  stage with no queueing and no drops.
* `TimedSource`: any source, cut after a wall-clock time from the pipeline's start,
  which it reports (frames sent before it, e.g. to a live stream's server while the
  model loaded, are a start-up backlog, not steady state).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from pipeline.engine.messages import Message, frame_message


class Lockstep:
    """One frame in flight: the source waits for the sink to see the previous one.

    Shared by reference, so only for stages run as threads (the inproc transport).
    """

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self._free = threading.Semaphore(1)

    def enter(self) -> None:
        self._free.acquire(timeout=self.timeout)  # a lost frame must not hang the run

    def leave(self) -> None:
        self._free.release()


class FramesSource:
    """Yields `frames` in order, at most at `fps` (capture time = release time)."""

    name = "source"
    info: dict[str, Any] | None = None

    def __init__(
        self,
        frames: Sequence[np.ndarray],
        fps: float,
        live: bool = True,
        lockstep: Lockstep | None = None,
    ):
        self.images = list(frames)
        self.fps = fps
        self.live = live
        self.lockstep = lockstep
        self.total = len(self.images)

    def check(self) -> None:
        """Nothing to check before the model loads: the frames are in memory."""

    def open(self) -> None:
        pass

    def frames(self) -> Iterator[Message]:
        last = -1.0
        for index, image in enumerate(self.images):
            if self.lockstep is not None:
                self.lockstep.enter()
            delay = last + 1.0 / self.fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            last = time.monotonic()
            msg = frame_message(image, index, time.time(), index / self.fps, self.fps)
            msg.stage_time(self.name, 0.0)
            yield msg

    def close(self) -> dict[str, Any] | None:
        return None


class TimedSource:
    """Wraps a source: stops after `seconds` and reports when it started."""

    name = "source"
    info: dict[str, Any] | None = None

    def __init__(self, inner: Any, seconds: float) -> None:
        self.inner = inner
        self.seconds = seconds
        self.live = inner.live
        self.total: int | None = None
        self.fps = 30.0
        self.started = 0.0

    def check(self) -> None:
        self.inner.check()

    def open(self) -> None:
        self.inner.open()
        self.fps = self.inner.fps

    def frames(self) -> Iterator[Message | None]:
        self.started = time.time()
        for msg in self.inner.frames():  # None: a waiting source's heartbeat
            if time.time() - self.started > self.seconds:
                return
            yield msg

    def close(self) -> dict[str, Any] | None:
        return {**(self.inner.close() or {}), "started": self.started}
