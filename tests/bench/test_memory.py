"""Smoke test of bench.memory's JSON contract on a short synthetic clip."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

from bench.memory import growth


def write_clip(path: Path, frames: int = 4) -> None:
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for _ in range(frames):
            image = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())


def test_growth_uses_second_and_last_tenths() -> None:
    samples = [(float(t), 100.0) for t in range(10)] + [
        (10.0 + t, 110.0) for t in range(10)
    ]
    samples[0] = (0.0, 50.0)  # start-up is ignored
    early, late, rel = growth(samples)
    assert (early, late) == (100.0, 110.0)
    assert abs(rel - 0.1) < 1e-9


def test_json_contract(tmp_path: Path, run_bench: Callable[..., None]) -> None:
    clip, out = tmp_path / "clip.mp4", tmp_path / "memory.json"
    write_clip(clip)
    run_bench("memory", "--json", str(out), "--clip", str(clip), "--seconds", "8")
    record = json.loads(out.read_text())
    assert record["loops"] >= 1 and record["frames"] > 4  # it looped
    assert record["peak_mb"] >= record["late_mb"] > 0
    assert len(record["samples"]) >= 10
    assert {"growth", "early_mb", "machine"} <= set(record)
