"""A loopback port spliced onto an already-open connection: how a stream output's
start-up check can be the stream itself.

The check must connect (a wrong address is one clear line at start-up, and a receiver
that accepts but never answers would freeze the process: PyAV connects holding the
GIL, without a timeout). A single-shot receiver, such as FFmpeg's own
`tcp://...?listen` or `-listen 1` RTMP server (what OBS's Media Source runs), takes
the first connection as the stream, so a probe that connects and closes leaves it
nothing to receive. So the check's connection is kept, and PyAV connects to a
loopback port instead, whose bytes a relay copies both ways.

The relay is a separate process: PyAV holds the GIL while it connects and
handshakes, so a relay thread could not run then. It takes one client, copies until
either side closes, and ends; it also ends if no client came when its owner closes
it (or dies), and (with `answer_s`) if the receiver says nothing for `answer_s`
seconds after the client spoke, which turns the RTMP server that never answers into
an error instead of a hang. This file runs as that process's script, so it imports
only the standard library.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
import threading
import time
from urllib.parse import urlparse, urlunparse

BUFFER = 256 * 1024  # bytes held per direction before the relay stops reading
GRACE_S = 5.0  # after the client is done: wait this long for the receiver
NO_ANSWER = "the receiver accepted the connection but did not answer in {:.0f} s"


class Relay:
    """A relay process for one open connection; `port` is where PyAV connects."""

    def __init__(self, upstream: socket.socket, answer_s: float | None = None) -> None:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        self.port = listener.getsockname()[1]
        fds = (listener.fileno(), upstream.fileno())
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-S",
                __file__,
                *map(str, fds),
                str(answer_s or 0),
                str(os.getpid()),
            ],
            pass_fds=fds,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        listener.close()
        upstream.close()
        self._lock = threading.Lock()  # the sending thread asks, the stage closes
        self._why: str | None = None

    def reason(self, wait_s: float = 1.0) -> str | None:
        """Why the relay ended the connection, if it did so itself (asked when the
        connection failed: the relay is ending then)."""
        try:
            self._proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            return None
        self._collect()
        return self._why

    def _collect(self) -> None:
        """Read the ended relay's last stderr line once, and close the pipe."""
        with self._lock:
            pipe = self._proc.stderr
            if pipe is not None and not pipe.closed:
                text = pipe.read().decode(errors="replace").strip()
                self._why = text.splitlines()[-1] if text else None
                pipe.close()

    def close(self, flush_s: float = 10.0) -> None:
        """Tell the relay we are done: one whose client connected (even if it has not
        been accepted yet) delivers what it holds and ends; one that never got a
        client (the run failed before its first frame) ends at once."""
        assert self._proc.stdin is not None
        with contextlib.suppress(OSError):
            self._proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(flush_s)
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._collect()


def via(location: str, port: int) -> str:
    """`location` with its host and port replaced by the relay's loopback port."""
    parsed = urlparse(location)
    userinfo = parsed.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return urlunparse(parsed._replace(netloc=netloc))


def _accept(listener: socket.socket, parent: int) -> socket.socket | None:
    """The one client; None if the owner closed our stdin (or died) and no client is
    waiting to be accepted."""
    listener.setblocking(False)
    stopping = False
    while True:
        readable, _, _ = select.select([listener, sys.stdin], [], [], 0.5)
        try:
            client, _ = listener.accept()
            client.setblocking(True)
            return client
        except BlockingIOError:
            if stopping:
                return None
        if sys.stdin in readable or os.getppid() != parent:
            stopping = True  # one more look: a client may have just connected


def _pump(client: socket.socket, upstream: socket.socket, answer_s: float) -> str:
    """Copy both ways until one side is done; returns why it stopped."""
    other = {client: upstream, upstream: client}
    held = {client: bytearray(), upstream: bytearray()}  # bytes waiting for the key
    reading = {client, upstream}
    asked_at = heard = None
    done_at = None
    for s in other:
        s.setblocking(False)
    while True:
        wanted = [s for s in reading if len(held[other[s]]) < BUFFER]
        pending = [s for s in other if held[s]]
        readable, writable, _ = select.select(wanted, pending, [], 0.2)
        for s in readable:
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                reading.discard(s)
                continue
            held[other[s]] += data
            if s is upstream:
                heard = True
            elif asked_at is None:
                asked_at = time.monotonic()
        for s in writable:
            try:
                sent = s.send(held[s])
            except OSError:
                return "closed"
            del held[s][:sent]
        if upstream not in reading and not held[client]:
            return "the receiver closed"  # closing the client tells PyAV
        if client not in reading and not held[upstream]:
            if done_at is None:
                upstream.shutdown(socket.SHUT_WR)
                done_at = time.monotonic()
            elif time.monotonic() - done_at > GRACE_S:
                return "done"
        if (
            answer_s
            and not heard
            and asked_at is not None
            and time.monotonic() - asked_at > answer_s
        ):
            return NO_ANSWER.format(answer_s)


def main(argv: list[str]) -> int:
    listen_fd, upstream_fd, answer_s, parent = argv
    listener = socket.socket(fileno=int(listen_fd))
    upstream = socket.socket(fileno=int(upstream_fd))
    client = _accept(listener, int(parent))
    listener.close()
    if client is None:
        upstream.close()
        return 0
    why = _pump(client, upstream, float(answer_s))
    if why.startswith("the receiver accepted"):  # said before PyAV sees the close
        print(why, file=sys.stderr, flush=True)
    for s in (client, upstream):
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
