"""run_stream.py on live streams over loopback, every peer a real process: RTMP and
RTSP publishers pushing to PartStream in listen mode, and a stream that goes away and
comes back (an HTTP/MPEG-TS server) while a file and the results feed are written at
once: the source reconnects without a restart, and every processed frame is kept; and
run_stream.py streaming to FFmpeg's own single-shot listeners (docs/OBS.md's TCP and
RTMP receivers), which get every frame it sends."""

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import pytest
import zmq

from pipeline.engine.transport import free_port
from pipeline.io.feed import SCHEMA, unpack_record
from tests.loopback import endpoint
from tests.pipeline.conftest import cli
from tests.pipeline.live_helpers import single_shot_listener, start_server

ROOT = Path(__file__).resolve().parents[2]


FIRST = 30  # frames the first HTTP server sends before it goes away


def kill(*procs: subprocess.Popen | None) -> None:
    for p in procs:
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()


def reconnected_once(
    proc: subprocess.Popen, stdout: str, stderr: str, out: Path, code: int = 0
) -> int:
    """Checks a finished run_stream.py that lost its source once and got it back;
    returns how many frames it wrote (all of them playable)."""
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    assert "source lost 1 time(s), reconnected 1 time(s)" in stdout
    written = int(stdout.split(f"wrote {out} (")[1].split()[0])
    with av.open(str(out)) as clip:
        assert sum(1 for _ in clip.decode(video=0)) == written
    return written


def subscribe(address: str, got: list[dict], stop: threading.Event) -> None:
    """A results-feed client, as an AR app would run it."""
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(address)
    while not stop.is_set():
        if sub.poll(50, zmq.POLLIN):
            got.append(unpack_record(sub.recv(), "json"))
    sub.close(linger=0)
    ctx.term()


def await_record(
    records: list[dict], proc: subprocess.Popen, first_frame: int, timeout_s: float
) -> bool:
    """Waits until the feed has carried frame `first_frame` or a later one. Which
    frames are processed depends on the machine (latest frame wins), so the test
    waits for one instead of assuming it among a fixed number of frames."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if any(r["frame"] >= first_frame for r in list(records)):
            return True
        time.sleep(0.1)
    return False


def test_stream_drops_and_comes_back_while_file_and_feed_keep_going(tiny, tmp_path):
    """The server sends FIRST frames and goes away; the same URL comes back and
    streams on until the feed shows a frame from after the reconnect (indices from
    FIRST on can only come from there); then Ctrl-C ends the run cleanly."""
    port, feed = free_port(), f"tcp://127.0.0.1:{free_port()}"
    out = tmp_path / "live.mkv"
    records: list[dict] = []
    stop = threading.Event()
    reader = threading.Thread(target=subscribe, args=(feed, records, stop))
    reader.start()
    first = start_server(port, FIRST, 0)
    second = None
    proc = subprocess.Popen(
        [
            sys.executable,
            "run_stream.py",
            *cli(tiny),
            "--source",
            f"http://127.0.0.1:{port}/live.ts",
            "--timeout",
            "2",
            "--output",
            str(out),
            "--publish",
            feed,
            "--no-hud",
            "--quiet",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first.wait(timeout=60)  # sent its frames and went away
        second = start_server(port, 25 * 300, 1000)  # the same URL comes back
        resumed = await_record(records, proc, FIRST, timeout_s=180)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        stop.set()
        reader.join()
        kill(proc, first, second)
    assert resumed, f"no frame from after the reconnect reached the feed: {stderr}"
    written = reconnected_once(proc, stdout, stderr, out, code=130)
    frames = [r["frame"] for r in records]
    assert {r["schema"] for r in records} == {SCHEMA}
    assert frames == sorted(frames) and max(frames) >= FIRST
    assert 0 < len(records) <= written


def publish(url: str, fmt: str, frames: int, first: int) -> subprocess.Popen:
    """A publisher process (retries until the listener is up), like OBS streaming."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.pipeline.live_helpers",
            "publish",
            url,
            fmt,
            str(frames),
            str(first),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("protocol", ["rtmp", "rtsp"])
def test_publishers_push_to_run_stream_listening(tiny, tmp_path, protocol):
    """OBS (here a PyAV publisher) streams to PartStream, stops, and streams again:
    PartStream listens again and goes on without a restart."""
    url, fmt, _ = endpoint(protocol)
    out = tmp_path / "pushed.mp4"
    proc = subprocess.Popen(
        [
            sys.executable,
            "run_stream.py",
            *cli(tiny),
            "--listen",
            "--source",
            url,
            "--max-frames",
            "40",
            "--output",
            str(out),
            "--quiet",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    publishers = [publish(url, fmt, 25, 0)]
    try:
        publishers[0].wait(timeout=60)
        publishers.append(publish(url, fmt, 200, 1000))
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        kill(proc, *publishers)
    written = reconnected_once(proc, stdout, stderr, out)
    assert 0 < written <= 40


@pytest.mark.parametrize("kind", ["tcp", "rtmp"])
def test_single_shot_listener_started_first_gets_every_frame(tiny, kind):
    """`ffmpeg -i 'tcp://127.0.0.1:PORT?listen'` (or `-listen 1` RTMP), then
    run_stream.py --output to it: the start-up check must not use up its one
    connection."""
    url, receiver = single_shot_listener(kind)
    proc = None
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "run_stream.py",
                *cli(tiny),
                "--max-frames",
                "20",
                "--output",
                url,
                "--quiet",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        got, err = receiver.communicate(timeout=30)
    finally:
        kill(receiver)
    assert proc.returncode == 0, proc.stderr
    sent = int(proc.stdout.split(f"wrote {url} (")[1].split()[0])
    assert receiver.returncode == 0, err
    assert 0 < sent <= 20 and int(got) == sent
