"""PartStream: per-person body-part masks, skeletons and track ids on video.

Run with no arguments to see it work: an animated synthetic crowd goes through the
shipped model and the overlay is written to out/overlay.mp4.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from pipeline.options import add_arguments

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

log = logging.getLogger("run_stream")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python run_stream.py",
        description="Instance-aware human parsing on video: for every person, "
        "body-part masks, a 17-keypoint skeleton and a track id, drawn over the video.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    args = p.parse_args(argv)
    if args.max_frames is not None and args.max_frames < 1:
        p.error("--max-frames must be at least 1")
    if args.timeout_s is not None and args.timeout_s <= 0:
        p.error("--timeout must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # OpenMP threads (eager torch) sleep when idle instead of spinning on the cores
    # the other stages need (issue 14: loading took 820 ms spinning, 107 passive).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # Imported after parsing so --help is instant.
    from configs import ConfigError
    from configs.cli import setup_logging
    from configs.errors import StageError
    from pipeline.engine.supervisor import Terminated, handle_signals

    setup_logging()
    restore = handle_signals()  # Ctrl-C and SIGTERM, even under nohup
    try:
        return _run(args)
    except (ConfigError, StageError) as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt as exc:
        log.info("interrupted before the pipeline started")
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        restore()


def _run(args: argparse.Namespace) -> int:
    """Run the pipeline and report; the exit code (130 / 143: stopped by SIGINT /
    SIGTERM, the outputs finalised)."""
    from pipeline.engine.output_files import check_writable
    from pipeline.engine.telemetry import format_summary, write_json
    from pipeline.options import StreamOptions
    from pipeline.runner import run_stream

    if args.stats_json:  # before the model loads, not after the run
        check_writable(Path(args.stats_json))
    opts = StreamOptions.from_args(args, progress=args.progress and sys.stderr.isatty())
    result = run_stream(opts)
    if result.errors:  # the first is the cause, the rest follow from it
        log.error("%s", result.errors[0])
    if result.stats is not None and result.stats["frames"]:
        print(format_summary(result.stats))
        if args.stats_json:
            write_json(result.stats, args.stats_json)
    source = result.reports.get("source") or {}
    if source.get("source_lost"):
        print(
            f"source lost {source['source_lost']} time(s), reconnected "
            f"{source.get('reconnects', 0)} time(s)"
        )
    for out in (result.reports.get("sink") or {}).get("outputs", []):
        if out["frames"]:
            print(f"wrote {out['path']} ({out['frames']} frames)")
    if result.errors:
        return 1
    return 128 + (result.signal or signal.SIGINT) if result.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
