"""Telemetry: the stats record has exactly the documented fields and right values."""

from dataclasses import replace

import numpy as np

from pipeline.engine.messages import FramePeople, eof_message, frame_message
from pipeline.engine.telemetry import Telemetry, format_summary
from tests.pipeline.helpers import STATS_KEYS


def scored(scores: np.ndarray) -> FramePeople:
    """People of which the telemetry reads only the scores."""
    return replace(FramePeople.empty(2, 2), scores=scores)


def test_summary_fields_and_values():
    t = Telemetry()
    for i in range(10):
        msg = frame_message(np.zeros((2, 2, 3), np.uint8), i, 100.0 + i, None, 10)
        msg.header["stage_ms"] = {"infer": float(i), "render": 1.0}
        msg.header["dropped"] = i // 4
        msg.people = scored(np.ones(i % 3, np.float32))
        t.observe(msg, now=100.0 + i + 0.05 + 0.01 * i)
    t.end(eof_message(dropped=5))
    stats = t.summary()
    assert set(stats) == STATS_KEYS
    assert set(stats["latency_ms"]) == {"p50", "p95", "p99"}
    assert set(stats["stages"]) == {"infer", "render"}
    assert set(stats["stages"]["infer"]) == {"p50", "p99"}
    assert stats["frames"] == 10 and stats["dropped"] == 5
    assert abs(stats["latency_ms"]["p50"] - 95.0) < 1e-6
    assert abs(stats["stages"]["infer"]["p50"] - 4.5) < 1e-9
    assert abs(stats["fps"] - 10 / 9.14) < 1e-6
    assert abs(stats["people_mean"] - 0.9) < 1e-9
    assert stats["people_threshold"] is None
    # latency 50 + 10 i ms = processing (i + 1) + queueing (49 - i + 10 i)
    assert abs(stats["processing_ms"]["p50"] - 5.5) < 1e-9
    assert abs(stats["queue_ms"]["p50"] - 89.5) < 1e-6
    text = format_summary(stats)
    assert "p95" in text and "waiting in queues p50 89.5" in text
    assert "--realtime" in text  # queueing dominates: say why


def test_people_are_counted_as_the_overlay_shows_them():
    t = Telemetry()
    msg = frame_message(np.zeros((2, 2, 3), np.uint8), 0, 100.0, None, 10)
    msg.people = scored(np.array([0.9, 0.06, 0.05], np.float32))
    msg.header.update(people_shown=1, display_threshold=0.1)
    t.observe(msg, now=100.1)
    stats = t.summary()
    assert stats["people_mean"] == 1 and stats["people_threshold"] == 0.1
    assert "people/frame 1.00 (score >= 0.1, as drawn)" in format_summary(stats)
