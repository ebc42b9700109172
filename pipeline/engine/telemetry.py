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
        self.people: list[int] = []
        self.first_capture: float | None = None
        self.last_output: float | None = None

    def observe(self, msg: Message, now: float | None = None) -> None:
        """Record one frame that has just been written out."""
        now = time.time() if now is None else now
        head = msg.header
        self.frames += 1
        self.dropped = max(self.dropped, int(head.get("dropped", 0)))
        self.latency_ms.append(1000.0 * (now - head["capture_ts"]))
        for name, ms in head.get("stage_ms", {}).items():
            self.stage_ms[name].append(float(ms))
        scores = msg.arrays.get("scores")
        self.people.append(0 if scores is None else len(scores))
        if self.first_capture is None:
            self.first_capture = head["capture_ts"]
        self.last_output = now

    def end(self, eof: Message) -> None:
        """The end-of-stream marker carries drops that happened after the last frame."""
        self.dropped = max(self.dropped, int(eof.header.get("dropped", 0)))

    def summary(self) -> dict[str, Any]:
        """`{"frames", "dropped", "fps", "latency_ms", "stages", "people_mean"}`."""
        span = (self.last_output or 0.0) - (self.first_capture or 0.0)
        return {
            "frames": self.frames,
            "dropped": self.dropped,
            "fps": self.frames / span if self.frames and span > 0 else 0.0,
            "latency_ms": _percentiles(self.latency_ms, (50, 95, 99)),
            "stages": {k: _percentiles(v, (50, 99)) for k, v in self.stage_ms.items()},
            "people_mean": float(np.mean(self.people)) if self.people else 0.0,
        }


def _percentiles(values: list[float], qs: tuple[int, ...]) -> dict[str, float]:
    if not values:
        return {f"p{q}": 0.0 for q in qs}
    got = np.percentile(np.asarray(values), qs)
    return {f"p{q}": float(v) for q, v in zip(qs, got, strict=True)}


def format_summary(stats: dict[str, Any]) -> str:
    """A few human-readable lines for the terminal."""
    lat = stats["latency_ms"]
    lines = [
        f"frames {stats['frames']}  dropped {stats['dropped']}  "
        f"fps {stats['fps']:.1f}  people/frame {stats['people_mean']:.2f}",
        f"capture-to-output latency ms: p50 {lat['p50']:.1f}  p95 {lat['p95']:.1f}  "
        f"p99 {lat['p99']:.1f}",
        "stage ms (p50 / p99): " + "  ".join(
            f"{k} {v['p50']:.1f}/{v['p99']:.1f}" for k, v in stats["stages"].items()
        ),
    ]
    return "\n".join(lines)


def write_json(stats: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stats, indent=2) + "\n")
