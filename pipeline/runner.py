"""The app assembly: `StreamOptions` -> source, stages and sinks -> the supervisor.

`run_pipeline` is the one function that builds and runs the pipeline: run_stream.py,
the benchmarks (bench/harness.py) and the identity evaluation (pipeline/evaluate.py)
all call it, so they run the same stages with the same queue depth
(`pipeline.queue_hwm`). The generic supervisor is pipeline/engine/supervisor.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pipeline.engine.stage import Sink
from pipeline.engine.supervisor import Runner, RunOptions, RunResult
from pipeline.options import StreamOptions

# Where the overlay goes when no output of any kind is asked for.
DEFAULT_OUTPUT = "out/overlay.mp4"
# The embedded default input (`python run_stream.py` with no arguments): four seconds
# of a small crowd, people large enough to see their parts, little clutter.
DEMO = {
    "frames": 60,
    "size": 384,
    "people": (3, 5),
    "fps": 15.0,
    "seed": 7,
    "options": {"min_height": 130, "clutter": False, "degrade": 0.3},
}

log = logging.getLogger(__name__)


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
        return CameraSource(
            opts.camera, opts.max_frames, opts.camera_size, opts.camera_fps
        )
    if opts.source == "synthetic":
        kwargs = {**DEMO, **opts.synthetic}
        if opts.max_frames is not None:
            kwargs["frames"] = min(opts.max_frames, kwargs.get("frames", 10**9))
        return SyntheticSource(pace=opts.realtime, **kwargs)
    if not scheme(opts.source) and image_paths(opts.source) is not None:
        return ImageSource(opts.source, opts.max_frames)
    deadlines = Deadlines()
    if opts.timeout_s is not None:
        deadlines = Deadlines(
            open_s=max(opts.timeout_s, deadlines.open_s), read_s=opts.timeout_s
        )
    return WatchedSource(
        opts.source,
        opts.max_frames,
        pace=opts.realtime,
        loop=opts.loop,
        rtsp_transport=opts.rtsp_transport,
        listen=opts.listen,
        deadlines=deadlines,
    )


def make_sinks(opts: StreamOptions, cfg: dict[str, Any]) -> list[Sink]:
    """Where rendered frames (and results) go; every entry is a
    `pipeline.engine.stage.Sink`. Stream URLs go out through PyAV as a live stream,
    paths become files (encoded as `cfg`'s `pipeline.file_encoder` says); with nothing
    asked for, the overlay goes to DEFAULT_OUTPUT."""
    from pipeline.io.feed import FeedSink
    from pipeline.io.protocols import scheme
    from pipeline.io.results import ResultsSink
    from pipeline.io.stream_out import StreamSink
    from pipeline.io.video_file import FileSink
    from pipeline.io.virtualcam import VirtualCamSink, WindowSink

    encoder = cfg["pipeline"]["file_encoder"]
    sinks: list[Sink] = [
        StreamSink(o) if scheme(o) else FileSink(o, **encoder) for o in opts.outputs
    ]
    if opts.publish:
        sinks.append(FeedSink(opts.publish, opts.publish_format, opts.publish_any_host))
    if opts.virtual_cam is not None:
        sinks.append(VirtualCamSink(device=opts.virtual_cam or None))
    if opts.show:
        sinks.append(WindowSink())
    if opts.results_json:
        sinks.append(ResultsSink(opts.results_json))
    return sinks or [FileSink(DEFAULT_OUTPUT, **encoder)]


def build_stages(
    opts: StreamOptions,
    cfg: dict[str, Any],
    model_cfg: dict[str, Any],
    source: Any,
    sinks: list[Sink],
) -> list[Any]:
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
        Preprocess(
            int(model_cfg["input_size"]),
            on_device=opts.device == "cuda" and opts.backend == "torch",
        ),
        Infer(
            cfg,
            opts.checkpoint,
            opts.backend,
            opts.device,
            input_size=opts.input_size,
            decode=model_cfg["decode"],
        ),
        *([Decode(model_cfg)] if native else []),
        Postprocess(opts.device, int(p["mask_max_pixels"])),
        TrackStage(TrackerConfig(**p["track"]), p["smooth"] if opts.smooth else None),
        Render(
            model_cfg["model"]["taxonomy"],
            opts.render_mode,
            opts.hud,
            p["render"]["alpha"],
            p["render"]["tint"],
            p["render"]["keypoint_threshold"],
            p["render"]["regions"],
            p["render"]["display_threshold"]
            if opts.display_threshold is None
            else opts.display_threshold,
        ),
        SinkStage(sinks),
    ]


def preflight(
    source: Any, sinks: list[Sink], device: str, backend: str = "auto"
) -> None:
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
        source.open()  # a file: is it a video at all?
        source.close()
    else:
        source.check()


def run_pipeline(
    opts: StreamOptions,
    source: Any = None,
    sinks: list[Sink] | None = None,
    on_start: Callable[[dict[str, Any]], None] | None = None,
) -> RunResult:
    """Build the pipeline `opts` asks for and run it: the one assembly.

    source: a source of the caller's (a benchmark's, the synthetic ground truth's);
    None builds the one `opts` names. sinks: the caller's sinks; None builds those
    `opts` names. on_start: called once every stage is ready, with what they said.
    Cheap checks run first (outputs, backend, device, a local file), then the model's
    config is read, the stages built and the supervisor run; what the checks opened
    (stream relays) is ended at the end.
    """
    from configs import load_config, load_overrides, taxonomy
    from configs.cli import still_input_size
    from pipeline.stages.infer import resolve_model

    cfg = load_config(opts.config)
    sinks = make_sinks(opts, cfg) if sinks is None else sinks
    try:
        source = make_source(opts) if source is None else source
        preflight(source, sinks, opts.device, opts.backend)
        model_cfg = resolve_model(
            opts.checkpoint,
            cfg,
            opts.input_size,
            load_overrides(opts.config).get("decode"),
        )
        if opts.input_size is None and getattr(source, "still", False):
            size = still_input_size(model_cfg, cfg["pipeline"])
            opts = replace(opts, input_size=size)
            model_cfg = {**model_cfg, "input_size": size}
        names = taxonomy(model_cfg["model"]["taxonomy"])["classes"]
        for sink in sinks:
            sink.part_names = names
        stages = build_stages(opts, cfg, model_cfg, source, sinks)
        run = RunOptions(
            int(cfg["pipeline"]["queue_hwm"]),
            opts.transport,
            opts.queue,
            progress=opts.progress,
            on_start=on_start,
        )
        return Runner(stages, run).run()
    finally:
        for sink in sinks:
            sink.release()


def run_stream(opts: StreamOptions) -> RunResult:
    """run_stream.py's run: `run_pipeline`, saying what runs once it starts."""
    from configs import load_config

    sinks = make_sinks(opts, load_config(opts.config))

    def announce(info: dict[str, Any]) -> None:
        infer = info.get("infer") or {}
        outputs = ", ".join(s.name for s in sinks)
        log.info(
            "running: %s -> %s (%s backend, %s px, %s transport); Ctrl-C stops",
            _describe_source(opts),
            outputs,
            infer.get("backend", opts.backend),
            infer.get("input_size", "?"),
            opts.transport,
        )

    return run_pipeline(opts, sinks=sinks, on_start=announce)


def _describe_source(opts: StreamOptions) -> str:
    return f"camera {opts.camera}" if opts.camera is not None else opts.source
