"""File sink: playable files with every frame, alpha where the container keeps it;
a failing sink does not take the others down."""

import time

import av
import numpy as np
import pytest

from configs.errors import StageError
from pipeline.engine.messages import frame_message
from pipeline.io.video_file import FileSink
from pipeline.stages.sinks import SinkStage
from tests.pipeline.helpers import decode_frames, pattern


def rendered(i: int, image: np.ndarray):
    msg = frame_message(image, i, time.time(), None, 10.0)
    msg.rendered = image
    return msg


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
def test_every_frame_written_and_playable(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    with FileSink(path) as sink:
        for i in range(9):
            sink.write(rendered(i, pattern(i)))
    frames = decode_frames(path)
    assert len(frames) == 9 and frames[0].shape == (48, 64, 3)
    assert np.abs(frames[4].astype(int) - pattern(4)).mean() < 8


def test_dropped_frames_keep_their_time(tmp_path):
    path = tmp_path / "gaps.mp4"
    with FileSink(path) as sink:
        for i in (0, 1, 5, 6):  # 2..4 were dropped upstream
            sink.write(rendered(i, pattern(i)))
    with av.open(str(path)) as clip:
        times = [round(f.time, 2) for f in clip.decode(video=0)]
    assert times == [0.0, 0.1, 0.5, 0.6]


def test_odd_sizes_are_padded(tmp_path):
    path = tmp_path / "odd.mp4"
    with FileSink(path) as sink:
        sink.write(rendered(0, pattern(0, 47, 63)))
    assert decode_frames(path)[0].shape == (48, 64, 3)


def test_still_images_of_other_sizes_are_fitted_not_lost(tmp_path):
    """Photographs of many sizes one after another (a folder): each is scaled into
    the first one's frame and centred; a taller or wider one once failed the sink
    (a negative pad) and cost every frame after it."""
    path = tmp_path / "photos.mp4"
    sizes = [(48, 64), (60, 64), (30, 90), (24, 32)]
    with FileSink(path) as sink:
        for i, (h, w) in enumerate(sizes):
            sink.write(rendered(i, np.full((h, w, 3), 200, np.uint8)))
    frames = decode_frames(path)
    assert len(frames) == 4 and {f.shape for f in frames} == {(48, 64, 3)}
    tall, wide = frames[1], frames[2]
    assert tall[:, 32].min() > 180 and tall[24, :4].max() < 30  # black beside it
    assert wide[24, 32].min() > 180 and wide[:6, 32].max() < 30  # black above it
    assert frames[3].min() > 180  # a smaller one of the same shape fills the frame


@pytest.mark.parametrize(
    "suffix, kept", [(".mkv", True), (".mov", True), (".mp4", False)]
)
def test_alpha(tmp_path, suffix, kept):
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[8:24, 8:24] = (200, 50, 20, 255)
    path = tmp_path / f"alpha{suffix}"
    with FileSink(path) as sink:
        sink.write(rendered(0, rgba))
    frame = decode_frames(path, "rgba")[0]
    if kept:
        np.testing.assert_array_equal(frame[..., 3], rgba[..., 3])
    else:
        assert (frame[..., 3] == 255).all()


def test_unsupported_type_and_unwritable_path(tmp_path):
    with pytest.raises(StageError, match="unsupported file type"):
        FileSink(tmp_path / "out.gif").open()
    (tmp_path / "file").write_text("")
    with pytest.raises(StageError, match="cannot write"):
        FileSink(tmp_path / "file" / "out.mp4").open()


class Broken:
    name = "broken"

    def open(self):
        pass

    def write(self, msg):
        if msg.header["index"] == 2:
            raise OSError("connection reset")

    def close(self):
        return {"path": "broken", "frames": 0}


def test_a_failing_sink_is_dropped_and_the_others_continue(tmp_path, capsys):
    stage = SinkStage([Broken(), FileSink(tmp_path / "ok.mp4")])
    stage.open()
    for i in range(5):
        stage.process(rendered(i, pattern(i)))
    report = stage.close()
    assert report["failed"] == ["broken"]
    assert report["outputs"] == [{"path": str(tmp_path / "ok.mp4"), "frames": 5}]
    assert "broken failed" in capsys.readouterr().err
    alone = SinkStage([Broken()])
    alone.open()
    alone.process(rendered(0, pattern(0)))
    with pytest.raises(StageError, match="broken failed"):
        alone.process(rendered(2, pattern(2)))
