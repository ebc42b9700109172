"""Local outputs (pipeline/io/virtualcam.py): without a virtual camera device or a
display, each says what is missing in one line instead of failing later. (No camera
device or display exists on test machines; where one does, the test is skipped.)"""

import importlib.util
import sys
from pathlib import Path

import pytest

from configs.errors import StageError
from pipeline.io.virtualcam import VirtualCamSink, WindowSink, display_problem

HAS_PYVIRTUALCAM = importlib.util.find_spec("pyvirtualcam") is not None


def open_error(sink) -> str:
    with pytest.raises(StageError) as err:
        sink.open()
    assert "\n" not in str(err.value)
    return str(err.value)


def test_virtual_camera_missing_is_one_line():
    if sys.platform.startswith("linux") and any(
        "loopback" in p.read_text().lower()
        for p in Path("/sys/class/video4linux").glob("*/name")
    ):
        pytest.skip("a v4l2loopback device exists here")
    message = open_error(VirtualCamSink())
    if not HAS_PYVIRTUALCAM:
        assert "pip install 'partstream[virtualcam]'" in message
        return
    assert message.startswith("no virtual camera device")
    if sys.platform.startswith("linux"):
        assert "modprobe v4l2loopback" in message
        assert "/dev/video63 does not exist" in open_error(
            VirtualCamSink(device="/dev/video63")
        )


def test_window_without_gui_or_display_is_one_line(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    problem = display_problem()
    if problem is None:
        pytest.skip("OpenCV has a GUI and this OS needs no DISPLAY")
    assert open_error(WindowSink()) == problem
    assert '".[gui]"' in problem or "DISPLAY" in problem
