"""Wires stages into workers, starts them, and steers the run to a clean end.

The runner is the only part that knows the whole chain. It gives every adjacent pair
of stages a link, runs each stage as a thread (inproc://) or a process (ipc://, tcp://),
and listens to their status: start the source once every stage is ready (so model
loading does not count as latency), stop on SIGINT or on an error, abort on a second
SIGINT or when something fails while starting.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import zmq
from tqdm import tqdm

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

QUEUES = ("auto", "latest", "all")
# Where the overlay goes when no output of any kind is asked for.
DEFAULT_OUTPUT = "out/overlay.mp4"
# The embedded default input (`python run_stream.py` with no arguments): four seconds
# of a small crowd, people large enough to see their parts, little clutter.
DEMO = {"frames": 60, "size": 384, "people": (3, 5), "fps": 15.0, "seed": 7,
        "options": {"min_height": 130, "clutter": False, "degrade": 0.3}}


@dataclass
class RunResult:
    """What a run produced: the telemetry summary, per-stage reports, errors."""

    stats: dict[str, Any] | None = None
    reports: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    interrupted: bool = False
    signal: int | None = None     # what interrupted it: SIGINT (Ctrl-C) or SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM, stopping the run as cleanly as Ctrl-C does (but exit 143, not 130)."""


@dataclass
class RunOptions:
    transport: str = "inproc"
    queue: str = "auto"            # auto: latest frame wins for live sources
    hwm: int = 4                   # frames a link may hold
    drain_timeout: float = 60.0    # after a stop, abort if not drained by then
    progress: bool = True
    # called once the source starts, with what the stages said when ready
    on_start: Callable[[dict[str, Any]], None] | None = None


def link_policies(stages: list[Any], queue: str) -> list[str]:
    """Policy of each link i (stage i -> stage i + 1).

    Latest-frame-wins applies from the source up to the input of the first stage
    marked `bottleneck` (inference): dropping later would waste finished work.
    """
    if queue not in QUEUES:
        raise ValueError(f"unknown queue mode '{queue}' (use {QUEUES})")
    live = stages[0].live if queue == "auto" else queue == "latest"
    if not live:
        return ["all"] * (len(stages) - 1)
    last = next((i for i, s in enumerate(stages) if getattr(s, "bottleneck", False)),
                len(stages) - 1)
    return ["latest" if i < last else "all" for i in range(len(stages) - 1)]


class Runner:
    """Runs `stages` (a source first) as connected workers until they finish."""

    def __init__(self, stages: list[Any], options: RunOptions | None = None) -> None:
        self.stages = stages
        self.options = options or RunOptions()
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
                control.publish(ABORT)      # for workers still running (interrupted
                control.publish(FINISH)     # start-up); harmless for finished ones
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
                ctx.destroy(linger=0)   # also closes what a failed setup left open
            # else: a thread still busy keeps the context; term() would wait for it
            restore()

    def _start(self, spec: WorkerSpec, ctx: zmq.Context) -> Any:
        if self.options.transport == "inproc":
            worker = threading.Thread(target=run_worker, args=(spec, ctx),
                                      name=f"partstream-{spec.name}", daemon=True)
        else:
            spec.parent_pid = os.getpid()
            worker = mp.get_context("spawn").Process(
                target=process_main, args=(spec,), name=f"partstream-{spec.name}")
        worker.start()
        return worker

    def _supervise(
        self, control: ControlPublisher, status: StatusReceiver, workers: list[Any]
    ) -> RunResult:
        state = _Supervision(self.names, self.options.drain_timeout,
                             self.options.on_start)
        bar = tqdm(desc="frames", unit="f", disable=not self.options.progress,
                   leave=False)
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

    def __init__(self, names: list[str], drain_timeout: float,
                 on_start: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.names = names
        self.drain_timeout = drain_timeout
        self.on_start = on_start
        self.info: dict[str, Any] = {}
        self.result = RunResult()
        self.ready: set[str] = set()
        self.done: set[str] = set()
        self.started = False
        self.stop: str | None = None     # None, STOP or ABORT (only ever escalates)
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
            signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)
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
                    f"stage '{name}' exited unexpectedly (exit code {w.exitcode})")
                self.done.add(name)
                self._escalate(ABORT)

    def commands(self) -> list[str]:
        """What to (re)publish now; repeated because PUB/SUB may miss early sends."""
        if (self.stop == STOP
                and time.monotonic() - self.stop_time > self.drain_timeout):
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

    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
                signal.SIGTERM: signal.signal(signal.SIGTERM, terminate)}

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    return restore


@dataclass
class StreamOptions:
    """What `run_stream.py` asks for (see its --help)."""

    source: str = "synthetic"
    camera: int | None = None
    outputs: list[str] = field(default_factory=list)   # none given: DEFAULT_OUTPUT
    backend: str = "auto"
    device: str = "cpu"
    config: str | None = None
    checkpoint: str | None = None
    max_frames: int | None = None
    transport: str = "inproc"
    render_mode: str = "overlay"
    hud: bool = True
    display_threshold: float | None = None   # None: pipeline.render in the config
    smooth: bool = False
    realtime: bool = False
    queue: str = "auto"
    progress: bool = True
    synthetic: dict[str, Any] = field(default_factory=dict)   # SyntheticSource kwargs
    # live inputs
    loop: bool = False
    rtsp_transport: str = "tcp"
    listen: bool = False
    timeout_s: float | None = None        # silence before a source counts as dead
    camera_size: tuple[int, int] | None = None
    camera_fps: float | None = None
    # more outputs
    publish: str | None = None            # ZeroMQ results feed address
    publish_format: str = "json"
    publish_any_host: bool = False
    virtual_cam: str | None = None        # a device, "" for the first one
    show: bool = False
    results_json: str | None = None       # COCO results file (pipeline.io.results)


def make_source(opts: StreamOptions) -> Any:
    from pipeline.io.protocols import scheme
    from pipeline.io.source import (
        CameraSource,
        ImageSource,
        SyntheticSource,
        image_paths,
    )
    from pipeline.io.watchdog import Deadlines, WatchedSource

    if opts.camera is not None:
        return CameraSource(opts.camera, opts.max_frames, opts.camera_size,
                            opts.camera_fps)
    if opts.source == "synthetic":
        kwargs = {**DEMO, **opts.synthetic}
        if opts.max_frames is not None:
            kwargs["frames"] = min(opts.max_frames, kwargs.get("frames", 10**9))
        return SyntheticSource(pace=opts.realtime, **kwargs)
    if not scheme(opts.source) and image_paths(opts.source) is not None:
        return ImageSource(opts.source, opts.max_frames)
    deadlines = Deadlines()
    if opts.timeout_s is not None:
        deadlines = Deadlines(open_s=max(opts.timeout_s, deadlines.open_s),
                              read_s=opts.timeout_s)
    return WatchedSource(opts.source, opts.max_frames, pace=opts.realtime,
                         loop=opts.loop, rtsp_transport=opts.rtsp_transport,
                         listen=opts.listen, deadlines=deadlines)


def make_sinks(opts: StreamOptions, cfg: dict[str, Any] | None = None) -> list[Any]:
    """Where rendered frames (and results) go; every entry is a
    `pipeline.stages.sinks.Sink`. Stream URLs go out through PyAV as a live stream,
    paths become files (encoded as `cfg`'s `pipeline.file_encoder` says); with nothing
    asked for, the overlay goes to DEFAULT_OUTPUT."""
    from pipeline.io.feed import FeedSink
    from pipeline.io.protocols import scheme
    from pipeline.io.results import ResultsSink
    from pipeline.io.stream_out import StreamSink
    from pipeline.io.virtualcam import VirtualCamSink, WindowSink
    from pipeline.stages.sinks import FileSink

    encoder = (cfg or {}).get("pipeline", {}).get("file_encoder", {})
    sinks: list[Any] = [StreamSink(o) if scheme(o) else FileSink(o, **encoder)
                        for o in opts.outputs]
    if opts.publish:
        sinks.append(FeedSink(opts.publish, opts.publish_format,
                              opts.publish_any_host))
    if opts.virtual_cam is not None:
        sinks.append(VirtualCamSink(device=opts.virtual_cam or None))
    if opts.show:
        sinks.append(WindowSink())
    if opts.results_json:
        sinks.append(ResultsSink(opts.results_json))
    return sinks or [FileSink(DEFAULT_OUTPUT, **encoder)]


def build_stages(opts: StreamOptions, cfg: dict[str, Any], model_cfg: dict[str, Any],
                 source: Any, sinks: list[Any]) -> list[Any]:
    """source -> preprocess -> infer -> [decode] -> postprocess -> track -> render ->
    sink; decode with the native decode engine (`decode.engine`), whose inference
    stage runs the network alone."""
    from pipeline.stages.decode import Decode
    from pipeline.stages.infer import Infer, engine_for
    from pipeline.stages.postprocess import Postprocess
    from pipeline.stages.preprocess import Preprocess
    from pipeline.stages.render import Render
    from pipeline.stages.sinks import SinkStage
    from pipeline.stages.track import TrackerConfig, TrackStage

    p = cfg["pipeline"]
    native = engine_for(cfg, opts.device) == "native"
    return [
        source,
        Preprocess(int(model_cfg["input_size"]),
                   on_device=opts.device == "cuda" and opts.backend == "torch"),
        Infer(cfg, opts.checkpoint, opts.backend, opts.device),
        *([Decode(model_cfg)] if native else []),
        Postprocess(opts.device, int(p["mask_max_pixels"])),
        TrackStage(TrackerConfig(**p["track"]), p["smooth"] if opts.smooth else None),
        Render(model_cfg["model"]["taxonomy"], opts.render_mode, opts.hud,
               p["render"]["alpha"], p["render"]["tint"],
               p["render"]["keypoint_threshold"], p["render"]["regions"],
               p["render"]["display_threshold"] if opts.display_threshold is None
               else opts.display_threshold),
        SinkStage(sinks),
    ]


def preflight(source: Any, sinks: list[Any], device: str,
              backend: str = "auto") -> None:
    """Cheap checks before the network is even imported, so common mistakes fail at
    once: a local video or camera that is missing or unreadable, an output we cannot
    write or reach, a GPU or a backend's package that is not there. (Network streams
    are opened only once, by their worker.)"""
    from pipeline.io.watchdog import WatchedSource
    from pipeline.stages.infer import check_backend
    from pipeline.stages.postprocess import get_array_module

    for sink in sinks:
        sink.check()
    check_backend(backend, device)
    get_array_module(device)
    if isinstance(source, WatchedSource) and not source.is_url:
        source.open()                   # a file: is it a video at all?
        source.close()
    elif hasattr(source, "check"):
        source.check()


def run_stream(opts: StreamOptions) -> RunResult:
    """Check the cheap things, load the config and the model's config, build the
    stages, run them; then end what the checks opened here (stream relays)."""
    from configs import load_config

    sinks = make_sinks(opts, load_config(opts.config))
    try:
        return _run_stream(opts, sinks)
    finally:
        for sink in sinks:
            if hasattr(sink, "release"):
                sink.release()


def _run_stream(opts: StreamOptions, sinks: list[Any]) -> RunResult:
    from configs import load_config, taxonomy
    from pipeline.stages.infer import resolve_model

    cfg = load_config(opts.config)
    source = make_source(opts)
    preflight(source, sinks, opts.device, opts.backend)
    model_cfg = resolve_model(opts.checkpoint, cfg)
    names = taxonomy(model_cfg["model"]["taxonomy"])["classes"]
    for sink in sinks:
        if hasattr(sink, "part_names"):
            sink.part_names = names
    stages = build_stages(opts, cfg, model_cfg, source, sinks)

    def announce(info: dict[str, Any]) -> None:
        backend = (info.get("infer") or {}).get("backend", opts.backend)
        outputs = ", ".join(s.name for s in sinks)
        print(f"running: {_describe_source(opts)} -> {outputs} "
              f"({backend} backend, {opts.transport} transport); Ctrl-C stops",
              file=sys.stderr, flush=True)

    run = RunOptions(opts.transport, opts.queue, int(cfg["pipeline"]["queue_hwm"]),
                     progress=opts.progress, on_start=announce)
    return Runner(stages, run).run()


def _describe_source(opts: StreamOptions) -> str:
    return f"camera {opts.camera}" if opts.camera is not None else opts.source
