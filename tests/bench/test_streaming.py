"""Smoke tests of the streaming benchmark: stamps survive H.264, one live run."""

from __future__ import annotations

import io

import av
import numpy as np

from bench.streaming import doc_section, live_run
from tests.loopback import read_stamp, stamp


def test_stamps_survive_h264() -> None:
    rng = np.random.default_rng(0)
    indices = [0, 1, 2, 255, 4097, 65535]
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 96, "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
        for k in indices:
            image = stamp(rng.integers(0, 255, (96, 320, 3), dtype=np.uint8), k)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    buf.seek(0)
    with av.open(buf) as got:
        read = [read_stamp(f.to_ndarray(format="rgb24")) for f in got.decode(video=0)]
    assert read == indices


def test_live_run_over_rtmp(tiny: dict[str, str]) -> None:
    frames = [np.full((96, 320, 3), 90, np.uint8)] * 4
    result = live_run(
        "live", frames, 15.0, 2.5, "rtmp", "auto", {"backend": "torch", **tiny}
    )
    assert result["frames_out"] >= 2
    assert result["frames_out"] + result["not_output"] == result["sent"]
    assert 0 < result["latency_ms"]["p50"] <= result["latency_ms"]["p99"]
    # Capture-to-output includes encode and network: never less than the pipeline's.
    assert result["latency_ms"]["p50"] >= result["pipeline_latency_ms"]["p50"]
    record = {
        "machine": {
            "nproc": 2,
            "cpu": "x",
            "torch": "t",
            "torch_threads": 2,
            "date": "d",
            "load_avg_1m": 0.1,
            "shared_cpu": False,
        },
        "protocol": "rtmp",
        "size": 320,
        "backend": "torch",
        "seconds": 2.5,
        "capacity_fps": 1.0,
        "runs": [result],
    }
    assert "| live |" in doc_section(record)
