"""Telemetry: the stats record has exactly the documented fields and right values."""

import numpy as np

from pipeline.engine.messages import eof_message, frame_message
from pipeline.engine.telemetry import Telemetry, format_summary


def test_summary_fields_and_values():
    t = Telemetry()
    for i in range(10):
        msg = frame_message(np.zeros((2, 2, 3), np.uint8), i, 100.0 + i, None, 10)
        msg.header["stage_ms"] = {"infer": float(i), "render": 1.0}
        msg.header["dropped"] = i // 4
        msg.arrays["scores"] = np.ones(i % 3, np.float32)
        t.observe(msg, now=100.0 + i + 0.05 + 0.01 * i)
    t.end(eof_message(dropped=5))
    stats = t.summary()
    assert set(stats) == {"frames", "dropped", "fps", "latency_ms", "stages",
                          "people_mean"}
    assert set(stats["latency_ms"]) == {"p50", "p95", "p99"}
    assert set(stats["stages"]) == {"infer", "render"}
    assert set(stats["stages"]["infer"]) == {"p50", "p99"}
    assert stats["frames"] == 10 and stats["dropped"] == 5
    assert abs(stats["latency_ms"]["p50"] - 95.0) < 1e-6
    assert abs(stats["stages"]["infer"]["p50"] - 4.5) < 1e-9
    assert abs(stats["fps"] - 10 / 9.14) < 1e-6
    assert abs(stats["people_mean"] - 0.9) < 1e-9
    assert "p95" in format_summary(stats)
