"""Real time end to end: both decode engines at two input sizes, people 1..30.

    python -m bench.realtime [--quick] --json OUT [--doc] [--sizes 256,384]
                             [--engines native,graph] [--people 1,2,4,8,16,30]

The pipeline `run_stream.py` runs (every stage, file sink included; bench.harness) on
synthetic frames of n people (`bench.latency_vs_people.make_scenes`), for each
network input size (the shipped model's weights at `run_stream.py --input-size`:
the network is fully convolutional) and decode engine (`decode.engine`), measured
two ways in one run:
- live: frames released like a camera, one in flight at a time; capture-to-output
  latency p50 / p99 per people count (`latency_vs_people.ours_by_count`);
- file: every frame kept, none paced (a transcode), frames per second for 1 and 30
  people in steady state: output frames over the time between the first and the
  last output after 5 warm-up frames (the run's own fps counts the start-up too).
Goals (issue 14): file >= 60 FPS at 256 px and >= 30 at 384; live p50 <= 35 ms and
p99 <= 60 ms at 256; p50(30) / p50(1) <= 1.05.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from bench.common import (
    BenchError,
    machine,
    machine_line,
    main_guard,
    parser,
    write_json,
)
from bench.harness import run_pipeline
from bench.latency_vs_people import WARMUP, make_scenes, ours_by_count
from bench.report import table, update_section
from bench.sources import FramesSource
from nets.model import DEFAULT_WEIGHTS

GOALS = {"fps": {256: 60.0, 384: 30.0}, "p50": 35.0, "p99": 60.0, "ratio": 1.05}


def engine_config(engine: str, folder: Path) -> str:
    path = folder / f"engine_{engine}.yaml"
    path.write_text(yaml.safe_dump({"decode": {"engine": engine}}))
    return str(path)


def file_fps(scenes: list[Any], passes: int, opts: dict[str, Any]) -> float:
    """Steady-state frames per second of a transcode: every frame kept, none paced."""
    images = [scenes[0].image] * WARMUP + [s.image for s in scenes] * passes
    rows = run_pipeline(
        FramesSource(images, fps=1e6, live=False), queue="all", **opts
    ).rows
    out = sorted(r["out_ts"] for r in rows if r["index"] >= WARMUP)
    if len(out) < 2 or out[-1] <= out[0]:
        raise BenchError("too few frames came out to measure a frame rate")
    return round((len(out) - 1) / (out[-1] - out[0]), 2)


def run(args: Any) -> dict[str, Any]:
    if not DEFAULT_WEIGHTS.is_file():
        raise BenchError(f"needs the shipped model {DEFAULT_WEIGHTS}")
    info = machine()
    frames = 3 if args.quick else 20
    passes = 1 if args.quick else 3
    scenes = make_scenes(args.people, frames, args.seed)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-realtime-") as tmp:
        folder = Path(tmp)
        combos = [(s, e) for s in args.sizes for e in args.engines]
        for size, engine in tqdm(combos, desc="size x engine"):
            opts = {
                "backend": args.backend,
                "config": engine_config(engine, folder),
                "input_size": size,
            }
            live = ours_by_count(scenes, passes, args.fps, opts)
            ends = sorted({min(args.people), max(args.people)})
            fps = {n: file_fps(scenes[n], passes, opts) for n in ends}
            lo, hi = min(args.people), max(args.people)
            results.append(
                {
                    "size": size,
                    "engine": engine,
                    "live": {
                        n: {k: live[n][k] for k in ("p50", "p99", "people_found")}
                        | {"stages": live[n]["stages"]}
                        for n in args.people
                    },
                    "file_fps": fps,
                    "ratio_p50": round(live[hi]["p50"] / live[lo]["p50"], 3),
                }
            )
    return {
        "machine": info,
        "backend": args.backend,
        "fps": args.fps,
        "frames_per_count": frames,
        "passes": passes,
        "people": args.people,
        "results": results,
    }


def verdicts(r: dict[str, Any], people: list[int]) -> str:
    """Which of issue 14's end-to-end goals this size's run meets."""
    lo, hi = min(people), max(people)
    out = []
    want = GOALS["fps"].get(r["size"])
    if want:
        got = min(r["file_fps"].values())
        verdict = "met" if got >= want else "not met"
        out.append(f"file {got} FPS vs >= {want}: {verdict}")
    if r["size"] == 256:
        p50, p99 = r["live"][lo]["p50"], max(r["live"][n]["p99"] for n in people)
        out.append(
            f"live p50 {p50} ms vs <= {GOALS['p50']}: "
            f"{'met' if p50 <= GOALS['p50'] else 'not met'}"
        )
        out.append(
            f"live p99 {p99} ms vs <= {GOALS['p99']}: "
            f"{'met' if p99 <= GOALS['p99'] else 'not met'}"
        )
    ok = r["ratio_p50"] <= GOALS["ratio"]
    out.append(f"p50({hi}) / p50({lo}) {r['ratio_p50']}: {'met' if ok else 'not met'}")
    return "; ".join(out)


def doc_section(record: dict[str, Any]) -> str:
    people = record["people"]
    rows = []
    for r in record["results"]:
        rows.append(
            [
                r["size"],
                r["engine"],
                *[
                    f"{r['live'][n]['p50']:.1f} / {r['live'][n]['p99']:.1f}"
                    for n in people
                ],
                r["ratio_p50"],
                " / ".join(f"{v}" for v in r["file_fps"].values()),
            ]
        )
    lo, hi = min(people), max(people)
    header = [
        "px",
        "engine",
        *[f"{n} people p50 / p99 ms" for n in people],
        f"p50({hi}) / p50({lo})",
        f"file FPS ({lo} / {hi} people)",
    ]
    stage_rows = []
    for r in record["results"]:
        stages = r["live"][hi]["stages"]
        stage_rows.append(
            [
                r["size"],
                r["engine"],
                ", ".join(f"{name} {v['p50']:.1f}" for name, v in stages.items()),
            ]
        )
    return "\n\n".join(
        [
            machine_line(record["machine"]),
            "`python -m bench.realtime`: the pipeline of `run_stream.py` (backend "
            f"{record['backend']}, file sink included) on synthetic frames of n "
            f"people, {record['frames_per_count']} scenes per count, "
            f"{record['passes']} passes. Live: released at most at {record['fps']} "
            "FPS, one frame in flight, capture to output. File: every frame kept, "
            "none paced.",
            table(header, rows),
            f"Per-stage p50 (ms) at {hi} people:",
            table(["px", "engine", "stages"], stage_rows),
            "Against the goals: "
            + " | ".join(
                f"{r['size']} px {r['engine']}: {verdicts(r, people)}"
                for r in record["results"]
            ),
        ]
    )


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ints = lambda s: sorted({int(v) for v in s.split(",")})  # noqa: E731
    ap.add_argument("--sizes", type=ints, default=[256, 384])
    ap.add_argument(
        "--engines", type=lambda s: s.split(","), default=["native", "graph"]
    )
    ap.add_argument("--people", type=ints, default=[1, 2, 4, 8, 16, 30])
    ap.add_argument(
        "--fps",
        type=float,
        default=60.0,
        help="most frames released per second in the live run",
    )
    ap.add_argument("--backend", default="auto", help="inference backend")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if min(args.sizes) < 32 or any(s % 32 for s in args.sizes):
        raise BenchError("--sizes must be positive multiples of 32")
    if set(args.engines) - {"native", "graph"} or min(args.people) < 1:
        raise BenchError("--engines: native and/or graph; --people: positive counts")
    record = run(args)
    write_json(record, args.json)
    if args.doc:
        update_section("realtime", doc_section(record))
    for r in record["results"]:
        print(f"{r['size']} px {r['engine']:6s}: {verdicts(r, args.people)}")


if __name__ == "__main__":
    main_guard(main)
