"""Outputs on this machine: a virtual camera (`--virtual-cam`) that OBS or a video-call
app picks like a webcam, and a window (`--show`).

The virtual camera goes through pyvirtualcam (optional: `pip install
'partstream[virtualcam]'`): v4l2loopback on Linux, OBS's virtual camera on Windows and
macOS. Both need something outside Python (a kernel module, OBS), so `open` tries the
device at once and turns a missing one into a one-line instruction.

The window needs OpenCV built with a GUI and a display; opencv-python-headless (what
PartStream installs, so servers need no X libraries) has no GUI, and `open` says so.
Pressing q or Esc in the window stops the run like Ctrl-C.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import signal
import sys
from typing import Any

import numpy as np

from configs.errors import StageError
from pipeline.engine.messages import Message
from pipeline.engine.stage import Sink

PROBE_SIZE = (640, 480)  # what `open` tries the device with, before frames exist
NO_PACKAGE = (
    "--virtual-cam needs pyvirtualcam: pip install 'partstream[virtualcam]' "
    "(or pip install pyvirtualcam)"
)
HOW_TO_GET_ONE = {
    "linux": "load v4l2loopback: sudo modprobe v4l2loopback devices=1 exclusive_caps=1",
    "win32": "install OBS Studio and start its virtual camera once",
    "darwin": "install OBS Studio and start its virtual camera once",
}
STOP_KEYS = (ord("q"), 27)


class VirtualCamSink(Sink):
    """Rendered frames (RGB; alpha dropped) to a virtual camera device."""

    name = "virtual-cam"

    def __init__(self, key: str = "rendered", device: str | None = None) -> None:
        self.key = key
        self.device = device
        self.frames = 0
        self._camera: Any = None

    def check(self) -> None:
        """Try the device now: frames (and their size) come only once the run is on."""
        self._make(*PROBE_SIZE, 30.0).close()

    def open(self) -> None:
        self.check()

    def write(self, msg: Message) -> None:
        image = np.ascontiguousarray(msg.pixels(self.key)[..., :3])
        if self._camera is None:
            fps = float(msg.header.get("fps") or 30.0)
            self._camera = self._make(image.shape[1], image.shape[0], fps)
        self._camera.send(image)
        self.frames += 1

    def close(self) -> dict[str, Any]:
        if self._camera is not None:
            self._camera.close()
            self._camera = None
        return {"path": self.device or "virtual camera", "frames": self.frames}

    def _make(self, width: int, height: int, fps: float) -> Any:
        try:
            import pyvirtualcam
        except ImportError as exc:
            raise StageError(NO_PACKAGE) from exc
        try:
            return pyvirtualcam.Camera(
                width, height, fps, device=self.device, fmt=pyvirtualcam.PixelFormat.RGB
            )
        except RuntimeError as exc:
            hint = HOW_TO_GET_ONE.get(sys.platform, "install a virtual camera")
            why = str(exc).split(". ")[0].split(": ", 1)[-1].rstrip(".")
            raise StageError(f"no virtual camera device ({why}); {hint}") from exc


def display_problem() -> str | None:
    """Why a window cannot be shown here, or None if it can."""
    import cv2

    if re.search(r"GUI:\s+NONE", cv2.getBuildInformation()):
        return (
            "--show needs OpenCV with a window; the base install's has none: "
            'pip install -e ".[gui]"'
        )
    on_x = sys.platform.startswith("linux") or sys.platform.startswith("freebsd")
    if on_x and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return (
            "--show needs a display and there is none (DISPLAY is not set); use "
            "--output, --virtual-cam or a stream instead"
        )
    return None


class WindowSink(Sink):
    """Shows rendered frames in an OpenCV window; q or Esc stops the run."""

    name = "window"

    def __init__(self, key: str = "rendered", title: str = "PartStream") -> None:
        self.key = key
        self.title = title
        self.frames = 0

    def check(self) -> None:
        problem = display_problem()
        if problem:
            raise StageError(problem)

    def open(self) -> None:
        self.check()
        import cv2

        cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)

    def write(self, msg: Message) -> None:
        import cv2

        image = msg.pixels(self.key)
        code = cv2.COLOR_RGBA2BGR if image.shape[2] == 4 else cv2.COLOR_RGB2BGR
        cv2.imshow(self.title, cv2.cvtColor(image, code))
        self.frames += 1
        if cv2.waitKey(1) & 0xFF in STOP_KEYS:
            parent = mp.parent_process()  # the runner, if we are a worker
            os.kill(parent.pid if parent else os.getpid(), signal.SIGINT)

    def close(self) -> dict[str, Any]:
        import cv2

        cv2.destroyWindow(self.title)
        return {"path": "window", "frames": self.frames}
