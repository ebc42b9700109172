"""Stream outputs (pipeline/io/stream_out.py) on loopback: UDP/MPEG-TS read back by a
PyAV reader, FFmpeg's own single-shot listeners (TCP `?listen`, RTMP `listen=1`)
receiving every frame, receivers that go away or stop reading dropped while a file
output keeps every frame, outputs that cannot be opened refused at start."""

import contextlib
import socket
import threading
import time

import av
import numpy as np
import pytest

from configs.errors import StageError
from pipeline.engine.messages import frame_message
from pipeline.engine.transport import free_port
from pipeline.io.protocols import protocol_available
from pipeline.io.stream_out import StreamSink, stream_url
from pipeline.io.video_file import FileSink
from pipeline.stages.sinks import SinkStage
from tests.loopback import read_stamp, stamp
from tests.pipeline.helpers import decode_frames
from tests.pipeline.live_helpers import single_shot_listener


def message(
    index: int,
    size: tuple[int, int] = (63, 256),
    alpha: bool = False,
    noise: np.random.Generator | None = None,
):
    channels = 4 if alpha else 3
    image = np.full((*size, channels), 80, np.uint8)
    if noise is not None:
        image[..., :3] = noise.integers(0, 256, (*size, 3), np.uint8)
    image[..., :3] = stamp(image[..., :3], index)
    msg = frame_message(image[..., :3].copy(), index, time.time(), index / 25, 25.0)
    msg.rendered = image
    return msg


def test_stream_urls():
    assert stream_url("udp://127.0.0.1:5000") == "udp://127.0.0.1:5000?pkt_size=1316"
    assert stream_url("udp://h:1?ttl=2") == "udp://h:1?ttl=2&pkt_size=1316"
    assert stream_url("udp://h:1?pkt_size=188") == "udp://h:1?pkt_size=188"
    assert stream_url("rtmp://h/live/k") == "rtmp://h/live/k"


def test_udp_mpegts_out_is_read_back_by_pyav():
    port = free_port(socket.SOCK_DGRAM)
    url = f"udp://127.0.0.1:{port}"
    got: list[np.ndarray] = []

    def read() -> None:
        options = {"analyzeduration": "100000"}
        with (
            av.open(url, options=options, timeout=(5, 1)) as clip,
            contextlib.suppress(av.error.ExitError),
        ):  # silence: read timeout
            got.extend(f.to_ndarray(format="rgb24") for f in clip.decode(video=0))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    sink = StreamSink(url)
    sink.open()
    sent = 0  # until the reader (which may start late on a busy machine) has 25
    while sent < 400 and len(got) < 25:  # RGBA in: alpha dropped, odd height padded
        sink.write(message(sent, alpha=True))
        sent += 1
        time.sleep(0.02)
    report = sink.close()
    reader.join(timeout=10)
    assert report == {"path": url, "frames": sent, "dropped": 0}
    stamps = [read_stamp(f) for f in got]
    assert len(got) >= 25 and got[0].shape == (64, 256, 3)
    assert stamps == sorted(set(stamps))  # in order, no frame twice


@pytest.mark.parametrize("kind", ["tcp", "rtmp"])
def test_single_shot_listener_receives_every_frame(kind):
    """FFmpeg as OBS's Media Source runs it takes the first connection as the stream:
    the start-up check must not be that connection (docs/OBS.md)."""
    url, receiver = single_shot_listener(kind)
    try:
        sink = StreamSink(url)
        sink.check()  # start-up, then the worker opens it
        sink.open()
        for i in range(30):  # one at a time: nothing dropped
            sink.write(message(i))
            deadline = time.monotonic() + 10
            while sink.frames <= i and time.monotonic() < deadline:
                time.sleep(0.002)
        report = sink.close()
        out, err = receiver.communicate(timeout=30)
    finally:
        receiver.kill()
    assert report == {"path": url, "frames": 30, "dropped": 0}
    assert receiver.returncode == 0, err
    assert int(out) == 30


class Receiver:
    """A TCP peer that takes `keep` bytes and then closes, or never reads at all."""

    def __init__(self, keep: int | None) -> None:
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.url = f"tcp://127.0.0.1:{self.server.getsockname()[1]}"
        self.keep = keep
        self.peers: list[socket.socket] = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.peers.append(conn)
            if self.keep is not None:
                got = 0
                while got < self.keep and (chunk := conn.recv(65536)):
                    got += len(chunk)
                conn.close()

    def close(self) -> None:
        self.server.close()
        for peer in self.peers:
            peer.close()


@pytest.mark.parametrize(
    "keep, why", [(20000, "the receiver went away"), (None, "no progress for 1 s")]
)
def test_dead_stream_is_dropped_and_the_file_keeps_every_frame(
    tmp_path, capsys, keep, why
):
    receiver = Receiver(keep)
    path = tmp_path / "out.mkv"
    stream = StreamSink(receiver.url, bitrate_kbps=50000, stall_s=1.0)
    stage = SinkStage([FileSink(path), stream])
    stage.open()
    noise = np.random.default_rng(0)  # incompressible: buffers fill quickly
    frames, deadline = 0, time.monotonic() + 20
    while len(stage.sinks) == 2 and time.monotonic() < deadline:
        stage.process(message(frames, size=(240, 320), noise=noise))
        frames += 1
        time.sleep(0.01)
    for _ in range(5):  # the run goes on without it
        stage.process(message(frames, size=(240, 320), noise=noise))
        frames += 1
    report = stage.close()
    receiver.close()
    warnings = capsys.readouterr().err.strip().splitlines()
    assert report["failed"] == [f"stream:{receiver.url}"]
    assert len(warnings) == 1 and why in warnings[0] and receiver.url in warnings[0]
    assert len(decode_frames(path)) == frames == report["outputs"][0]["frames"]


def test_rtmp_server_that_never_answers_is_an_error_not_a_hang():
    """PyAV connects holding the GIL, without a timeout: the whole process would hang
    on a server that accepts and stays silent. The relay ends that connection, which
    lets PyAV (and so this thread) go on."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    url = f"rtmp://127.0.0.1:{server.getsockname()[1]}/live/key"
    sink = StreamSink(url, stall_s=0.5)
    sink.open()
    start = time.monotonic()
    with pytest.raises(StageError, match="did not answer|no progress"):
        for i in range(1000):
            sink.write(message(i))
            time.sleep(0.01)
    assert time.monotonic() - start < 5.0
    sink.close()
    server.close()


def test_outputs_that_cannot_be_opened_fail_at_start():
    closed = free_port()
    cases = [
        (f"rtmp://127.0.0.1:{closed}/live/key", "Connection refused"),
        (f"tcp://127.0.0.1:{closed}", "Connection refused"),
        ("http://127.0.0.1/out.ts", "cannot stream to http://127.0.0.1/out.ts"),
        ("tcp://nohost", "needs a host and a port"),
    ]
    if not protocol_available("srt"):
        cases.append(("srt://127.0.0.1:9000", "libsrt"))
    for url, message in cases:
        with pytest.raises(StageError) as err:
            StreamSink(url).open()
        assert message in str(err.value) and "\n" not in str(err.value), url
