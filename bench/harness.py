"""Runs the product's pipeline (pipeline.runner.run_pipeline) on a benchmark's source.

The stages are exactly what `run_stream.py` runs; only the source is the benchmark's
and a `RecordSink` rides along the file sink to note, per frame, when it left the
pipeline, each stage's time and the people found. A sink's report travels back from
worker processes too, so the same records come out for every transport.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import BenchError, percentiles
from bench.sources import Lockstep
from configs import load_config
from pipeline import runner
from pipeline.engine.messages import Message
from pipeline.engine.stage import Sink
from pipeline.options import StreamOptions


class RecordSink(Sink):
    """Notes every frame that reaches the end: index, latency, stage times, people.

    `key_fn(msg)` optionally adds a key per frame (e.g. a stamped frame index); a
    `lockstep` is told when a frame is done so the source may send the next.
    """

    name = "record"

    def __init__(
        self,
        key_fn: Callable[[Message], int] | None = None,
        lockstep: Lockstep | None = None,
    ) -> None:
        self.key_fn = key_fn
        self.lockstep = lockstep
        self.rows: list[dict[str, Any]] = []

    def open(self) -> None:
        pass

    def write(self, msg: Message) -> None:
        now = time.time()
        head = msg.header
        scores = None if msg.people is None else msg.people.scores
        row = {
            "index": int(head["index"]),
            "out_ts": now,
            "latency_ms": 1000.0 * (now - head["capture_ts"]),
            "stage_ms": dict(head.get("stage_ms", {})),
            "people": 0 if scores is None else len(scores),
        }
        if self.key_fn is not None:
            row["key"] = self.key_fn(msg)
        self.rows.append(row)
        if self.lockstep is not None:
            self.lockstep.leave()

    def close(self) -> dict[str, Any]:
        return {"path": None, "frames": len(self.rows), "rows": self.rows}


@dataclass
class PipelineRun:
    """One run: per-frame rows, the pipeline's stats summary, each stage's report."""

    rows: list[dict[str, Any]]
    stats: dict[str, Any]
    reports: dict[str, Any]


def run_pipeline(
    source: Any,
    backend: str = "auto",
    transport: str = "inproc",
    queue: str = "auto",
    key_fn: Callable[[Message], int] | None = None,
    output: str | None = None,
    config: str | None = None,
    checkpoint: str | None = None,
    on_start: Callable[[], None] | None = None,
    input_size: int | None = None,
) -> PipelineRun:
    """Run `source` through the product's stages and collect what came out.

    config: a config file over configs/default.yaml; checkpoint: a trained model (None:
    the shipped one, nets/weights/default.pt); on_start: called when the source starts
    (every stage is ready: the model has loaded); input_size: run the network at this
    size (`run_stream.py --input-size`; None: the checkpoint's)."""
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        opts = StreamOptions(
            outputs=[output or str(Path(tmp) / "out.mp4")],
            backend=backend,
            config=config,
            checkpoint=checkpoint,
            input_size=input_size,
            transport=transport,
            queue=queue,
            progress=False,
        )
        record = RecordSink(key_fn, getattr(source, "lockstep", None))
        started = None if on_start is None else (lambda _info: on_start())
        sinks = [*runner.make_sinks(opts, load_config(config)), record]
        result = runner.run_pipeline(opts, source, sinks, started)
    if result.errors:
        raise BenchError("pipeline failed: " + "; ".join(result.errors))
    outputs = (result.reports.get("sink") or {}).get("outputs", [])
    rows = next(o["rows"] for o in outputs if o and "rows" in o)
    return PipelineRun(rows, result.stats or {}, result.reports)


def stage_percentiles(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """{stage: {"p50", "p99"}} over the rows' stage times."""
    names = sorted({n for r in rows for n in r["stage_ms"]})
    return {
        name: percentiles([r["stage_ms"][name] for r in rows if name in r["stage_ms"]])
        for name in names
    }
