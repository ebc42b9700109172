"""bench.realtime's verdicts against issue 14's end-to-end goals, on a made-up run."""

from __future__ import annotations

from bench.common import machine
from bench.realtime import doc_section, verdicts


def result(size: int, p50_1: float, p50_30: float, fps: float) -> dict:
    live = {
        n: {
            "p50": p,
            "p99": p * 1.5,
            "people_found": n,
            "stages": {"infer": {"p50": 9.0, "p99": 12.0}},
        }
        for n, p in ((1, p50_1), (30, p50_30))
    }
    return {
        "size": size,
        "engine": "native",
        "live": live,
        "file_fps": {1: fps, 30: fps},
        "ratio_p50": round(p50_30 / p50_1, 3),
    }


def test_verdicts_name_each_goal_met_or_not() -> None:
    fast = verdicts(result(256, 30.0, 31.0, 70.0), [1, 30])
    assert fast == (
        "file 70.0 FPS vs >= 60.0: met; live p50 30.0 ms vs <= 35.0: met; "
        "live p99 46.5 ms vs <= 60.0: met; p50(30) / p50(1) 1.033: met"
    )
    slow = verdicts(result(384, 50.0, 60.0, 20.0), [1, 30])
    assert slow == "file 20.0 FPS vs >= 30.0: not met; p50(30) / p50(1) 1.2: not met"
    record = {
        "machine": machine(),
        "backend": "auto",
        "fps": 60.0,
        "frames_per_count": 2,
        "passes": 1,
        "people": [1, 30],
        "results": [result(256, 30.0, 31.0, 70.0)],
    }
    text = doc_section(record)
    assert "| 256 | native | 30.0 / 45.0 | 31.0 / 46.5 | 1.03 |" in text
