"""The watchdog source (pipeline/io/watchdog.py) and URL handling
(pipeline/io/protocols.py) on real files and real loopback servers: files end or loop,
damaged files give what they can, dead servers are noticed within the deadline, a live
stream that freezes and comes back is reconnected without a restart."""

import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from configs.errors import StageError
from pipeline.engine.transport import free_port
from pipeline.io.protocols import (
    SRT_MISSING,
    input_options,
    is_live,
    protocol_available,
    stream_muxer,
)
from pipeline.io.watchdog import Backoff, Deadlines, WatchedSource
from tests.loopback import read_stamp
from tests.pipeline.helpers import decode_frames, write_clip
from tests.pipeline.live_helpers import start_server

ROOT = Path(__file__).resolve().parents[2]
FAST = Deadlines(open_s=1.5, read_s=1.0, grace_s=0.5)
QUICK = Backoff(initial_s=0.1, factor=2.0, max_s=0.5)


def frames_of(source: WatchedSource) -> list:
    return [m for m in source.frames() if m is not None]


def test_backoff_doubles_up_to_its_cap():
    delays = [Backoff(0.5, 2.0, 4.0).delay(a) for a in range(1, 6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0]


@pytest.mark.parametrize(
    "location, live",
    [
        ("clip.mp4", False),
        ("C:/videos/clip.mp4", False),
        ("rtsp://cam/stream", True),
        ("rtmp://host/live/key", True),
        ("udp://127.0.0.1:5000", True),
        ("srt://host:9000", True),
        ("http://host/live.ts", True),
        ("http://host/stream", True),
        ("https://host/videos/clip.mp4", False),
    ],
)
def test_live_schemes(location, live):
    assert is_live(location) is live


def test_input_options_per_scheme():
    rtsp = input_options("rtsp://cam/s", "udp")
    assert rtsp["rtsp_transport"] == "udp" and rtsp["fflags"] == "nobuffer"
    assert rtsp["flags"] == "low_delay"
    assert input_options("clip.mp4") == {}
    assert (
        input_options("rtmp://0.0.0.0:1935/live/x", listen=True, listen_timeout_s=7)[
            "listen"
        ]
        == "1"
    )
    rtsp = input_options("rtsp://0.0.0.0:8554/x", listen=True)  # wait "forever"
    assert rtsp["rtsp_flags"] == "listen" and rtsp["listen_timeout"] == "86400"
    with pytest.raises(StageError, match="--listen works with rtmp:// and rtsp://"):
        input_options("udp://127.0.0.1:5000", listen=True)
    with pytest.raises(StageError, match="unknown RTSP transport"):
        input_options("rtsp://cam/s", "sctp")


def test_srt_without_libsrt_is_one_clear_line():
    if protocol_available("srt"):
        pytest.skip("this FFmpeg has libsrt")
    for call in (
        lambda: input_options("srt://127.0.0.1:9000"),
        lambda: stream_muxer("srt://127.0.0.1:9000"),
    ):
        with pytest.raises(StageError) as err:
            call()
        assert str(err.value) == SRT_MISSING


def test_file_plays_to_its_end_and_loops(tmp_path):
    clip = write_clip(tmp_path / "in.mp4", 12)
    expected = decode_frames(clip)
    once = WatchedSource(str(clip))
    once.open()
    got = frames_of(once)
    assert once.close()["reconnects"] == 0
    assert [m.header["index"] for m in got] == list(range(12))
    looped = WatchedSource(str(clip), max_frames=30, loop=True)
    looped.open()
    got = frames_of(looped)
    looped.close()
    assert [m.header["index"] for m in got] == list(range(30))
    for m in got:
        np.testing.assert_array_equal(m.image, expected[m.header["index"] % 12])
    pts = [m.header["pts"] for m in got]
    assert all(b > a for a, b in zip(pts, pts[1:], strict=False))


def test_bad_sources_are_one_line_errors(tmp_path):
    (tmp_path / "notes.mp4").write_text("hello\n" * 50)
    cases = [
        (str(tmp_path / "nope.mp4"), {}, "no such video file"),
        (str(tmp_path / "notes.mp4"), {}, "is not a video PyAV can read"),
        ("rtsp://127.0.0.1:9/x", {"loop": True}, "--loop is for files"),
        (f"rtsp://127.0.0.1:{free_port()}/x", {}, "Connection refused"),
    ]
    for location, kwargs, message in cases:
        with pytest.raises(StageError) as err:
            WatchedSource(location, deadlines=FAST, **kwargs).open()
        assert message in str(err.value) and "\n" not in str(err.value)


def test_damaged_files_give_every_frame_they_can(tmp_path):
    clip = write_clip(tmp_path / "in.ts", 40, size=(96, 128))
    data = clip.read_bytes()
    truncated = tmp_path / "truncated.ts"
    truncated.write_bytes(data[: len(data) // 2])
    corrupt = tmp_path / "corrupt.ts"
    garbage = np.random.default_rng(0).integers(0, 256, 4000, np.uint8).tobytes()
    cut = len(data) // 3
    corrupt.write_bytes(data[:cut] + garbage + data[cut + len(garbage) :])
    counts = {}
    for path in (truncated, corrupt):
        source = WatchedSource(str(path))
        source.open()
        counts[path.stem] = len(frames_of(source))
        source.close()
    assert 5 < counts["truncated"] < 40 and 20 < counts["corrupt"] <= 40, counts
    mp4 = write_clip(tmp_path / "in.mp4", 40, size=(96, 128))
    (tmp_path / "cut.mp4").write_bytes(mp4.read_bytes()[:-2000])  # index lost
    with pytest.raises(StageError, match="cut.mp4 is not a video PyAV can read"):
        WatchedSource(str(tmp_path / "cut.mp4")).open()


def test_silent_server_is_noticed_within_the_deadline():
    """A server that accepts and never answers (PyAV #584): open fails in time."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    accepted = []
    threading.Thread(
        target=lambda: accepted.append(server.accept()), daemon=True
    ).start()
    source = WatchedSource(
        f"http://127.0.0.1:{server.getsockname()[1]}/live.ts", deadlines=FAST
    )
    start = time.monotonic()
    with pytest.raises(StageError, match="cannot open"):
        source.open()
    elapsed = time.monotonic() - start
    server.close()
    assert accepted and elapsed < FAST.open_s + FAST.grace_s + 1.0


def test_frozen_stream_is_dropped_and_reconnected(caplog):
    """The HTTP server freezes mid-stream (SIGSTOP: the connection stays open and
    silent, PyAV #700), is noticed within the deadline, dies, and a new server on the
    same port is picked up without restarting the source."""
    port = free_port()
    first = start_server(port, 400, 0)
    second = None
    source = WatchedSource(
        f"http://127.0.0.1:{port}/live.ts", deadlines=FAST, backoff=QUICK, give_up_s=20
    )
    stamps, indices, frozen_at, noticed_at = [], [], None, None
    try:
        source.open()
        with caplog.at_level(logging.WARNING, logger="pipeline.io.watchdog"):
            for msg in source.frames():
                if msg is not None:
                    stamps.append(read_stamp(msg.image))
                    indices.append(msg.header["index"])
                    if sum(s >= 1000 for s in stamps) == 5:
                        break
                if len(stamps) == 10 and frozen_at is None:
                    os.kill(first.pid, signal.SIGSTOP)
                    frozen_at = time.monotonic()
                if frozen_at and noticed_at is None and "lost" in caplog.text:
                    noticed_at = time.monotonic()
                    first.kill()
                    first.wait()
                    second = start_server(port, 400, 1000)
        report = source.close()
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.kill()
                proc.wait()
    assert noticed_at - frozen_at < FAST.read_s + FAST.grace_s + 1.0
    assert report["source_lost"] == 1 and report["reconnects"] == 1
    before = [s for s in stamps if s < 1000]
    after = [s for s in stamps if s >= 1000]
    assert before == sorted(before) and after == sorted(after) and len(after) == 5
    assert indices == list(range(len(stamps)))  # the index just keeps counting
    assert "reconnected" in caplog.text


def test_truncated_file_with_its_index_first_says_so(tmp_path, caplog):
    """An MP4 whose index is at the start (faststart) but whose data was cut off
    demuxes cleanly up to the cut: without a word it would look like a short clip."""
    import av

    full = tmp_path / "full.mp4"
    with av.open(str(full), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream("libx264", rate=10)
        stream.height, stream.width = 96, 128
        stream.pix_fmt = "yuv420p"
        noise = np.random.default_rng(0)  # incompressible: data spread evenly
        for _ in range(40):
            image = noise.integers(0, 256, (96, 128, 3), np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with caplog.at_level(logging.WARNING, logger="pipeline.io.watchdog"):
        whole = WatchedSource(str(full))
        whole.open()
        assert len(frames_of(whole)) == 40 and not caplog.records
        source = WatchedSource(str(cut))
        source.open()
        got = len(frames_of(source))
    assert 0 < got < 40
    assert [r.getMessage() for r in caplog.records] == [
        f"{cut} ended after {got} of the 40 frames its index lists: the file looks "
        "truncated or damaged"
    ]


def test_live_reader_keeps_the_open_event_while_nobody_reads(tmp_path):
    """Listening, the reader may connect and decode long before frames() is first
    called (the other stages are still loading): its newest frames replace older
    ones, but the "open" event ahead of them must survive, or frames() unpacks a
    frame as the stream's description (ValueError under load, the RTMP test)."""
    clip = write_clip(tmp_path / "in.mp4", 12)
    source = WatchedSource(str(clip), pace=True, listen=True, options={})
    source.open()  # listening: returns before the stream opens
    reader = source._reader
    deadline = time.monotonic() + 30
    while reader.dropped < 11 and time.monotonic() < deadline:  # all 12 decoded
        time.sleep(0.01)
    assert reader.dropped == 11
    got = frames_of(source)
    source.close()
    assert source.fps == 10.0  # from the "open" event
    assert [m.header["index"] for m in got] == [0]
    np.testing.assert_array_equal(got[0].image, decode_frames(clip)[11])
