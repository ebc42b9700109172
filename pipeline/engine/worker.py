"""The worker loop every stage runs in, as a thread or as a process.

A stage only knows its input and output message; the worker owns the sockets, the
timing and the shutdown rules:

* end of stream: forwarded after the last frame, so every stage drains in order and
  the last one finalises its output;
* stop (SIGINT, or an error anywhere): the source stops producing and sends end of
  stream; everything already in flight is still processed and written;
* abort (second SIGINT, failure while starting): every worker leaves at once, still
  closing its stage (a file sink writes its trailer);
* a stage that fails on a frame reports one line and then only drains, so the stages
  behind it still finish cleanly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import traceback
from dataclasses import dataclass
from typing import Any

import zmq

from configs.cli import setup_logging
from configs.errors import StageError
from pipeline.engine.messages import eof_message
from pipeline.engine.stage import Source, Stage
from pipeline.engine.telemetry import Telemetry
from pipeline.engine.transport import (
    ABORT,
    FINISH,
    POLL_MS,
    START,
    STOP,
    ControlListener,
    Receiver,
    Sender,
    StatusSender,
)

PROGRESS_S = 0.25
FINISH_WAIT_S = 30.0  # how long a finished worker waits for the runner's go-ahead


@dataclass
class Link:
    """One end of a link: where it is and how it queues."""

    address: str
    policy: str = "all"
    hwm: int = 4


@dataclass
class WorkerSpec:
    """Everything a worker needs; picklable, so it can start a process."""

    stage: Source | Stage
    control: str
    status: str
    input: Link | None = None
    output: Link | None = None
    parent_pid: int | None = None  # a worker process's runner

    @property
    def name(self) -> str:
        return self.stage.name


def describe(exc: BaseException) -> str:
    """One line for the user; the traceback only with PARTSTREAM_DEBUG=1."""
    if os.environ.get("PARTSTREAM_DEBUG"):
        traceback.print_exception(exc)
    if isinstance(exc, StageError):
        return str(exc)
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def process_main(spec: WorkerSpec) -> None:
    """Entry point of a worker process: SIGINT is the runner's to handle (it sends
    stop), so the process keeps draining instead of dying mid-frame."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    setup_logging()  # a spawned process starts without the CLI's setup
    run_worker(spec)


def run_worker(spec: WorkerSpec, ctx: zmq.Context | None = None) -> None:
    """Run one stage until end of stream or abort; report to the runner."""
    own_ctx = ctx is None
    ctx = ctx or zmq.Context()
    status = StatusSender(ctx, spec.status, spec.name)
    control = ControlListener(ctx, spec.control, spec.parent_pid)
    receiver = sender = None
    try:
        if spec.input:
            link = spec.input
            receiver = Receiver(ctx, link.address, link.policy, link.hwm)
        if spec.output:
            link = spec.output
            sender = Sender(ctx, link.address, link.policy, link.hwm)
        if receiver is None:
            _run_source(spec.stage, sender, control, status)
        else:
            _run_stage(spec.stage, receiver, sender, control, status)
    except zmq.ContextTerminated:
        pass  # the runner gave up waiting for this thread: nobody listens
    except Exception as exc:  # socket setup; stage errors are handled inside
        with contextlib.suppress(zmq.ContextTerminated):
            status.report("error", message=describe(exc), phase="setup")
            status.report("done", report=None, stats=None)
    finally:
        try:
            _await_finish(control)
        finally:  # sockets left open would block the context's term() forever
            for part in (receiver, sender, control, status):
                if part is not None:
                    part.close()
            if own_ctx:
                ctx.term()


def _await_finish(control: ControlListener) -> None:
    """Keep the sockets open until the runner says everything arrived (or aborts)."""
    deadline = time.monotonic() + FINISH_WAIT_S
    with contextlib.suppress(zmq.ContextTerminated):
        while not control.poll(POLL_MS) & {FINISH, ABORT}:
            if time.monotonic() > deadline:
                break


def _open(
    stage: Source | Stage, status: StatusSender, total: int | None = None
) -> bool:
    """Open a stage; one that fails to open cleans up after itself (no close)."""
    try:
        stage.open()
    except Exception as exc:
        status.report("error", message=describe(exc), phase="open")
        return False
    status.report("ready", total=total, info=stage.info)
    return True


def _close(stage: Source | Stage, status: StatusSender) -> dict[str, Any] | None:
    try:
        return stage.close()
    except Exception as exc:
        status.report("error", message=describe(exc), phase="close")
        return None


def _run_source(
    source: Source, sender: Sender, control: ControlListener, status: StatusSender
) -> None:
    if not _open(source, status, source.total):
        status.report("done", report=None, stats=None)
        return
    while not control.poll(POLL_MS) & {START, STOP, ABORT}:
        pass
    sent = 0
    if START in control.seen and not control.seen & {STOP, ABORT}:
        status.report("started")

        def aborted() -> bool:
            return ABORT in control.poll()

        try:
            for msg in source.frames():
                if control.poll() & {STOP, ABORT}:
                    break
                if msg is not None:  # None: a waiting source's heartbeat
                    sent += sender.send(msg, aborted)
        except Exception as exc:
            status.report("error", message=describe(exc), phase="run")
    if ABORT not in control.seen:
        sender.send(eof_message(), lambda: ABORT in control.poll())
    status.report(
        "done", report={"frames": sent, **(_close(source, status) or {})}, stats=None
    )


def _run_stage(
    stage: Stage,
    receiver: Receiver,
    sender: Sender | None,
    control: ControlListener,
    status: StatusSender,
) -> None:
    opened = healthy = _open(stage, status)
    telemetry = Telemetry() if sender is None else None
    poller = zmq.Poller()
    poller.register(receiver.socket, zmq.POLLIN)
    poller.register(control.socket, zmq.POLLIN)

    def aborted() -> bool:
        return ABORT in control.poll()

    last_progress = 0.0
    while not aborted():
        if not receiver.ready():
            poller.poll(POLL_MS)
            continue
        msg = receiver.recv()
        if msg.is_eof:
            if sender is not None:
                sender.send(msg, aborted)
            elif telemetry is not None:
                telemetry.end(msg)
            break
        if not healthy:
            continue
        start = time.perf_counter()
        try:
            out = stage.process(msg)
        except Exception as exc:
            status.report(
                "error", message=f"{stage.name}: {describe(exc)}", phase="run"
            )
            healthy = False
            continue
        out.stage_time(stage.name, 1000.0 * (time.perf_counter() - start))
        if sender is not None:
            sender.send(out, aborted)
        elif telemetry is not None:
            telemetry.observe(out)
            if time.monotonic() - last_progress > PROGRESS_S:
                last_progress = time.monotonic()
                status.report("progress", frames=telemetry.frames)
    report = _close(stage, status) if opened else None
    status.report(
        "done",
        report=report,
        stats=telemetry.summary() if telemetry is not None else None,
    )
