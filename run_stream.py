"""PartStream: per-person body-part masks, skeletons and track ids on video.

Run with no arguments to see it work: an animated synthetic crowd goes through the
shipped model and the overlay is written to out/overlay.mp4.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

EXAMPLES = """\
examples:
  python run_stream.py                    # synthetic crowd -> out/overlay.mp4
  python run_stream.py --source clip.mp4 --output out/clip.mp4
  python run_stream.py --camera 0 --output out/cam.mkv --max-frames 300
  python run_stream.py --source rtsp://192.168.1.20/stream --render-mode masks
  python run_stream.py --camera 0 --output rtmp://127.0.0.1/live/ps \\
      --publish tcp://127.0.0.1:5555      # to OBS / a server, results to your app
  python run_stream.py --listen --source rtmp://127.0.0.1:1935/live/in --show
  python run_stream.py --source clip.mp4 --transport ipc --stats-json out/stats.json
  python run_stream.py --source photos/ --results-json out/results.json

Every stage (decode, preprocess, inference, post-processing, tracking, rendering,
output) runs in its own worker; --transport ipc or tcp puts each in its own process.
Files are transcoded frame by frame; cameras and streams drop stale frames instead of
falling behind (see the "dropped" count in the summary); a stream that stops is
reconnected with backoff while the pipeline keeps running. Ctrl-C (or SIGTERM) stops
cleanly, exit code 130 (SIGTERM: 143), and the output file keeps every frame processed
so far; press it twice to stop at once. Output files are moved into place only once
they hold a frame: a run that fails before that leaves an earlier file untouched.
OBS set-up: docs/OBS.md; results feed schema: docs/FEED.md.
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python run_stream.py",
        description="Instance-aware human parsing on video: for every person, "
        "body-part masks, a 17-keypoint skeleton and a track id, drawn over the video.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    io = p.add_argument_group("input and output")
    io.add_argument("--source", default="synthetic", metavar="PATH|URL|synthetic",
                    help="video file, stream URL (rtsp://, rtmp://, http://, "
                    "udp://...), an image, a folder of images or a glob of them "
                    "('photos/*.jpg', quoted), or 'synthetic' for an animated "
                    "synthetic crowd (default)")
    io.add_argument("--camera", type=int, metavar="N",
                    help="read camera number N instead of --source (0 = first camera)")
    io.add_argument("--output", action="append", metavar="PATH|URL",
                    help="where the overlay goes; repeat for several: a file (.mp4, "
                    ".mkv, .mov) or a stream (rtmp://, udp://, tcp:// as MPEG-TS, "
                    "srt:// if FFmpeg has it); default out/overlay.mp4 unless "
                    "--publish, --virtual-cam, --show or --results-json is given")
    io.add_argument("--max-frames", type=int, metavar="N",
                    help="stop after N frames (default: the whole input; the synthetic "
                    "crowd is 60 frames)")
    io.add_argument("--stats-json", metavar="PATH",
                    help="also write the latency/FPS summary as JSON")
    io.add_argument("--results-json", metavar="PATH",
                    help="write every person of every frame as COCO results "
                    "(keypoints, score, box, RLE mask; part and person maps as PNGs "
                    "in PATH's folder <stem>_maps/), for pycocotools and any COCO "
                    "tool; with only this output no video is written")
    io.add_argument("--realtime", action="store_true",
                    help="play a file or the synthetic crowd at its frame rate, like a "
                    "camera: stale frames are dropped instead of queued")
    io.add_argument("--loop", action="store_true",
                    help="play a file again and again (with --max-frames to stop)")
    live = p.add_argument_group("cameras and streams")
    live.add_argument("--camera-size", metavar="WxH", type=_size,
                      help="ask the camera for this resolution, e.g. 1280x720")
    live.add_argument("--camera-fps", type=float, metavar="FPS",
                      help="ask the camera for this frame rate")
    live.add_argument("--rtsp-transport", default="tcp", choices=("tcp", "udp"),
                      help="RTSP over TCP (default, survives packet loss) or UDP")
    live.add_argument("--listen", action="store_true",
                      help="be the server for --source rtmp:// or rtsp:// and wait "
                      "for a publisher (OBS, ffmpeg, a camera) to push to it")
    live.add_argument("--timeout", type=float, metavar="S",
                      help="seconds without a frame before a stream counts as dead "
                      "and is reconnected (default 5)")
    live.add_argument("--publish", metavar="ADDRESS",
                      help="publish per-frame results (track ids, boxes, keypoints, "
                      "part masks as RLE) on a ZeroMQ PUB socket, e.g. "
                      "tcp://127.0.0.1:5555 (schema: docs/FEED.md)")
    live.add_argument("--publish-format", default="json", choices=("json", "msgpack"))
    live.add_argument("--publish-any-host", action="store_true",
                      help="allow --publish on an address other than loopback")
    live.add_argument("--virtual-cam", nargs="?", const="", metavar="DEVICE",
                      help="send the overlay to a virtual camera (pyvirtualcam; "
                      "v4l2loopback on Linux, e.g. /dev/video10; default: the first "
                      "one) for OBS or video calls")
    live.add_argument("--show", action="store_true",
                      help="show the overlay in a window (needs a display)")
    model = p.add_argument_group("model")
    model.add_argument("--checkpoint", metavar="PATH",
                       help="trained model (default: nets/weights/default.pt)")
    model.add_argument("--config", metavar="PATH",
                       help="config file with settings that differ from "
                       "configs/default.yaml")
    model.add_argument("--backend", default="auto",
                       choices=("auto", "torch", "onnxruntime", "openvino", "tensorrt"),
                       help="inference engine (default: auto = ONNX Runtime on the "
                       "CPU, TensorRT with --device cuda)")
    model.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                       help="cuda needs an NVIDIA GPU (and CuPy for post-processing)")
    look = p.add_argument_group("what is drawn")
    look.add_argument("--render-mode", default="overlay",
                      choices=("overlay", "masks", "regions"),
                      help="overlay: parts, outlines, skeletons and ids over the "
                      "video; masks: coloured part masks only (alpha in .mkv/.mov); "
                      "regions: per-person try-on regions (with alpha)")
    look.add_argument("--hud", action=argparse.BooleanOptionalAction, default=True,
                      help="FPS, latency and people count in the corner")
    look.add_argument("--display-threshold", type=float, metavar="SCORE",
                      help="draw and count only people scoring at least this "
                      "(default 0.1, pipeline.render.display_threshold); the decode "
                      "keeps weaker ones (decode.person_threshold) for tracking and "
                      "the results feed")
    look.add_argument("--smooth", action="store_true",
                      help="smooth keypoints over time (One-Euro filter), for AR")
    run = p.add_argument_group("how it runs")
    run.add_argument("--transport", default="inproc", choices=("inproc", "ipc", "tcp"),
                     help="inproc: stages are threads of one process (default); ipc / "
                     "tcp: each stage is its own process, linked by ZeroMQ sockets")
    run.add_argument("--queue", default="auto", choices=("auto", "latest", "all"),
                     help="auto: keep every frame of files, latest frame wins for "
                     "cameras and streams; or force one")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.max_frames is not None and args.max_frames < 1:
        p.error("--max-frames must be at least 1")
    if args.timeout is not None and args.timeout <= 0:
        p.error("--timeout must be positive")
    return args


def _size(text: str) -> tuple[int, int]:
    """'1280x720' -> (1280, 720)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not WIDTHxHEIGHT") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not WIDTHxHEIGHT")
    return width, height


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # OpenMP threads (eager torch) sleep when idle instead of spinning on the cores
    # the other stages need (issue 14: loading took 820 ms spinning, 107 passive).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # Imported after parsing so --help is instant.
    from configs import ConfigError
    from configs.errors import StageError
    from pipeline.runner import Terminated, handle_signals

    restore = handle_signals()      # Ctrl-C and SIGTERM, even under nohup
    try:
        return _run(args)
    except (ConfigError, StageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        print("interrupted before the pipeline started", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        restore()


def _run(args: argparse.Namespace) -> int:
    """Run the pipeline and report; the exit code (130 / 143: stopped by SIGINT /
    SIGTERM, the outputs finalised)."""
    from pipeline.engine.output_files import check_writable
    from pipeline.engine.telemetry import format_summary, write_json
    from pipeline.runner import StreamOptions, run_stream

    if args.stats_json:                 # before the model loads, not after the run
        check_writable(Path(args.stats_json))
    opts = StreamOptions(
        source=args.source, camera=args.camera, outputs=args.output or [],
        backend=args.backend, device=args.device, config=args.config,
        checkpoint=args.checkpoint, max_frames=args.max_frames,
        transport=args.transport, render_mode=args.render_mode, hud=args.hud,
        smooth=args.smooth, realtime=args.realtime, queue=args.queue,
        display_threshold=args.display_threshold,
        progress=not args.quiet and sys.stderr.isatty(), loop=args.loop,
        rtsp_transport=args.rtsp_transport, listen=args.listen,
        timeout_s=args.timeout, camera_size=args.camera_size,
        camera_fps=args.camera_fps, publish=args.publish,
        publish_format=args.publish_format, publish_any_host=args.publish_any_host,
        virtual_cam=args.virtual_cam, show=args.show, results_json=args.results_json,
    )
    result = run_stream(opts)
    if result.errors:                  # the first is the cause, the rest follow from it
        print(f"error: {result.errors[0]}", file=sys.stderr)
    if result.stats is not None and result.stats["frames"]:
        print(format_summary(result.stats))
        if args.stats_json:
            write_json(result.stats, args.stats_json)
    source = result.reports.get("source") or {}
    if source.get("source_lost"):
        print(f"source lost {source['source_lost']} time(s), reconnected "
              f"{source.get('reconnects', 0)} time(s)")
    for out in (result.reports.get("sink") or {}).get("outputs", []):
        if out["frames"]:
            print(f"wrote {out['path']} ({out['frames']} frames)")
    if result.errors:
        return 1
    return 128 + (result.signal or signal.SIGINT) if result.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
