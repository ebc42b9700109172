"""Shared by the pipeline tests: a deterministic stand-in frame source, simple stages
(importable, so worker processes can load them), a tiny model config, clip I/O."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import av
import numpy as np

from configs.errors import StageError
from pipeline.engine.messages import Message, frame_message

TINY_CONFIG = """\
input_size: 128
model:
  fpn_channels: 16
  head_channels: 16
decode:
  top_k: 6
  max_people: 6
  candidate_threshold: 0.0   # random weights: let candidates through so people appear
  person_threshold: 0.0
  limb_threshold: 0.0
pipeline:
  queue_hwm: 2
"""

# The documented fields of the stats record (docs and the CLI's --stats JSON).
STATS_KEYS = {
    "frames",
    "dropped",
    "fps",
    "latency_ms",
    "stages",
    "people_mean",
    "people_threshold",
    "processing_ms",
    "queue_ms",
}


def pattern(index: int, height: int = 48, width: int = 64) -> np.ndarray:
    """Frame `index` of the stand-in video: a bright square moving over a ramp."""
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.arange(width, dtype=np.uint8)[None] * 3
    image[..., 1] = (index * 7) % 256
    x = (index * 3) % (width - 8)
    image[10:18, x : x + 8] = 255
    return image


class PatternSource:
    """`frames` stand-in frames, optionally at `fps` (pace) like a live source."""

    name = "source"
    info: dict[str, Any] | None = None

    def __init__(
        self,
        frames: int = 20,
        live: bool = False,
        fps: float = 0.0,
        shape: tuple[int, int] = (48, 64),
    ) -> None:
        self.total, self.live, self.fps, self.shape = frames, live, fps, shape

    def check(self) -> None:
        """Nothing to check before the model loads: the frames are drawn."""

    def open(self) -> None:
        pass

    def frames(self):
        for i in range(self.total):
            if self.fps:
                time.sleep(1 / self.fps)
            yield frame_message(pattern(i, *self.shape), i, time.time(), i / 10, 10.0)

    def close(self):
        return None


class Slow:
    """Passes frames on after `delay` seconds; `bottleneck` marks where drops happen."""

    bottleneck = True
    info: dict[str, Any] | None = None

    def __init__(
        self, name: str = "slow", delay: float = 0.0, fail_at: int | None = None
    ) -> None:
        self.name, self.delay, self.fail_at = name, delay, fail_at

    def open(self) -> None:
        pass

    def process(self, msg: Message) -> Message:
        if msg.header["index"] == self.fail_at:
            raise RuntimeError("boom")
        time.sleep(self.delay)
        return msg

    def close(self):
        return None


class Collect:
    """Last stage: remembers the frame indices and a checksum per frame."""

    name = "sink"
    bottleneck = False
    info: dict[str, Any] | None = None

    def __init__(self, fail_open: bool = False) -> None:
        self.fail_open = fail_open

    def open(self) -> None:
        if self.fail_open:
            raise StageError("collector cannot start")
        self.seen: list[int] = []
        self.sums: list[int] = []

    def process(self, msg: Message) -> Message:
        self.seen.append(int(msg.header["index"]))
        self.sums.append(int(msg.image.sum()))
        return msg

    def close(self):
        return {"seen": self.seen, "sums": self.sums}


def write_clip(
    path: Path, frames: int, size: tuple[int, int] = (48, 64), fps: int = 10
) -> Path:
    """An H.264 clip of the stand-in frames."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(pattern(i, *size), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def decode_frames(path: str | Path, fmt: str = "rgb24") -> list[np.ndarray]:
    with av.open(str(path)) as clip:
        return [f.to_ndarray(format=fmt) for f in clip.decode(video=0)]
