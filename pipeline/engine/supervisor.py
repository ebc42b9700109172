"""The generic supervisor: runs a list of stages (a source first) as connected
workers and steers the run to a clean end. It knows no particular stage: the app
assembly (pipeline/runner.py) hands it the stages.

It gives every adjacent pair of stages a link, runs each stage as a thread
(inproc://) or a process (ipc://, tcp://), and listens to their status: start the
source once every stage is ready (so model loading does not count as latency), stop on
SIGINT or on an error, abort on a second SIGINT or when something fails while starting.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import zmq
from tqdm import tqdm

from pipeline.engine.stage import Source, Stage
from pipeline.engine.transport import (
    ABORT,
    FINISH,
    START,
    STOP,
    ControlPublisher,
    Endpoints,
    StatusReceiver,
)
from pipeline.engine.worker import Link, WorkerSpec, process_main, run_worker
from pipeline.options import QUEUES


@dataclass
class RunResult:
    """What a run produced: the telemetry summary, per-stage reports, errors."""

    stats: dict[str, Any] | None = None
    reports: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    signal: int | None = None  # what interrupted it: SIGINT (Ctrl-C) or SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, stopping the run as cleanly as Ctrl-C does (but exit 143, not 130)."""


@dataclass
class RunOptions:
    """How the supervisor runs the stages. `hwm` has no default: it is the config's
    `pipeline.queue_hwm`, the queue depth the product runs with, for every caller."""

    hwm: int  # frames each end of a link may hold
    transport: str = "inproc"
    queue: str = "auto"  # auto: latest frame wins for live sources
    drain_timeout: float = 60.0  # after a stop, abort if not drained by then
    progress: bool = True
    # called once the source starts, with what the stages said when ready
    on_start: Callable[[dict[str, Any]], None] | None = None


def link_policies(stages: Sequence[Source | Stage], queue: str) -> list[str]:
    """Policy of each link i (stage i -> stage i + 1).

    Latest-frame-wins applies from the source up to the input of the first stage
    marked `bottleneck` (inference): dropping later would waste finished work.
    """
    if queue not in QUEUES:
        raise ValueError(f"unknown queue mode '{queue}' (use {QUEUES})")
    live = stages[0].live if queue == "auto" else queue == "latest"
    if not live:
        return ["all"] * (len(stages) - 1)
    last = next(
        (i for i, s in enumerate(stages[1:], 1) if s.bottleneck), len(stages) - 1
    )
    return ["latest" if i < last else "all" for i in range(len(stages) - 1)]


class Runner:
    """Runs `stages` (a source first) as connected workers until they finish."""

    def __init__(self, stages: Sequence[Source | Stage], options: RunOptions) -> None:
        self.stages = stages
        self.options = options
        self.names = [s.name for s in stages]
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"stage names must be unique: {self.names}")

    def _specs(self, ep: Endpoints) -> list[WorkerSpec]:
        policies = link_policies(self.stages, self.options.queue)
        links = [ep.address(f"link{i}") for i in range(len(self.stages) - 1)]
        specs = []
        for i, stage in enumerate(self.stages):
            spec = WorkerSpec(stage, ep.address("control"), ep.address("status"))
            if i > 0:
                spec.input = Link(links[i - 1], policies[i - 1], self.options.hwm)
            if i < len(self.stages) - 1:
                spec.output = Link(links[i], policies[i], self.options.hwm)
            specs.append(spec)
        return specs

    def run(self) -> RunResult:
        ctx = zmq.Context()
        ep = Endpoints(self.options.transport)
        control = ControlPublisher(ctx, ep.address("control"))
        status = StatusReceiver(ctx, ep.address("status"))
        workers: list[Any] = []
        restore = handle_signals()
        try:
            for spec in self._specs(ep):
                workers.append(self._start(spec, ctx))
            return self._supervise(control, status, workers)
        finally:
            deadline = time.monotonic() + 10.0
            while (alive := [w for w in workers if w.is_alive()]) and (
                time.monotonic() < deadline
            ):
                control.publish(ABORT)  # for workers still running (interrupted
                control.publish(FINISH)  # start-up); harmless for finished ones
                # wait on a live worker: joining a finished one returns at once, and
                # publishing in a tight loop floods the workers' control sockets so
                # fast that their reads never drain (a 10 s hang, 1 run in 30)
                alive[0].join(timeout=0.05)
            for w in workers:
                if isinstance(w, mp.process.BaseProcess) and w.is_alive():
                    w.terminate()
            control.close()
            status.close()
            if not any(w.is_alive() for w in workers):
                ctx.destroy(linger=0)  # also closes what a failed setup left open
            # else: a thread still busy keeps the context; term() would wait for it
            restore()

    def _start(self, spec: WorkerSpec, ctx: zmq.Context) -> Any:
        if self.options.transport == "inproc":
            worker = threading.Thread(
                target=run_worker,
                args=(spec, ctx),
                name=f"partstream-{spec.name}",
                daemon=True,
            )
        else:
            spec.parent_pid = os.getpid()
            worker = mp.get_context("spawn").Process(
                target=process_main, args=(spec,), name=f"partstream-{spec.name}"
            )
        worker.start()
        return worker

    def _supervise(
        self, control: ControlPublisher, status: StatusReceiver, workers: list[Any]
    ) -> RunResult:
        state = _Supervision(
            self.names, self.options.drain_timeout, self.options.on_start
        )
        bar = tqdm(
            desc="frames", unit="f", disable=not self.options.progress, leave=False
        )
        try:
            while len(state.done) < len(self.names):
                try:
                    event = status.recv(100)
                    if event is not None:
                        state.handle(event, bar)
                    state.check_processes(workers)
                    for command in state.commands():
                        control.publish(command)
                except KeyboardInterrupt as exc:
                    state.interrupt(exc)
        finally:
            bar.close()
        return state.result


class _Supervision:
    """The runner's view of a run: who is ready/done and what to tell the workers."""

    def __init__(
        self,
        names: list[str],
        drain_timeout: float,
        on_start: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.names = names
        self.drain_timeout = drain_timeout
        self.on_start = on_start
        self.info: dict[str, Any] = {}
        self.result = RunResult()
        self.ready: set[str] = set()
        self.done: set[str] = set()
        self.started = False
        self.stop: str | None = None  # None, STOP or ABORT (only ever escalates)
        self.stop_time = 0.0

    def handle(self, event: dict[str, Any], bar: tqdm) -> None:
        kind, worker = event["event"], event["worker"]
        if kind == "ready":
            self.ready.add(worker)
            self.info[worker] = event.get("info")
            if event.get("total"):
                bar.total = event["total"]
        elif kind == "started":
            self.started = True
            if self.on_start is not None:
                self.on_start(self.info)
        elif kind == "progress":
            bar.update(event["frames"] - bar.n)
        elif kind == "error":
            self.result.errors.append(event["message"])
            self._escalate(STOP if self.started else ABORT)
        elif kind == "done":
            self.done.add(worker)
            self.result.reports[worker] = event.get("report")
            if event.get("stats") is not None:
                self.result.stats = event["stats"]

    def interrupt(self, exc: KeyboardInterrupt) -> None:
        """Ctrl-C or SIGTERM: first a clean stop, then (again) abort."""
        self.result.interrupted = True
        self.result.signal = self.result.signal or (
            signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
        )
        self._escalate(ABORT if self.stop else STOP)

    def _escalate(self, command: str) -> None:
        if self.stop != ABORT:
            if self.stop is None:
                self.stop_time = time.monotonic()
            self.stop = command

    def check_processes(self, workers: list[Any]) -> None:
        """A worker process that died without saying so (crash, OOM kill)."""
        for name, w in zip(self.names, workers, strict=True):
            if name not in self.done and getattr(w, "exitcode", None) not in (0, None):
                self.result.errors.append(
                    f"stage '{name}' exited unexpectedly (exit code {w.exitcode})"
                )
                self.done.add(name)
                self._escalate(ABORT)

    def commands(self) -> list[str]:
        """What to (re)publish now; repeated because PUB/SUB may miss early sends."""
        if self.stop == STOP and time.monotonic() - self.stop_time > self.drain_timeout:
            self.result.errors.append("pipeline did not drain in time; aborted")
            self.stop = ABORT
        out = []
        if self.stop is None and not self.started and self.ready == set(self.names):
            out.append(START)
        if self.stop is not None:
            out.append(self.stop)
        if self.names[-1] in self.done:
            out.append(FINISH)
        return out


def handle_signals() -> Callable[[], None]:
    """SIGINT raises KeyboardInterrupt and SIGTERM `Terminated`, whatever the
    launcher did: Python installs no Ctrl-C handler when SIGINT is ignored at start
    (nohup, `cmd &` in a script), and SIGTERM would kill the process without
    finalising its files. Returns a function that puts the previous handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def terminate(signum: int, frame: Any) -> None:
        raise Terminated

    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
        signal.SIGTERM: signal.signal(signal.SIGTERM, terminate),
    }

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    return restore
