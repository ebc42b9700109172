"""Latency versus people: PartStream end to end beside a top-down peer, same frames.

    python -m bench.latency_vs_people [--quick] --json OUT [--doc]

OUT gets exactly {"people", "p50_ms", "p99_ms", "peer_p50_ms"} (people 1, 2, 4, 8, 16,
30); everything else (per-stage times, p99s, the peer with its own detector, the
10-person point, throughput, real clips, the machine) goes to OUT's sibling
`*.details.json`.

Ours: synthetic scenes `generate_scene(seed, 384, people=(n, n))`, made before the run,
released at --fps like a camera into the pipeline `run_stream.py` runs (every stage,
file sink included); latency is capture to the end of the sink. The peer: MediaPipe's
detector plus its landmark model once per person (bench/peer.py) on the same frames,
twice: with the people's true boxes (a top-down system whose detector finds everyone:
`peer_p50_ms`) and with its own detector (what it finds on its own).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
from tqdm import tqdm

from bench.common import (
    BenchError,
    machine,
    machine_line,
    main_guard,
    parser,
    percentiles,
    write_json,
)
from bench.harness import run_pipeline, stage_percentiles
from bench.peer import MediaPipePeer, PeerError
from bench.report import PLOTS, new_plot, save_plot, table, update_section
from bench.sources import FramesSource, Lockstep
from configs import load_config
from configs.records import Scene
from pipeline.options import add_model_arguments
from pipeline.stages.infer import resolve_model
from trainers.synth import generate_scene

PEOPLE = (1, 2, 4, 8, 16, 30)
GOAL_PEOPLE = 10  # the "5x faster than the peer at 10 people" goal
CLIPS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "video"
SIZE = 384
WARMUP = 5


def make_scenes(counts: list[int], frames: int, seed: int) -> dict[int, list[Scene]]:
    """`frames` distinct scenes per people count, seeded so every run sees the same."""
    out = {}
    for n in tqdm(counts, desc="scenes"):
        out[n] = [
            generate_scene(seed + 1000 * n + i, SIZE, people=(n, n))
            for i in range(frames)
        ]
    return out


def ours_by_count(
    scenes: dict[int, list[Scene]], passes: int, fps: float, run: dict[str, Any]
) -> dict[int, dict[str, Any]]:
    """One paced pipeline run over every count's frames; stats split by count.

    Counts are interleaved frame by frame, so a change in the machine's load during
    the run (the CPU may be shared) touches every count alike, not the last ones.
    """
    images, owner = [], []
    first = scenes[min(scenes)]
    for k in range(WARMUP):  # the first inferences are slow: not measured
        images.append(first[k % len(first)].image)
        owner.append(None)
    for _ in range(passes):
        for i in range(len(first)):
            for n, group in scenes.items():
                images.append(group[i].image)
                owner.append(n)
    rows = run_pipeline(FramesSource(images, fps, lockstep=Lockstep()), **run).rows
    out = {}
    for n in scenes:
        mine = [r for r in rows if owner[r["index"]] == n]
        if not mine:
            raise BenchError(f"no frame with {n} people came out of the pipeline")
        out[n] = {
            **percentiles([r["latency_ms"] for r in mine]),
            "frames": len(mine),
            "dropped": passes * len(scenes[n]) - len(mine),
            "people_found": float(np.mean([r["people"] for r in mine])),
            "stages": stage_percentiles(mine),
        }
    return out


def throughput(scenes: list[Scene], passes: int, run: dict[str, Any]) -> float:
    """Frames per second with every frame kept and none paced (a file transcode)."""
    images = [s.image for s in scenes] * passes
    stats = run_pipeline(
        FramesSource(images, fps=1e6, live=False), queue="all", **run
    ).stats
    return round(float(stats.get("fps", 0.0)), 2)


def peer_by_count(peer: MediaPipePeer, scenes: dict[int, list[Scene]]) -> dict:
    """The peer on the same frames, with true boxes and with its own detector
    (counts interleaved frame by frame, as for ours)."""
    peer.process(scenes[min(scenes)][0].image)  # graph start-up
    boxed: dict[int, list] = {n: [] for n in scenes}
    own: dict[int, list] = {n: [] for n in scenes}
    for i in tqdm(range(len(scenes[min(scenes)])), desc="peer"):
        for n, group in scenes.items():
            boxed[n].append(peer.process(group[i].image, group[i].boxes()))
            own[n].append(peer.process(group[i].image))
    out = {}
    for n in scenes:
        out[n] = {
            **percentiles([r.ms for r in boxed[n]]),
            "landmark_people": float(np.mean([r.people for r in boxed[n]])),
            "own_p50": percentiles([r.ms for r in own[n]])["p50"],
            "own_detected": float(np.mean([r.detected for r in own[n]])),
            "detect_p50": percentiles([r.detect_ms for r in own[n]])["p50"],
        }
    return out


def clip_frames(path: Path, count: int) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= count:
                break
    return frames


def clips(
    paths: list[Path],
    peer: MediaPipePeer | None,
    count: int,
    fps: float,
    run: dict[str, Any],
) -> dict:
    """Ours and the peer (own detector: no truth here) on the first frames of clips."""
    out = {}
    for path in paths:
        frames = clip_frames(path, count)
        source = FramesSource(frames[:1] * WARMUP + frames, fps, lockstep=Lockstep())
        rows = run_pipeline(source, **run).rows
        rows = [r for r in rows if r["index"] >= WARMUP]
        entry = {
            "frames": len(frames),
            "size": list(frames[0].shape[1::-1]),
            **percentiles([r["latency_ms"] for r in rows]),
            "people_found": float(np.mean([r["people"] for r in rows])),
        }
        if peer is not None:
            peer.process(frames[0])
            got = [peer.process(f) for f in frames]
            entry["peer_p50"] = percentiles([r.ms for r in got])["p50"]
            entry["peer_detected"] = float(np.mean([r.detected for r in got]))
        out[path.name] = entry
    return out


def open_peer(enabled: bool) -> MediaPipePeer | None:
    if not enabled:
        return None
    try:
        return MediaPipePeer()
    except PeerError as exc:
        raise BenchError(str(exc)) from exc


def run(args: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    info = machine()
    counts = sorted(set(args.people) | ({GOAL_PEOPLE} if not args.quick else set()))
    frames = args.frames or (3 if args.quick else 20)
    passes = 2 if args.quick else 3
    run_opts = {
        "backend": args.backend,
        "config": args.config,
        "checkpoint": args.checkpoint,
    }
    scenes = make_scenes(counts, frames, args.seed)
    ours = ours_by_count(scenes, passes, args.fps, run_opts)
    tput = (
        {}
        if args.quick
        else {
            n: throughput(scenes[n], passes, run_opts) for n in (1, 30) if n in scenes
        }
    )
    paths = sorted(p for p in CLIPS.glob("*") if p.suffix in (".mp4", ".avi"))
    paths = (paths[:1] if args.quick else paths) if args.clips else []
    peer = open_peer(args.peer == "on")
    try:
        theirs = peer_by_count(peer, scenes) if peer else {}
        real = clips(paths, peer, 5 if args.quick else 60, args.fps, run_opts)
    finally:
        if peer is not None:
            peer.close()
    main = {
        "people": list(args.people),
        "p50_ms": [ours[n]["p50"] for n in args.people],
        "p99_ms": [ours[n]["p99"] for n in args.people],
        "peer_p50_ms": [theirs[n]["p50"] if theirs else None for n in args.people],
    }
    model_cfg = resolve_model(args.checkpoint, load_config(args.config))
    details = {
        "machine": info,
        "size": SIZE,
        "input_size": model_cfg["input_size"],
        "fps": args.fps,
        "config": args.config,
        "frames_per_count": frames,
        "passes": passes,
        "backend": args.backend,
        "visible_people": {
            n: float(np.mean([s.num_people for s in scenes[n]])) for n in counts
        },
        "ours": ours,
        "peer": theirs,
        "throughput_fps": tput,
        "clips": real,
    }
    lo, hi = min(args.people), max(args.people)
    details["ratio_p50"] = round(ours[hi]["p50"] / ours[lo]["p50"], 3)
    return main, details


def plot(main: dict[str, Any], details: dict[str, Any], path: Path) -> None:
    fig, ax = new_plot()
    n = main["people"]
    ax.plot(n, main["p50_ms"], "o-", label="PartStream p50 (end to end)")
    ax.plot(n, main["p99_ms"], "o:", color="C0", alpha=0.6, label="PartStream p99")
    if details["peer"]:
        ax.plot(
            n,
            main["peer_p50_ms"],
            "s-",
            color="C3",
            label="MediaPipe top-down p50 (true boxes)",
        )
        ax.plot(
            n,
            [details["peer"][k]["own_p50"] for k in n],
            "s:",
            color="C3",
            alpha=0.6,
            label="MediaPipe, own detector",
        )
    ax.set_xlabel("people in the frame")
    ax.set_ylabel("latency per frame (ms)")
    ax.set_title(
        f"Latency vs people, {details['input_size']} px model, "
        f"{details['machine']['nproc']} CPU cores"
    )
    save_plot(fig, ax, path)


def doc_section(main: dict[str, Any], details: dict[str, Any]) -> str:
    ours, peer = details["ours"], details["peer"]
    rows = []
    for n in sorted(ours, key=int):
        p = peer.get(n, {})
        rows.append(
            [
                n,
                details["visible_people"][n],
                ours[n]["p50"],
                ours[n]["p99"],
                ours[n]["people_found"],
                ours[n]["dropped"],
                p.get("p50", "-"),
                p.get("p99", "-"),
                p.get("own_p50", "-"),
                p.get("own_detected", "-"),
                round(p["p50"] / ours[n]["p50"], 2) if p else "-",
            ]
        )
    stages = sorted({s for n in ours for s in ours[n]["stages"]})
    stage_rows = [
        [n]
        + [
            f"{ours[n]['stages'][s]['p50']:.1f} / {ours[n]['stages'][s]['p99']:.1f}"
            if s in ours[n]["stages"]
            else "-"
            for s in stages
        ]
        for n in sorted(ours, key=int)
    ]
    parts = [
        machine_line(details["machine"]),
        f"{details['size']} px frames into a {details['input_size']} px model, "
        f"backend {details['backend']}, one frame in flight at a time, released at "
        f"most at {details['fps']} FPS; {details['frames_per_count']} distinct scenes "
        f"per count, {details['passes']} passes. Headline ratio "
        f"p50({max(main['people'])}) / p50({min(main['people'])}) = "
        f"**{details['ratio_p50']}**.",
        table(
            [
                "people asked",
                "visible",
                "ours p50 ms",
                "ours p99 ms",
                "found",
                "dropped",
                "peer p50 ms (true boxes)",
                "peer p99 ms",
                "peer p50 ms (own detector)",
                "peer detected",
                "peer / ours",
            ],
            rows,
        ),
        "Per-stage p50 / p99 (ms):",
        table(["people"] + stages, stage_rows),
    ]
    if details["throughput_fps"]:
        parts.append(
            "Throughput with every frame kept (transcode mode): "
            + ", ".join(
                f"{n} people {fps} FPS" for n, fps in details["throughput_fps"].items()
            )
        )
    if details["clips"]:
        clip_rows = [
            [
                name,
                "x".join(map(str, c["size"])),
                c["frames"],
                c["p50"],
                c["p99"],
                c["people_found"],
                c.get("peer_p50", "-"),
                c.get("peer_detected", "-"),
            ]
            for name, c in details["clips"].items()
        ]
        parts += [
            "Real clips (first frames, same pacing; the peer with its own detector):",
            table(
                [
                    "clip",
                    "size",
                    "frames",
                    "ours p50 ms",
                    "ours p99 ms",
                    "found",
                    "peer p50 ms",
                    "peer detected",
                ],
                clip_rows,
            ),
        ]
    parts.append("![latency vs people](bench/latency_vs_people.png)")
    return "\n\n".join(parts)


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument(
        "--people",
        type=lambda s: [int(v) for v in s.split(",")],
        default=list(PEOPLE),
        help="people counts (default 1,2,4,8,16,30)",
    )
    ap.add_argument(
        "--frames",
        type=int,
        help="distinct scenes per people count (default 20, quick 3)",
    )
    ap.add_argument(
        "--fps",
        type=float,
        default=30.0,
        help="most frames released per second (a camera's rate); a frame "
        "is also held until the previous one has left the pipeline",
    )
    add_model_arguments(ap, device=False)
    ap.add_argument(
        "--peer",
        choices=("on", "off"),
        default="on",
        help="on: run the MediaPipe peer (builds .venv-peer the first "
        "time, about a minute); off: skip it (peer_p50_ms: nulls)",
    )
    ap.add_argument(
        "--no-clips",
        dest="clips",
        action="store_false",
        help="skip the real clips in ../shared/data/video",
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if (
        not args.people
        or min(args.people) < 1
        or (args.frames or 1) < 1
        or args.fps <= 0
    ):
        raise BenchError("--people, --frames and --fps must be positive")
    args.people = sorted(set(args.people))
    main_record, details = run(args)
    out = Path(args.json)
    write_json(main_record, out)
    write_json(details, out.with_suffix(".details.json"))
    if args.doc:
        plot(main_record, details, PLOTS / "latency_vs_people.png")
        update_section("latency_vs_people", doc_section(main_record, details))
    for n, p50, p99, peer in zip(*main_record.values(), strict=True):
        print(f"{n:3d} people: p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  peer p50 {peer}")
    print(f"p50({max(args.people)}) / p50({min(args.people)}) = {details['ratio_p50']}")


if __name__ == "__main__":
    main_guard(main)
