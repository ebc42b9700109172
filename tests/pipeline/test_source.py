"""Sources: PyAV files (index, capture time, media time, pacing), the camera's
message, the synthetic crowd with its ground truth. Bad files, loops and streams:
test_live_watchdog.py."""

import time

import numpy as np
import pytest

from configs.errors import StageError
from pipeline.io.source import CameraSource, SyntheticSource
from pipeline.io.watchdog import WatchedSource
from tests.pipeline.helpers import pattern, write_clip


def test_video_file_frames_carry_index_times_and_pixels(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", 12)
    source = WatchedSource(str(clip))
    source.open()
    assert source.fps == 10 and source.total == 12 and not source.live
    before = time.time()
    msgs = list(source.frames())
    source.close()
    assert [m.header["index"] for m in msgs] == list(range(12))
    assert [round(m.header["pts"], 3) for m in msgs] == [i / 10 for i in range(12)]
    assert all(before <= m.header["capture_ts"] <= time.time() for m in msgs)
    # H.264 at this size is lossy, but the moving square must be where it was drawn
    diff = np.abs(msgs[7].image.astype(int) - pattern(7)).mean()
    assert diff < 8


def test_max_frames_and_pacing(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", 12)
    source = WatchedSource(str(clip), max_frames=5, pace=True)
    source.open()
    start = time.monotonic()
    assert len(list(source.frames())) == 5 and source.total == 5 and source.live
    assert time.monotonic() - start >= 0.35  # 5 frames at 10 fps
    source.close()


def test_missing_camera_is_a_clear_error():
    with pytest.raises(StageError, match="camera 57 does not exist"):
        CameraSource(57).open()


def test_synthetic_crowd_with_truth():
    source = SyntheticSource(frames=3, size=96, people=(2, 3), truth=True)
    source.open()
    msgs = list(source.frames())
    assert [m.header["index"] for m in msgs] == [0, 1, 2]
    m = msgs[-1]
    assert m.image.shape == (96, 96, 3)
    ids = set(np.unique(m.truth["instances"])) - {0}
    assert len(ids) == len(m.truth["track_ids"]) >= 1
