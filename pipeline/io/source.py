"""Stage 1: where frames come from. Each source yields frame messages that carry the
image (RGB uint8), the frame index, the capture wall-clock time and the media time.

* files and network URLs: `pipeline.io.watchdog.WatchedSource` (PyAV under a watchdog).
* `CameraSource`: camera indices through OpenCV.
* `SyntheticSource`: an animated crowd from the synthetic world (trainers.synth), the
  default input: it needs no camera and no data on disk, and it knows the truth.
* `ImageSource`: still images (an image file, a folder of them, or a glob), one frame
  each; the header's `name` is the file's, for `pipeline.io.results`.

`live` tells the runner whether latest-frame-wins applies: a camera or a stream keeps
producing whether we keep up or not, a file waits for us. `pace=True` plays a file or
the synthetic crowd at its frame rate, i.e. like a live source.
"""

from __future__ import annotations

import glob
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from configs.errors import StageError
from pipeline.engine.messages import Message, frame_message

DEFAULT_FPS = 30.0
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

log = logging.getLogger(__name__)


class _Pacer:
    """Sleeps so frame k is released at start + k / fps (never sleeps to catch up)."""

    def __init__(self, fps: float, enabled: bool) -> None:
        self.period = 1.0 / fps if enabled and fps > 0 else 0.0
        self.start: float | None = None

    def wait(self, index: int) -> None:
        if not self.period:
            return
        now = time.monotonic()
        self.start = now if self.start is None else self.start
        delay = self.start + index * self.period - now
        if delay > 0:
            time.sleep(delay)


class CameraSource:
    """A local camera through OpenCV (V4L2 on Linux). `size` (width, height) and
    `fps` are requests: the driver picks the nearest mode it has."""

    name = "source"
    info: dict[str, Any] | None = None
    live = True

    def __init__(
        self,
        index: int,
        max_frames: int | None = None,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
    ) -> None:
        self.index = index
        self.max_frames = max_frames
        self.total = max_frames
        self.size = size
        self.requested_fps = fps
        self.fps = fps or DEFAULT_FPS
        self._cap: Any = None

    def check(self) -> None:
        """Open and release the camera: a missing one fails before the model loads."""
        self.open()
        self.close()

    def open(self) -> None:
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        self._cap = cv2.VideoCapture(self.index)
        if not self._cap.isOpened():
            raise StageError(f"camera {self.index} does not exist or cannot be opened")
        if self.size is not None:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        if self.requested_fps:
            self._cap.set(cv2.CAP_PROP_FPS, self.requested_fps)
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS)) or self.fps

    def frames(self) -> Iterator[Message]:
        import cv2

        index = 0
        while self.max_frames is None or index < self.max_frames:
            start = time.perf_counter()
            ok, bgr = self._cap.read()
            if not ok:
                return
            capture = time.time()
            msg = frame_message(
                cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index, capture, None, self.fps
            )
            msg.stage_time(self.name, 1000.0 * (time.perf_counter() - start))
            yield msg
            index += 1

    def close(self) -> dict[str, Any] | None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        return None


class SyntheticSource:
    """An animated synthetic crowd; `truth=True` also sends the ground truth along
    (`Message.truth`: instances, track_ids) for evaluating the tracker.
    `options` are trainers.synth's generator options (SynthOptions)."""

    name = "source"
    info: dict[str, Any] | None = None

    def __init__(
        self,
        frames: int = 60,
        size: int = 384,
        people: tuple[int, int] = (3, 5),
        fps: float = 15.0,
        seed: int = 0,
        pace: bool = False,
        truth: bool = False,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.total = frames
        self.size = size
        self.people = people
        self.fps = fps
        self.seed = seed
        self.pace = pace
        self.live = pace
        self.truth = truth
        self.options = options or {}

    def check(self) -> None:
        """Nothing to check before the model loads: the frames are generated."""

    def open(self) -> None:
        from trainers.synth import SynthOptions

        try:
            SynthOptions.from_kwargs(self.options)
        except ValueError as exc:
            raise StageError(f"synthetic source: {exc}") from exc

    def frames(self) -> Iterator[Message]:
        from trainers.synth import generate_video

        pacer = _Pacer(self.fps, self.pace)
        scenes = generate_video(
            self.seed, self.size, self.total, self.people, self.fps, **self.options
        )
        for index in range(self.total):
            start = time.perf_counter()
            scene = next(scenes)
            ms = 1000.0 * (time.perf_counter() - start)
            pacer.wait(index)
            msg = frame_message(
                scene.image, index, time.time(), index / self.fps, self.fps
            )
            msg.stage_time(self.name, ms)
            if self.truth:
                msg.truth["instances"] = scene.instances
                msg.truth["track_ids"] = np.asarray(scene.track_ids, np.int64)
            yield msg

    def close(self) -> dict[str, Any] | None:
        return None


def image_paths(spec: str) -> list[Path] | None:
    """The images `spec` names, sorted: an image file, a folder (its images, not its
    subfolders') or a glob pattern; None if `spec` is none of these (a video, a URL).
    """
    path = Path(spec)
    if path.is_dir():
        found = list(path.iterdir())
    elif glob.has_magic(spec):
        found = [Path(p) for p in glob.glob(spec)]
    elif path.suffix.lower() in IMAGE_SUFFIXES:
        return [path] if path.is_file() else []
    else:
        return None
    return sorted(
        p for p in found if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )


class ImageSource:
    """Still images, one frame each, in name order: a file waits for us (not live),
    and images of any size follow one another (sinks fit each to the first)."""

    name = "source"
    info: dict[str, Any] | None = None
    live = False
    still = True  # the network runs at `pipeline.still_scale` x its side (runner)

    def __init__(self, spec: str, max_frames: int | None = None) -> None:
        self.spec = spec
        self.paths = (image_paths(spec) or [])[:max_frames]
        self.total = len(self.paths)
        self.skipped = 0

    def check(self) -> None:
        """Before the model loads: something to read."""
        if not self.paths:
            raise StageError(
                f"no images in {self.spec}"
                if Path(self.spec).is_dir() or glob.has_magic(self.spec)
                else f"no such image file: {self.spec}"
            )

    def open(self) -> None:
        self.check()

    def frames(self) -> Iterator[Message]:
        import cv2

        for index, path in enumerate(self.paths):
            start = time.perf_counter()
            data = np.fromfile(path, np.uint8)  # imdecode: no OpenCV log lines
            bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
            if bgr is None:
                log.warning("cannot read image %s; skipped", path)
                self.skipped += 1
                continue
            msg = frame_message(
                cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
                index,
                time.time(),
                None,
                DEFAULT_FPS,
            )
            msg.header["name"] = path.name
            msg.stage_time(self.name, 1000.0 * (time.perf_counter() - start))
            yield msg

    def close(self) -> dict[str, Any] | None:
        return {"images_skipped": self.skipped}
