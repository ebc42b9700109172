"""The streaming pipeline's options, defined once: every flag `run_stream.py` takes is
declared here (`add_arguments`) and `StreamOptions`' defaults are read from that
declaration, so run_stream.py, the benchmarks (bench/harness.py) and
pipeline/evaluate.py build the same options and cannot drift (a test holds the
dataclass and the flags to the same names). Settings that are not flags (queue depth,
tracker, render look) come from the config's `pipeline` section
(configs/default.yaml), read by the assembly (pipeline/runner.py).

Cheap to import (no torch, no PyAV): `run_stream.py --help` stays instant.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields
from typing import Any

from configs import ConfigError
from configs.cli import add_checkpoint, check_input_size
from configs.constants import BACKENDS

MODES = ("overlay", "masks", "regions")  # pipeline.stages.render.Render's modes
TRANSPORTS = ("inproc", "ipc", "tcp")  # pipeline.engine.transport.Endpoints
QUEUES = ("auto", "latest", "all")  # pipeline.engine.supervisor.link_policies


def add_model_arguments(
    p: argparse.ArgumentParser, device: bool = True, input_size: bool = False
) -> None:
    """The "model" group: --checkpoint, --config, --backend (and --device, and
    --input-size for run_stream.py), shared by run_stream.py, the pipeline benchmarks
    and pipeline/evaluate.py."""
    model = p.add_argument_group("model")
    add_checkpoint(model)
    model.add_argument(
        "--config",
        metavar="PATH",
        help="config file with settings that differ from configs/default.yaml; with "
        "trained weights, its decode settings are laid over the checkpoint's",
    )
    if input_size:
        model.add_argument(
            "--input-size",
            type=_input_size,
            metavar="PX",
            help="run the network at this square input, a multiple of 32 (default: "
            "the checkpoint's, 256 for the shipped model, and pipeline.still_scale "
            "times it for still images: 384; larger finds smaller people and costs "
            "about (PX / 256)^2 the time: docs/MODEL.md)",
        )
    model.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="inference engine (default: auto = OpenVINO on the CPU with the native "
        "decode, ONNX Runtime with the graph decode; TensorRT with --device cuda)",
    )
    if device:
        model.add_argument(
            "--device",
            default="cpu",
            choices=("cpu", "cuda"),
            help="cuda needs an NVIDIA GPU (and CuPy for post-processing)",
        )


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Every flag of the pipeline, in --help's groups."""
    io = p.add_argument_group("input and output")
    io.add_argument(
        "--source",
        default="synthetic",
        metavar="PATH|URL|synthetic",
        help="video file, stream URL (rtsp://, rtmp://, http://, "
        "udp://...), an image, a folder of images or a glob of them "
        "('photos/*.jpg', quoted), or 'synthetic' for an animated "
        "synthetic crowd (default)",
    )
    io.add_argument(
        "--camera",
        type=int,
        metavar="N",
        help="read camera number N instead of --source (0 = first camera)",
    )
    io.add_argument(
        "--output",
        action="append",
        metavar="PATH|URL",
        dest="outputs",
        help="where the overlay goes; repeat for several: a file (.mp4, "
        ".mkv, .mov) or a stream (rtmp://, udp://, tcp:// as MPEG-TS, "
        "srt:// if FFmpeg has it); default out/overlay.mp4 unless "
        "--publish, --virtual-cam, --show or --results-json is given",
    )
    io.add_argument(
        "--max-frames",
        type=int,
        metavar="N",
        help="stop after N frames (default: the whole input; the synthetic "
        "crowd is 60 frames)",
    )
    io.add_argument(
        "--stats-json",
        metavar="PATH",
        help="also write the latency/FPS summary as JSON",
    )
    io.add_argument(
        "--results-json",
        metavar="PATH",
        help="write every person of every frame as COCO results "
        "(keypoints, score, box, RLE mask; part and person maps as PNGs "
        "in PATH's folder <stem>_maps/), for pycocotools and any COCO "
        "tool; with only this output no video is written",
    )
    io.add_argument(
        "--realtime",
        action="store_true",
        help="play a file or the synthetic crowd at its frame rate, like a "
        "camera: stale frames are dropped instead of queued",
    )
    io.add_argument(
        "--loop",
        action="store_true",
        help="play a file again and again (with --max-frames to stop)",
    )
    live = p.add_argument_group("cameras and streams")
    live.add_argument(
        "--camera-size",
        metavar="WxH",
        type=_size,
        help="ask the camera for this resolution, e.g. 1280x720",
    )
    live.add_argument(
        "--camera-fps",
        type=float,
        metavar="FPS",
        help="ask the camera for this frame rate",
    )
    live.add_argument(
        "--rtsp-transport",
        default="tcp",
        choices=("tcp", "udp"),
        help="RTSP over TCP (default, survives packet loss) or UDP",
    )
    live.add_argument(
        "--listen",
        action="store_true",
        help="be the server for --source rtmp:// or rtsp:// and wait "
        "for a publisher (OBS, ffmpeg, a camera) to push to it",
    )
    live.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        dest="timeout_s",
        help="seconds without a frame before a stream counts as dead "
        "and is reconnected (default 5)",
    )
    live.add_argument(
        "--publish",
        metavar="ADDRESS",
        help="publish per-frame results (track ids, boxes, keypoints, "
        "part masks as RLE) on a ZeroMQ PUB socket, e.g. "
        "tcp://127.0.0.1:5555 (schema: docs/FEED.md)",
    )
    live.add_argument("--publish-format", default="json", choices=("json", "msgpack"))
    live.add_argument(
        "--publish-any-host",
        action="store_true",
        help="allow --publish on an address other than loopback",
    )
    live.add_argument(
        "--virtual-cam",
        nargs="?",
        const="",
        metavar="DEVICE",
        help="send the overlay to a virtual camera (pyvirtualcam; "
        "v4l2loopback on Linux, e.g. /dev/video10; default: the first "
        "one) for OBS or video calls",
    )
    live.add_argument(
        "--show",
        action="store_true",
        help="show the overlay in a window (needs a display)",
    )
    add_model_arguments(p, input_size=True)
    look = p.add_argument_group("what is drawn")
    look.add_argument(
        "--render-mode",
        default="overlay",
        choices=MODES,
        help="overlay: parts, outlines, skeletons and ids over the "
        "video; masks: coloured part masks only (alpha in .mkv/.mov); "
        "regions: per-person try-on regions (with alpha)",
    )
    look.add_argument(
        "--hud",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="FPS, latency and people count in the corner",
    )
    look.add_argument(
        "--display-threshold",
        type=float,
        metavar="SCORE",
        help="draw and count only people scoring at least this "
        "(default 0.1, pipeline.render.display_threshold); the decode "
        "keeps weaker ones (decode.person_threshold) for tracking and "
        "the results feed",
    )
    look.add_argument(
        "--smooth",
        action="store_true",
        help="smooth keypoints over time (One-Euro filter), for AR",
    )
    run = p.add_argument_group("how it runs")
    run.add_argument(
        "--transport",
        default="inproc",
        choices=TRANSPORTS,
        help="inproc: stages are threads of one process (default); ipc / "
        "tcp: each stage is its own process, linked by ZeroMQ sockets",
    )
    run.add_argument(
        "--queue",
        default="auto",
        choices=QUEUES,
        help="auto: keep every frame of files, latest frame wins for "
        "cameras and streams; or force one",
    )
    run.add_argument(
        "--quiet", action="store_false", dest="progress", help="no progress bar"
    )


def _size(text: str) -> tuple[int, int]:
    """'1280x720' -> (1280, 720)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not WIDTHxHEIGHT") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not WIDTHxHEIGHT")
    return width, height


def _input_size(text: str) -> int:
    """`configs.cli.check_input_size` as an argparse type (a usage error, exit 2)."""
    try:
        return check_input_size(int(text))
    except (ValueError, ConfigError) as exc:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a positive multiple of 32"
        ) from exc


def _defaults() -> dict[str, Any]:
    p = argparse.ArgumentParser(add_help=False)
    add_arguments(p)
    return vars(p.parse_args([]))


_D = _defaults()


@dataclass
class StreamOptions:
    """What a run asks for (run_stream.py --help): one field per flag, defaults from
    the flag declarations above, plus `synthetic` (SyntheticSource settings)."""

    source: str = _D["source"]
    camera: int | None = _D["camera"]
    outputs: list[str] = field(default_factory=list)  # none given: DEFAULT_OUTPUT
    max_frames: int | None = _D["max_frames"]
    results_json: str | None = _D["results_json"]  # COCO results (pipeline.io.results)
    realtime: bool = _D["realtime"]
    loop: bool = _D["loop"]
    camera_size: tuple[int, int] | None = _D["camera_size"]
    camera_fps: float | None = _D["camera_fps"]
    rtsp_transport: str = _D["rtsp_transport"]
    listen: bool = _D["listen"]
    timeout_s: float | None = _D["timeout_s"]  # silence before a source counts as dead
    publish: str | None = _D["publish"]  # ZeroMQ results feed address
    publish_format: str = _D["publish_format"]
    publish_any_host: bool = _D["publish_any_host"]
    virtual_cam: str | None = _D["virtual_cam"]  # a device, "" for the first one
    show: bool = _D["show"]
    checkpoint: str | None = _D["checkpoint"]
    config: str | None = _D["config"]
    input_size: int | None = _D["input_size"]  # None: the checkpoint's
    backend: str = _D["backend"]
    device: str = _D["device"]
    render_mode: str = _D["render_mode"]
    hud: bool = _D["hud"]
    display_threshold: float | None = _D["display_threshold"]  # None: the config's
    smooth: bool = _D["smooth"]
    transport: str = _D["transport"]
    queue: str = _D["queue"]
    progress: bool = _D["progress"]
    synthetic: dict[str, Any] = field(default_factory=dict)  # SyntheticSource kwargs

    @classmethod
    def from_args(cls, args: argparse.Namespace, **overrides: Any) -> StreamOptions:
        """The options of parsed flags (flags run_stream.py keeps are left out)."""
        values = {
            f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)
        }
        values["outputs"] = values.get("outputs") or []
        return cls(**{**values, **overrides})
