"""Live video peers for the live I/O tests, run as separate processes.

A peer must not share the test's process: PyAV writes a stream's header (and makes
its RTMP/TCP connection) while holding the GIL, and a reader in the same process
waiting with a timeout needs the GIL for its interrupt callback, so the two would
deadlock on loopback.

    python -m tests.pipeline.live_helpers publish URL FORMAT FRAMES FIRST
        push FRAMES frames (stamped FIRST, FIRST + 1, ...) at FPS to URL, retrying
        the connection until a listener is up; exits when done
    python -m tests.pipeline.live_helpers serve PORT FRAMES FIRST
        an HTTP server on 127.0.0.1:PORT sending the same frames as one MPEG-TS stream
        to the first client, then exiting (the server going away)
    python -m tests.pipeline.live_helpers receive URL
        FFmpeg's own single-shot listener, as OBS's Media Source runs it: takes the
        first connection to URL (tcp://...?listen, or rtmp:// as `-listen 1`) as the
        stream, decodes it to the end and prints how many frames it got
"""

from __future__ import annotations

import subprocess
import sys
import time
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import av
import numpy as np

from pipeline.engine.transport import free_port
from tests.loopback import stamp

FPS = 25
SIZE = (64, 256)  # height, width: room for the 16-bit index stamp
GOP = 5  # a keyframe every 0.2 s: a (re)connecting reader starts fast


def frame(index: int) -> np.ndarray:
    image = np.full((*SIZE, 3), 90, np.uint8)
    image[SIZE[0] // 2 :, :, 1] = (index * 5) % 256
    return stamp(image, index)


def send(container: av.container.OutputContainer, frames: int, first: int) -> None:
    stream = container.add_stream("libx264", rate=FPS)
    stream.height, stream.width = SIZE
    stream.pix_fmt = "yuv420p"
    stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": str(GOP)}
    start = time.monotonic()
    for i in range(frames):
        picture = av.VideoFrame.from_ndarray(frame(first + i), format="rgb24")
        picture.pts, picture.time_base = i, Fraction(1, FPS)
        container.mux(stream.encode(picture))
        delay = start + (i + 1) / FPS - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    container.mux(stream.encode())


def publish(url: str, fmt: str, frames: int, first: int) -> None:
    options = {"rtsp_transport": "tcp"} if fmt == "rtsp" else {}
    deadline = time.monotonic() + 30
    while True:
        try:
            container = av.open(url, "w", format=fmt, options=options)
            send(container, frames, first)
            container.close()
            return
        except (av.error.FFmpegError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # the listener is not up yet


def serve(port: int, frames: int, first: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "video/mp2t")
            self.end_headers()
            with av.open(self.wfile, "w", format="mpegts") as container:
                send(container, frames, first)

        def log_message(self, *args: object) -> None:
            pass

    HTTPServer.allow_reuse_address = True
    with HTTPServer(("127.0.0.1", port), Handler) as server:
        print("listening", flush=True)
        server.handle_request()


def receive(url: str) -> None:
    options = {"listen": "1", "timeout": "60"} if url.startswith("rtmp") else {}
    got = 0
    with av.open(url, options=options) as clip:
        try:
            for _ in clip.decode(video=0):
                got += 1
        except av.error.OSError:  # FFmpeg's RTMP server: a publisher leaving is EIO
            if not url.startswith("rtmp"):
                raise
    print(got, flush=True)


def listening(port: int) -> bool:
    """Whether a TCP socket listens on `port`, asked without connecting (a connection
    would be taken as the stream by a single-shot listener). Linux: /proc/net/tcp."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                if int(local.rsplit(":", 1)[1], 16) == port and state == "0A":
                    return True
    return False


def start_receiver(url: str, port: int) -> subprocess.Popen:
    """`receive` in its own process, returned once it listens (the caller reads its
    stdout and kills it)."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.pipeline.live_helpers", "receive", url],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"receiver did not listen: {proc.communicate()[1]}")
        time.sleep(0.02)
    return proc


def single_shot_listener(kind: str) -> tuple[str, subprocess.Popen]:
    """A `receive` peer on a free port for `kind` ("tcp" or "rtmp"), started: the URL
    a sender writes to, and the receiver process."""
    port = free_port()
    if kind == "tcp":
        url = f"tcp://127.0.0.1:{port}"
        return url, start_receiver(url + "?listen", port)
    url = f"rtmp://127.0.0.1:{port}/live/key"
    return url, start_receiver(url, port)


def start_server(port: int, frames: int, first: int) -> subprocess.Popen:
    """`serve` in its own process, returned once it listens (the caller kills it)."""
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.pipeline.live_helpers",
            "serve",
            str(port),
            str(frames),
            str(first),
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "listening"
    return proc


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "publish":
        publish(args[0], args[1], int(args[2]), int(args[3]))
    elif command == "receive":
        receive(args[0])
    else:
        serve(int(args[0]), int(args[1]), int(args[2]))
