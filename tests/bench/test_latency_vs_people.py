"""Smoke test of bench.latency_vs_people's JSON contract on a tiny model."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_json_contract(tmp_path: Path, run_bench: Callable[..., None]) -> None:
    out = tmp_path / "latency.json"
    run_bench(
        "latency_vs_people",
        "--quick",
        "--json",
        str(out),
        "--people",
        "2,1",
        "--frames",
        "1",
        "--fps",
        "20",
        "--peer",
        "off",
        "--no-clips",
    )
    record = json.loads(out.read_text())
    assert set(record) == {"people", "p50_ms", "p99_ms", "peer_p50_ms"}
    assert record["people"] == [1, 2]
    pairs = zip(record["p50_ms"], record["p99_ms"], strict=True)
    assert all(0 < p50 <= p99 for p50, p99 in pairs)
    assert record["peer_p50_ms"] == [None, None]
    details = json.loads(out.with_suffix(".details.json").read_text())
    assert details["input_size"] == 64
    assert {"infer", "preprocess"} <= set(details["ours"]["1"]["stages"])


def test_bad_arguments_are_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.latency_vs_people",
            "--json",
            str(tmp_path / "x.json"),
            "--fps",
            "0",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr.strip().startswith("error:")
    assert "Traceback" not in done.stderr
