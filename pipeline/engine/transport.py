"""ZeroMQ links between stages, and the control/status channels of a run.

A link is PUSH (upstream, connects) -> PULL (downstream, binds) with a bounded
high-water mark, so a slow stage pushes back instead of growing a queue. Two policies:

* ``all``: keep every frame; a full link blocks the sender (file transcoding).
* ``latest``: latest frame wins (live sources). The sender never blocks (a full link
  drops the new frame) and the receiver drains whatever is queued and keeps only the
  newest, so latency never builds up. Both sides count what they drop and add it to the
  frame header's cumulative ``dropped``.

The same code runs over inproc:// (threads sharing one zmq.Context), ipc:// or tcp://
(separate processes, or machines).
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import msgpack
import zmq

from pipeline.engine.messages import Message, pack, unpack

TRANSPORTS = ("inproc", "ipc", "tcp")
POLICIES = ("all", "latest")
LINGER_MS = 5000
POLL_MS = 100


@dataclass
class Endpoints:
    """Addresses for one run: unique per run so parallel runs never collide."""

    transport: str = "inproc"
    run_id: str = ""

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ValueError(f"unknown transport '{self.transport}' (use {TRANSPORTS})")
        self.run_id = self.run_id or uuid.uuid4().hex[:10]
        self._known: dict[str, str] = {}

    def address(self, name: str) -> str:
        """The address of link `name` (the same string for both of its ends)."""
        if name not in self._known:
            self._known[name] = self._new(name)
        return self._known[name]

    def _new(self, name: str) -> str:
        if self.transport == "inproc":
            return f"inproc://partstream-{self.run_id}-{name}"
        if self.transport == "ipc":
            name = f"partstream-{self.run_id}-{name}"
            return f"ipc://{os.path.join(tempfile.gettempdir(), name)}"
        return f"tcp://127.0.0.1:{free_port()}"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A TCP (or, with SOCK_DGRAM, UDP) port free right now on loopback (the binder
    takes it a moment later)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cleanup(address: str) -> None:
    """Remove the socket file an ipc:// bind leaves behind."""
    if address.startswith("ipc://"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address[len("ipc://") :])


class Sender:
    """Upstream end of a link (PUSH, connects)."""

    def __init__(self, ctx: zmq.Context, address: str, policy: str, hwm: int) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown queue policy '{policy}' (use {POLICIES})")
        self.policy = policy
        self.dropped = 0
        self.socket = ctx.socket(zmq.PUSH)
        self.socket.setsockopt(zmq.SNDHWM, hwm)
        self.socket.setsockopt(zmq.LINGER, LINGER_MS)
        self.socket.connect(address)

    def send(self, msg: Message, abort: Callable[[], bool] = lambda: False) -> bool:
        """Send one message; False if it was dropped (latest policy) or aborted.

        End-of-stream is always delivered (waiting if needed): it is what makes every
        downstream stage drain and finalise.
        """
        msg.header["dropped"] = msg.header.get("dropped", 0) + self.dropped
        if self.policy == "latest" and not msg.is_eof:
            try:
                self.socket.send_multipart(pack(msg), flags=zmq.NOBLOCK, copy=False)
                return True
            except zmq.Again:
                self.dropped += 1
                return False
        while not self.socket.poll(POLL_MS, zmq.POLLOUT):
            if abort():
                return False
        self.socket.send_multipart(pack(msg), copy=False)
        return True

    def close(self) -> None:
        self.socket.close()


class Receiver:
    """Downstream end of a link (PULL, binds)."""

    def __init__(self, ctx: zmq.Context, address: str, policy: str, hwm: int) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown queue policy '{policy}' (use {POLICIES})")
        self.policy = policy
        self.address = address
        self.dropped = 0
        self._pending: Message | None = None
        self.socket = ctx.socket(zmq.PULL)
        self.socket.setsockopt(zmq.RCVHWM, hwm)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(address)

    def ready(self) -> bool:
        """True if `recv` would return at once."""
        return self._pending is not None or bool(self.socket.poll(0, zmq.POLLIN))

    def recv(self) -> Message:
        """Next message (blocks); with the latest policy, the newest one queued."""
        if self._pending is not None:
            msg, self._pending = self._pending, None
        else:
            msg = unpack(self.socket.recv_multipart(copy=False))
        while self.policy == "latest" and not msg.is_eof:
            try:
                parts = self.socket.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            newer = unpack(parts)
            if newer.is_eof:
                self._pending = newer  # counted when it is returned
                break
            self.dropped += 1
            msg = newer
        msg.header["dropped"] = msg.header.get("dropped", 0) + self.dropped
        return msg

    def close(self) -> None:
        self.socket.close()
        cleanup(self.address)


# Control (runner -> workers, PUB/SUB) and status (workers -> runner, PUSH/PULL).
# finish: everything reached the last stage, sockets may close. A worker must not close
# earlier: libzmq drops what is still queued on a closing PUSH socket whose peer is at
# its high-water mark, even with a linger period.
START, STOP, ABORT, FINISH = "start", "stop", "abort", "finish"


class ControlListener:
    """A worker's view of the runner's commands."""

    def __init__(
        self, ctx: zmq.Context, address: str, parent_pid: int | None = None
    ) -> None:
        self.socket = ctx.socket(zmq.SUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SUBSCRIBE, b"")
        self.socket.connect(address)
        self.parent_pid = parent_pid
        self.seen: set[str] = set()

    def poll(self, timeout_ms: int = 0) -> set[str]:
        """Commands received so far (they are sticky: a stop stays a stop). A worker
        process whose runner died is told to abort, so it never lingers orphaned."""
        while self.socket.poll(timeout_ms, zmq.POLLIN):
            self.seen.add(self.socket.recv_string())
            timeout_ms = 0
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            self.seen.add(ABORT)
        return self.seen

    def close(self) -> None:
        self.socket.close()


class ControlPublisher:
    def __init__(self, ctx: zmq.Context, address: str) -> None:
        self.address = address
        self.socket = ctx.socket(zmq.PUB)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(address)

    def publish(self, command: str) -> None:
        self.socket.send_string(command)

    def close(self) -> None:
        self.socket.close()
        cleanup(self.address)


class StatusSender:
    def __init__(self, ctx: zmq.Context, address: str, worker: str) -> None:
        self.worker = worker
        self.socket = ctx.socket(zmq.PUSH)
        self.socket.setsockopt(zmq.LINGER, LINGER_MS)
        self.socket.connect(address)

    def report(self, event: str, **info: object) -> None:
        self.socket.send(msgpack.packb({"worker": self.worker, "event": event, **info}))

    def close(self) -> None:
        self.socket.close()


class StatusReceiver:
    def __init__(self, ctx: zmq.Context, address: str) -> None:
        self.address = address
        self.socket = ctx.socket(zmq.PULL)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(address)

    def recv(self, timeout_ms: int) -> dict | None:
        if not self.socket.poll(timeout_ms, zmq.POLLIN):
            return None
        return msgpack.unpackb(self.socket.recv(), strict_map_key=False)

    def close(self) -> None:
        self.socket.close()
        cleanup(self.address)
