"""Video files as a pipeline output: MP4/MKV/MOV through PyAV, and the frame-size
rules every PyAV encoder here shares (even sizes, alpha only where the codec keeps it).

A file is written under a temporary name and moved into place only if it got a frame
(`pipeline.engine.output_files`): a run that fails first leaves an earlier file
untouched.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from configs.errors import StageError
from pipeline.engine.messages import Message
from pipeline.engine.output_files import check_writable, finish, partial_path
from pipeline.engine.stage import Sink
from pipeline.engine.worker import describe

# extension -> (codec for RGB frames, codec and pixel format for RGBA frames or None)
CONTAINERS: dict[str, tuple[str, tuple[str, str] | None]] = {
    ".mp4": ("libx264", None),
    ".mkv": ("libx264", ("ffv1", "bgra")),
    ".mov": ("libx264", ("qtrle", "argb")),
}


def even(n: int) -> int:
    """The even size H.264's 4:2:0 chroma needs (odd sizes are padded up)."""
    return n + (n % 2)


def fit_frame(image: np.ndarray, width: int, height: int, pix_fmt: str) -> np.ndarray:
    """The frame at the stream's size, alpha dropped for an RGB stream: an odd side
    (the stream's own size, made even) padded by its edge pixels; any other size (still
    images of many sizes, one after another) scaled to fit and centred on black."""
    if pix_fmt == "yuv420p" and image.shape[2] == 4:
        image = image[..., :3]
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return np.ascontiguousarray(image)
    if 0 <= width - w <= 1 and 0 <= height - h <= 1:
        pad = ((0, height - h), (0, width - w), (0, 0))
        return np.ascontiguousarray(np.pad(image, pad, mode="edge"))
    import cv2

    scale = min(width / w, height / h)
    nw, nh = max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale)))
    shrink = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    canvas = np.zeros((height, width, image.shape[2]), image.dtype)
    top, left = (height - nh) // 2, (width - nw) // 2
    canvas[top : top + nh, left : left + nw] = cv2.resize(
        image, (nw, nh), interpolation=shrink
    )
    return canvas


class FileSink(Sink):
    """MP4/MKV/MOV through PyAV: H.264 (yuv420p) for RGB frames; RGBA frames keep
    their alpha in MKV (FFV1) and MOV (QuickTime RLE), MP4 drops it.

    H.264 quality is `crf` (lower: better, bigger) and `preset` (slower: smaller at
    the same quality), `pipeline.file_encoder` in the config. The default, ultrafast
    with the zerolatency tune on one thread, keeps the encoder off the network's core
    (issue 14: 4.7-6.1 ms a frame, against 10.2 for veryfast)."""

    def __init__(
        self,
        path: str | Path,
        key: str = "rendered",
        crf: int = 20,
        preset: str = "ultrafast",
        tune: str = "zerolatency",
        threads: int = 1,
    ) -> None:
        self.path = Path(path)
        self.name = f"file:{self.path}"
        self.key, self.crf, self.preset = key, crf, preset
        self.tune, self.threads = tune, threads
        self.frames = 0
        self._container: Any = None
        self._stream: Any = None
        self._partial = partial_path(self.path)
        self._last_pts = -1

    def __enter__(self) -> FileSink:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self) -> None:
        if self.path.suffix.lower() not in CONTAINERS:
            raise StageError(
                f"output {self.path}: unsupported file type (use "
                f"{', '.join(CONTAINERS)}, or a stream URL)"
            )
        check_writable(self.path)

    def open(self) -> None:
        import av

        self.check()
        self._partial = partial_path(self.path)  # this process's pid
        try:
            self._container = av.open(str(self._partial), "w")
        except (OSError, av.error.FFmpegError) as exc:
            raise StageError(f"cannot write {self.path}: {describe(exc)}") from exc

    def _start(self, image: np.ndarray, fps: float) -> None:
        rgb_codec, alpha = CONTAINERS[self.path.suffix.lower()]
        rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(30)
        if image.shape[2] == 4 and alpha is not None:
            codec, pix_fmt = alpha
        else:
            codec, pix_fmt = rgb_codec, "yuv420p"
        self._stream = self._container.add_stream(codec, rate=rate)
        self._stream.pix_fmt = pix_fmt
        self._stream.width, self._stream.height = (
            even(image.shape[1]),
            even(image.shape[0]),
        )
        if codec == "libx264":
            self._stream.options = {
                "crf": str(self.crf),
                "preset": self.preset,
                "tune": self.tune,
                "threads": str(self.threads),
            }
        self._time_base = 1 / rate

    def write(self, msg: Message) -> None:
        import av

        image = msg.pixels(self.key)
        if self._stream is None:
            self._start(image, float(msg.header.get("fps") or 30.0))
        image = fit_frame(
            image, self._stream.width, self._stream.height, self._stream.pix_fmt
        )
        frame = av.VideoFrame.from_ndarray(
            image, format="rgba" if image.shape[2] == 4 else "rgb24"
        )
        # pts = source frame index: dropped frames leave gaps, the timing stays true
        self._last_pts = max(int(msg.header.get("index", 0)), self._last_pts + 1)
        frame.pts, frame.time_base = self._last_pts, self._time_base
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> dict[str, Any]:
        if self._container is not None:
            if self._stream is not None:
                for packet in self._stream.encode():
                    self._container.mux(packet)
            self._container.close()
            self._container = None
            finish(self._partial, self.path, keep=self._stream is not None)
        return {"path": str(self.path), "frames": self.frames}
