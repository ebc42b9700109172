"""Streaming: capture-to-output latency from a live loopback source, and under overload.

    python -m bench.streaming [--quick] --json OUT [--doc] [--protocol rtmp|udp]

A publisher process encodes a synthetic crowd video (H.264, zerolatency) and pushes it
over RTMP or UDP on 127.0.0.1 into the pipeline `run_stream.py` runs; every frame
carries its index as stamped blocks, so each output frame is matched to the moment it
was handed to the encoder. Runs:

1. `live`: the source at 30 FPS (a camera);
2. `overload`: the source at twice the pipeline's capacity (measured first, every frame
   kept and none paced): latest-frame-wins must keep latency bounded and count drops;
3. `overload-queue-all` (full run only): the same with every frame kept, to show what
   the drop policy prevents.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bench.common import (
    BenchError,
    machine,
    machine_line,
    main_guard,
    parse_and_run,
    parser,
    percentiles,
)
from bench.harness import run_pipeline, stage_percentiles
from bench.loopback import Publisher, live_source
from bench.report import PLOTS, new_plot, save_plot, table, update_section
from bench.sources import FramesSource, TimedSource
from pipeline.options import add_model_arguments
from tests.loopback import PROTOCOLS, endpoint, read_stamp
from trainers.synth import generate_video

SIZE = 384
CAMERA_FPS = 30.0
SETTLE_S = 1.0


def crowd(frames: int, people: tuple[int, int], seed: int) -> list[np.ndarray]:
    return [
        s.image
        for s in tqdm(
            generate_video(seed, SIZE, frames, people), total=frames, desc="video"
        )
    ]


def capacity(frames: list[np.ndarray], run: dict[str, Any]) -> float:
    """Frames per second the pipeline sustains with every frame kept, none paced."""
    stats = run_pipeline(
        FramesSource(frames, fps=1e6, live=False), queue="all", **run
    ).stats
    if not stats.get("fps"):
        raise BenchError("capacity run produced no frames")
    return float(stats["fps"])


def live_run(
    name: str,
    frames: list[np.ndarray],
    fps: float,
    seconds: float,
    protocol: str,
    queue: str,
    run: dict[str, Any],
) -> dict[str, Any]:
    """Publish at `fps` into the pipeline for `seconds` after it starts; match stamps.

    The publisher connects once the pipeline has started (RTMP, RTSP: the source
    listens for it), as a camera that comes online; a UDP source needs packets to
    open, so its publisher starts first. Frames sent before the pipeline started and
    in its first second are left out of every figure but the pipeline's drop count.
    """
    url, fmt, pub_options = endpoint(protocol)
    publisher = Publisher(url, fmt, pub_options, frames, fps)
    early = protocol == "udp"
    if early:
        publisher.start()
    try:
        done = run_pipeline(
            TimedSource(live_source(protocol, url), seconds + SETTLE_S),
            queue=queue,
            on_start=None if early else publisher.start,
            key_fn=lambda m: read_stamp(m.pixels("image")),
            **run,
        )
    finally:
        sent = publisher.stop()
    steady_from = done.reports["source"]["started"] + SETTLE_S
    rows = [r for r in done.rows if r["key"] in sent and sent[r["key"]] >= steady_from]
    if len(rows) < 2:
        raise BenchError(f"{name}: fewer than 2 stamped frames came out after start-up")
    latency = [1000.0 * (r["out_ts"] - sent[r["key"]]) for r in rows]
    keys = [r["key"] for r in rows]
    window = [k for k in sent if min(keys) <= k <= max(keys)]
    half = len(latency) // 2
    first, second = np.median(latency[:half]), np.median(latency[half:])
    duration = rows[-1]["out_ts"] - rows[0]["out_ts"]
    return {
        "name": name,
        "source_fps": round(fps, 2),
        "queue": queue,
        "sent": len(window),
        "frames_out": len(rows),
        "not_output": len(window) - len(rows),
        "pipeline_dropped_total": int(done.stats.get("dropped", 0)),
        "output_fps": round((len(rows) - 1) / duration, 2) if duration > 0 else 0.0,
        "latency_ms": percentiles(latency, (50, 95, 99)),
        "pipeline_latency_ms": percentiles(
            [r["latency_ms"] for r in rows], (50, 95, 99)
        ),
        "first_half_p50": round(float(first), 2),
        "second_half_p50": round(float(second), 2),
        "bounded": bool(second <= 1.25 * first + 1000.0 / CAMERA_FPS),
        "stages": stage_percentiles(rows),
        "series": [
            [round(r["out_ts"] - rows[0]["out_ts"], 3), round(v, 2)]
            for r, v in zip(rows, latency, strict=True)
        ],
    }


def run(args: Any) -> dict[str, Any]:
    info = machine()
    run_opts = {
        "backend": args.backend,
        "config": args.config,
        "checkpoint": args.checkpoint,
    }
    seconds = args.seconds or (6.0 if args.quick else 20.0)
    frames = crowd(30 if args.quick else 90, (3, 6), args.seed)
    cap = capacity(frames[:20] if args.quick else frames + frames, run_opts)
    plans = [("live", CAMERA_FPS, "auto"), ("overload", 2 * cap, "auto")]
    if not args.quick:
        plans.append(("overload-queue-all", 2 * cap, "all"))
    runs = [
        live_run(name, frames, fps, seconds, args.protocol, queue, run_opts)
        for name, fps, queue in tqdm(plans, desc="runs")
    ]
    return {
        "machine": info,
        "protocol": args.protocol,
        "size": SIZE,
        "backend": args.backend,
        "seconds": seconds,
        "capacity_fps": round(cap, 2),
        "runs": runs,
    }


def plot(record: dict[str, Any], path: Path) -> None:
    fig, ax = new_plot()
    for r in record["runs"]:
        t, v = zip(*r["series"], strict=True)
        ax.plot(
            t,
            v,
            label=f"{r['name']} ({r['source_fps']} FPS in, "
            f"{r['not_output']} of {r['sent']} not output)",
        )
    ax.set_xlabel("seconds into the steady state")
    ax.set_ylabel("capture-to-output latency (ms)")
    ax.set_yscale("log")
    ax.set_title(
        f"Live {record['protocol'].upper()} source on 127.0.0.1; capacity "
        f"{record['capacity_fps']} FPS"
    )
    save_plot(fig, ax, path)


def doc_section(record: dict[str, Any]) -> str:
    rows = [
        [
            r["name"],
            r["source_fps"],
            r["queue"],
            r["sent"],
            r["frames_out"],
            r["not_output"],
            r["pipeline_dropped_total"],
            r["output_fps"],
            r["latency_ms"]["p50"],
            r["latency_ms"]["p95"],
            r["latency_ms"]["p99"],
            r["pipeline_latency_ms"]["p50"],
            f"{r['first_half_p50']:.0f} -> {r['second_half_p50']:.0f}",
            "yes" if r["bounded"] else "NO",
        ]
        for r in record["runs"]
    ]
    return "\n\n".join(
        [
            machine_line(record["machine"]),
            f"{record['protocol'].upper()} on 127.0.0.1, {record['size']} px synthetic "
            f"crowd, backend {record['backend']}, about {record['seconds']} s per run. "
            f"Pipeline capacity (every frame kept, unpaced): {record['capacity_fps']} "
            "FPS. Latency is from the publisher handing a frame to its encoder to the "
            "end of the pipeline's sink; 'pipeline' latency starts when the source "
            "has decoded the frame. Frames sent before the pipeline started and in "
            f"its first {SETTLE_S:.0f} s are start-up backlog, left out of all columns "
            "but 'dropped (whole run)', the pipeline's own drop counter.",
            table(
                [
                    "run",
                    "source FPS",
                    "queue",
                    "sent",
                    "out",
                    "not out",
                    "dropped (whole run)",
                    "out FPS",
                    "p50 ms",
                    "p95 ms",
                    "p99 ms",
                    "pipeline p50 ms",
                    "p50 1st -> 2nd half",
                    "bounded",
                ],
                rows,
            ),
            "![streaming latency](bench/streaming.png)",
        ]
    )


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--protocol", choices=PROTOCOLS, default="rtmp")
    ap.add_argument(
        "--seconds", type=float, help="length of each live run (default 20, quick 6)"
    )
    add_model_arguments(ap, device=False)
    ap.add_argument("--seed", type=int, default=0)
    args, record = parse_and_run(ap, run)
    if args.doc:
        plot(record, PLOTS / "streaming.png")
        update_section("streaming", doc_section(record))
    print(f"capacity {record['capacity_fps']} FPS")
    for r in record["runs"]:
        print(
            f"{r['name']:20s} in {r['source_fps']:6.1f} FPS  out {r['frames_out']:4d}"
            f" of {r['sent']:4d}  p50 {r['latency_ms']['p50']:8.1f} ms  "
            f"p99 {r['latency_ms']['p99']:8.1f} ms  bounded {r['bounded']}"
        )


if __name__ == "__main__":
    main_guard(main)
