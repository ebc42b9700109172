"""Memory: resident set size of the pipeline over a long run on a looped clip.

    python -m bench.memory [--quick] --json OUT [--doc] [--clip PATH] [--seconds S]

The pipeline `run_stream.py` runs (threads in this process, the default transport)
transcodes a clip replayed over and over by the product's looping file source for S
seconds (600; --quick 60), every frame kept, as fast as it goes. A sampler thread
reads this process's RSS twice a second from the moment the source starts (model
loading is over by then).
Growth compares the median RSS of the last tenth of the run with that of the second
tenth (the first is start-up: model load, first inferences, allocator warm-up);
the goal is under 5%.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    BenchError,
    machine,
    machine_line,
    main_guard,
    parse_and_run,
    parser,
)
from bench.harness import run_pipeline
from bench.report import PLOTS, new_plot, save_plot, table, update_section
from bench.sources import TimedSource
from pipeline.io.watchdog import WatchedSource
from pipeline.options import add_model_arguments

DEFAULT_CLIP = (
    Path(__file__).resolve().parent.parent.parent
    / "shared"
    / "data"
    / "video"
    / "vtest.avi"
)
PAGE = os.sysconf("SC_PAGE_SIZE")


def clip_frames(path: Path) -> int:
    """Frames in one pass of the clip (decoded and counted: headers may not say)."""
    import av

    with av.open(str(path)) as container:
        return max(1, sum(1 for _ in container.decode(video=0)))


def rss_mb() -> float:
    """This process's resident set size in MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def peak_rss_mb() -> float:
    """The kernel's high-water mark of this process's RSS (VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    """Samples RSS every `period` seconds until stopped: [(time.time(), MiB), ...]."""

    def __init__(self, period: float = 0.5) -> None:
        super().__init__(name="bench-rss", daemon=True)
        self.period = period
        self.samples: list[tuple[float, float]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.samples.append((time.time(), round(rss_mb(), 2)))
            self.stopped.wait(self.period)

    def stop(self) -> list[tuple[float, float]]:
        self.stopped.set()
        self.join()
        return self.samples


def growth(samples: list[tuple[float, float]]) -> tuple[float, float, float]:
    """(early MiB, late MiB, relative growth) from the second and last tenths."""
    values = np.array([mb for _, mb in samples])
    tenth = max(1, len(values) // 10)
    early = float(np.median(values[tenth : 2 * tenth]))
    late = float(np.median(values[-tenth:]))
    return early, late, (late - early) / early


def run(args: Any) -> dict[str, Any]:
    clip = Path(args.clip)
    if not clip.is_file():
        raise BenchError(f"no such clip: {clip}")
    info = machine()
    seconds = args.seconds or (60.0 if args.quick else 600.0)
    sampler = Sampler()
    sampler.start()
    source = TimedSource(WatchedSource(str(clip), loop=True), seconds)
    try:
        done = run_pipeline(
            source,
            backend=args.backend,
            config=args.config,
            checkpoint=args.checkpoint,
            queue="all",
        )
    finally:
        samples = sampler.stop()
    started = (done.reports.get("source") or {}).get("started", 0.0)
    samples = [(round(t - started, 2), mb) for t, mb in samples if t >= started]
    if len(samples) < 10:
        raise BenchError("run too short to judge memory (need at least 5 s)")
    early, late, rel = growth(samples)
    return {
        "machine": info,
        "clip": clip.name,
        "seconds": seconds,
        "backend": args.backend,
        "frames": done.stats.get("frames", 0),
        "fps": round(float(done.stats.get("fps", 0.0)), 2),
        "loops": done.stats.get("frames", 0) // clip_frames(clip),
        "early_mb": round(early, 1),
        "late_mb": round(late, 1),
        "growth": round(rel, 4),
        "peak_mb": round(peak_rss_mb(), 1),
        "samples": samples,
    }


def plot(record: dict[str, Any], path: Path) -> None:
    t, mb = zip(*record["samples"], strict=True)
    fig, ax = new_plot(3.6)
    ax.plot(t, mb)
    ax.set_xlabel("seconds since the source started")
    ax.set_ylabel("RSS (MiB)")
    ax.set_title(
        f"Pipeline RSS, {record['clip']} looped, growth {100 * record['growth']:+.1f}%"
    )
    save_plot(fig, ax, path, legend=False)


def doc_section(record: dict[str, Any]) -> str:
    row = [
        record["clip"],
        record["seconds"],
        record["frames"],
        record["loops"],
        record["fps"],
        record["early_mb"],
        record["late_mb"],
        f"{100 * record['growth']:+.2f}%",
        record["peak_mb"],
    ]
    return "\n\n".join(
        [
            machine_line(record["machine"]),
            f"Backend {record['backend']}; threads transport; every frame kept "
            "(transcode mode) into an H.264 file. RSS of the whole process (model, "
            "pipeline, encoder), sampled twice a second.",
            table(
                [
                    "clip",
                    "seconds",
                    "frames",
                    "loops",
                    "FPS",
                    "RSS 2nd tenth MiB",
                    "RSS last tenth MiB",
                    "growth",
                    "peak MiB",
                ],
                [row],
            ),
            "![memory](bench/memory.png)",
        ]
    )


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--clip", default=str(DEFAULT_CLIP), help="video file to loop")
    ap.add_argument(
        "--seconds", type=float, help="length of the run (default 600, quick 60)"
    )
    add_model_arguments(ap, device=False)
    args, record = parse_and_run(ap, run)
    if args.doc:
        plot(record, PLOTS / "memory.png")
        update_section("memory", doc_section(record))
    print(
        f"{record['frames']} frames in {record['seconds']:.0f} s; RSS "
        f"{record['early_mb']} -> {record['late_mb']} MiB "
        f"({100 * record['growth']:+.2f}%), peak {record['peak_mb']} MiB"
    )


if __name__ == "__main__":
    main_guard(main)
