"""Per-frame timing collected where frames leave the pipeline, summarised at exit.

Everything is read from the frame headers (capture time, per-stage milliseconds,
cumulative drops), so the recorder works the same whether the stages ran as threads or
as processes on other machines.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.engine.messages import Message


class Telemetry:
    """Accumulates what the last stage sees and turns it into the stats record."""

    def __init__(self) -> None:
        self.frames = 0
        self.dropped = 0
        self.latency_ms: list[float] = []
        self.stage_ms: dict[str, list[float]] = defaultdict(list)
        self.processing_ms: list[float] = []  # per frame: the stages' own times
        self.queue_ms: list[float] = []  # per frame: latency spent waiting
        self.people: list[int] = []
        self.people_threshold: float | None = None
        self.first_capture: float | None = None
        self.last_output: float | None = None

    def observe(self, msg: Message, now: float | None = None) -> None:
        """Record one frame that has just been written out."""
        now = time.time() if now is None else now
        head = msg.header
        self.frames += 1
        self.dropped = max(self.dropped, int(head.get("dropped", 0)))
        latency = 1000.0 * (now - head["capture_ts"])
        self.latency_ms.append(latency)
        processing = 0.0
        for name, ms in head.get("stage_ms", {}).items():
            self.stage_ms[name].append(float(ms))
            processing += float(ms)
        self.processing_ms.append(processing)
        self.queue_ms.append(max(0.0, latency - processing))
        scores = None if msg.people is None else msg.people.scores
        shown = head.get("people_shown")  # the overlay's count (pipeline.render)
        self.people.append(
            shown if shown is not None else 0 if scores is None else len(scores)
        )
        self.people_threshold = head.get("display_threshold")
        if self.first_capture is None:
            self.first_capture = head["capture_ts"]
        self.last_output = now

    def end(self, eof: Message) -> None:
        """The end-of-stream marker carries drops that happened after the last frame."""
        self.dropped = max(self.dropped, int(eof.header.get("dropped", 0)))

    def summary(self) -> dict[str, Any]:
        """`{"frames", "dropped", "fps", "latency_ms", "stages", "people_mean"}`, and
        the latency split into `processing_ms` (the sum of a frame's stage times) and
        `queue_ms` (the rest: waiting in queues); `people_threshold` is the display
        threshold the people were counted at (the overlay's count)."""
        span = (self.last_output or 0.0) - (self.first_capture or 0.0)
        return {
            "frames": self.frames,
            "dropped": self.dropped,
            "fps": self.frames / span if self.frames and span > 0 else 0.0,
            "latency_ms": _percentiles(self.latency_ms, (50, 95, 99)),
            "stages": {k: _percentiles(v, (50, 99)) for k, v in self.stage_ms.items()},
            "people_mean": float(np.mean(self.people)) if self.people else 0.0,
            "people_threshold": self.people_threshold,
            "processing_ms": _percentiles(self.processing_ms, (50, 95, 99)),
            "queue_ms": _percentiles(self.queue_ms, (50, 95, 99)),
        }


def _percentiles(values: list[float], qs: tuple[int, ...]) -> dict[str, float]:
    if not values:
        return {f"p{q}": 0.0 for q in qs}
    got = np.percentile(np.asarray(values), qs)
    return {f"p{q}": float(v) for q, v in zip(qs, got, strict=True)}


def format_summary(stats: dict[str, Any]) -> str:
    """A few human-readable lines for the terminal."""
    lat, work, wait = stats["latency_ms"], stats["processing_ms"], stats["queue_ms"]
    shown = stats.get("people_threshold")
    counted = f" (score >= {shown:g}, as drawn)" if shown is not None else ""
    lines = [
        f"frames {stats['frames']}  dropped {stats['dropped']}  "
        f"fps {stats['fps']:.1f}  people/frame {stats['people_mean']:.2f}{counted}",
        f"capture-to-output latency ms: p50 {lat['p50']:.1f}  p95 {lat['p95']:.1f}  "
        f"p99 {lat['p99']:.1f}",
        f"  = processing (sum of stages) p50 {work['p50']:.1f}  p99 {work['p99']:.1f}"
        f"  + waiting in queues p50 {wait['p50']:.1f}  p99 {wait['p99']:.1f}",
    ]
    if wait["p50"] > work["p50"]:
        lines.append(
            "  (frames waited behind the slowest stage: a file or the "
            "synthetic crowd is read faster than it is processed; --realtime "
            "plays it at its frame rate, as a camera, for the live latency)"
        )
    lines += [
        "stage ms (p50 / p99): "
        + "  ".join(
            f"{k} {v['p50']:.1f}/{v['p99']:.1f}" for k, v in stats["stages"].items()
        ),
    ]
    return "\n".join(lines)


def write_json(stats: dict[str, Any], path: str | Path) -> None:
    from pipeline.engine.output_files import write_text

    write_text(path, json.dumps(stats, indent=2) + "\n")
