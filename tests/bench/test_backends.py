"""Smoke test of bench.backends on a tiny network: rows, parity, doc section."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.backends import bench_size, doc_section, eager_decode, person_distance_px
from bench.common import machine
from nets.model import load_checkpoint
from nets.movenet import MoveNet


def test_rows_and_parity(tmp_path: Path, tiny: dict[str, str]) -> None:
    model, cfg = load_checkpoint(tiny["checkpoint"])
    model.eval()
    rows = bench_size(
        model,
        cfg,
        64,
        ["torch", "onnxruntime"],
        repeats=2,
        warmup=1,
        threads=1,
        tmp=tmp_path,
        reference=MoveNet(0.25).eval(),
    )
    assert [r["backend"] for r in rows] == ["torch", "onnxruntime"]
    ref, ort = rows
    assert ref["parts_agree"] == 1.0 and ref["map_rel_err"] == 0
    assert ref["keypoint_px"] == 0 and ref["people"] == ref["people_out"]
    assert ort["map_rel_err"] < 1e-3 and ort["parts_agree"] > 0.99
    for r in rows:
        assert r["network_ms"] > 0 and 0 < r["median_ms"] <= r["p90_ms"]
        assert abs(r["fps"] - 1000 / r["median_ms"]) < 0.1
        assert r["movenet_ms"] > 0
        assert r["network_vs_movenet"] == round(r["network_ms"] / r["movenet_ms"], 3)
    decode = eager_decode(model, cfg, 64, repeats=1, matchers=("greedy",))
    assert set(decode) == {"greedy_1", "greedy_30"}
    record = {
        "machine": machine(),
        "weights": "random",
        "threads": 1,
        "repeats": 2,
        "warmup": 1,
        "rows": rows,
        "eager_decode_ms": decode,
    }
    assert "| 64 | onnxruntime |" in doc_section(record)
    assert "| network / MoveNet |" in doc_section(record)


def test_people_are_matched_as_sets() -> None:
    a = np.zeros((2, 17, 3), np.float32)
    a[0, :, :2], a[1, :, :2], a[..., 2] = 10, 50, 1
    assert person_distance_px(a, a[::-1]) == 0
    moved = a.copy()
    moved[1, :, 0] += 3
    assert person_distance_px(a, moved) == 3
    assert person_distance_px(a, a[:0]) == float("inf")
    assert person_distance_px(a[:0], a) == 0
