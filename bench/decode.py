"""Decode engines side by side: native (numba, outside the graph) and graph (fused).

    python -m bench.decode [--quick] --json OUT [--doc]

The decode alone, batch 1, one thread, at the shipped model's input size and decode
settings (its embedded config; the default config without it; K = P = 30):
decode-oracle maps of 1 and 30 people
(`trainers.targets.perfect_maps` of `generate_scene(n, people=(n, n))`) and the
shipped model's maps of a real frame (vtest.avi frame 30, when ../shared is there).
Engines: native (`nets.native.NativeDecoder`) as configured and with
`decode.complete_joints` off (what the joint completion costs) and with
`decode.vote_refine` 0 (what the vote refinement costs), graph (the decode
exported alone to ONNX with the config's in-graph matcher, in ONNX Runtime, 1 intra-op
thread). The native variants and the scenes alternate, the graph runs the scenes
alternately, so a change in the machine's load touches all alike. Wall-clock and
thread CPU p50 / p99 per scene; the headline is the native engine's wall p50 at 1 and
30 people and their ratio (goals: <= 3 ms, <= 1.05).
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.common import (
    machine,
    machine_line,
    main_guard,
    parser,
    time_turns,
    write_json,
)
from bench.report import table, update_section
from configs import load_config
from nets.export import DECODE_INPUTS, decode_onnx
from nets.native import NativeDecoder
from nets.similarity import KP_MIN_SCORE
from tests.clips import squeezed_frames
from trainers.synth import generate_scene
from trainers.targets import encode, perfect_maps

KEYS = DECODE_INPUTS
CLIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "vtest.avi"
GOAL_MS, GOAL_RATIO = 3.0, 1.05


def oracle_maps(cfg: dict[str, Any], people: int) -> dict[str, np.ndarray]:
    scene = generate_scene(people, size=cfg["input_size"], people=(people, people))
    maps = perfect_maps([encode(scene, cfg)], cfg)
    return {k: np.ascontiguousarray(maps[k].numpy()) for k in KEYS}


def clip_images(indices: list[int], size: int, path: Path = CLIP) -> list[np.ndarray]:
    """Frames of the benchmark clip squeezed to size x size (tests/clips.py)."""
    return squeezed_frames(path, indices, size)


def shipped() -> tuple[Any, dict[str, Any]]:
    """(the shipped model or None, its config or the default one): the decode is
    measured at the size and settings users run."""
    from nets.model import DEFAULT_WEIGHTS, load_checkpoint

    if not DEFAULT_WEIGHTS.is_file():
        return None, load_config()
    return load_checkpoint(DEFAULT_WEIGHTS)


def real_maps(model: Any, cfg: dict[str, Any]) -> dict[str, np.ndarray] | None:
    """The shipped model's activated maps of vtest.avi frame 30 (None without it)."""
    from nets.model import NetworkModel

    if model is None or not CLIP.is_file():
        return None
    images = torch.from_numpy(clip_images([30], int(cfg["input_size"]))[0])
    with torch.inference_mode():
        maps = NetworkModel(model.eval())(images)
    return {k: np.ascontiguousarray(maps[k].numpy()) for k in KEYS}


def graph_engine(cfg: dict[str, Any], example: dict[str, np.ndarray]) -> Any:
    """A callable maps -> outputs running the exported decode in ONNX Runtime."""
    import onnxruntime as ort

    graph = decode_onnx(cfg, tuple(torch.from_numpy(example[k]) for k in KEYS))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    return lambda maps: session.run(None, {f"in_{k}": maps[k] for k in KEYS})


def timed(
    fns: dict[str, Any], scenes: dict[str, dict], repeats: int
) -> dict[str, dict[str, dict]]:
    """Wall and thread-CPU ms per function and scene ({fn: {scene: stats}}), the
    functions and scenes taken in turns, after 3 warm-up calls of each."""
    calls = {
        (f, name): (lambda f=f, name=name: fns[f](scenes[name]))
        for f in fns
        for name in scenes
    }
    times = time_turns(calls, repeats, warmup=3)
    return {
        f: {
            name: {
                "wall_p50": _q(times[f, name]["wall"], 50),
                "wall_p99": _q(times[f, name]["wall"], 99),
                "cpu_p50": _q(times[f, name]["cpu"], 50),
                "runs": repeats,
            }
            for name in scenes
        }
        for f in fns
    }


def guesses(out: dict[str, np.ndarray]) -> int:
    """Joints of valid people the completion gave (0 < score <= KP_MIN_SCORE; a
    candidate scores above decode.candidate_threshold)."""
    kps = out["keypoints"][out["person_valid"]]
    return int(((kps[..., 2] > 0) & (kps[..., 2] <= KP_MIN_SCORE)).sum())


def _q(values: list[float], q: int) -> float:
    return round(float(np.percentile(values, q)), 3)


def run(quick: bool) -> dict[str, Any]:
    torch.set_num_threads(1)
    info = machine()
    model, cfg = shipped()
    scenes = {"1 person": oracle_maps(cfg, 1), "30 people": oracle_maps(cfg, 30)}
    real = None if quick else real_maps(model, cfg)
    if real is not None:
        scenes["vtest.avi frame 30 (shipped model)"] = real
    decoder = NativeDecoder(cfg)
    start = time.perf_counter()
    decoder(scenes["1 person"])  # numba: compiled or loaded from its cache
    first_ms = (time.perf_counter() - start) * 1e3
    people = {name: int(decoder(m)["person_valid"].sum()) for name, m in scenes.items()}
    guessed = {name: guesses(decoder(m)) for name, m in scenes.items()}
    without = copy.deepcopy(cfg)
    without["decode"]["complete_joints"] = False
    unrefined = copy.deepcopy(cfg)
    unrefined["decode"]["vote_refine"] = 0
    native = timed(
        {
            "native": decoder,
            "native_no_completion": NativeDecoder(without),
            "native_no_refine": NativeDecoder(unrefined),
        },
        scenes,
        30 if quick else 300,
    )
    graph = timed(
        {"graph": graph_engine(cfg, scenes["1 person"])}, scenes, 3 if quick else 30
    )["graph"]
    one = native["native"]["1 person"]["wall_p50"]
    crowd = native["native"]["30 people"]["wall_p50"]
    return {
        "machine": info,
        "input_size": cfg["input_size"],
        "top_k": cfg["decode"]["top_k"],
        "max_people": cfg["decode"]["max_people"],
        "graph_matcher": cfg["decode"]["matcher"],
        "complete_joints": bool(cfg["decode"]["complete_joints"]),
        "vote_refine": int(cfg["decode"]["vote_refine"]),
        "people_found": people,
        "joints_guessed": guessed,
        "native_first_call_ms": round(first_ms, 1),
        **native,
        "graph": graph,
        "native_p50_1": one,
        "native_p50_30": crowd,
        "native_ratio": round(crowd / one, 3),
        "native_cpu_ratio": round(
            native["native"]["30 people"]["cpu_p50"]
            / native["native"]["1 person"]["cpu_p50"],
            3,
        ),
    }


def doc_section(r: dict[str, Any]) -> str:
    rows, added, refined = [], [], []
    for name in r["native"]:
        n, g = r["native"][name], r["graph"][name]
        off = r["native_no_completion"][name]
        plain = r.get("native_no_refine", {}).get(name)
        rows.append(
            [
                name,
                r["people_found"][name],
                r["joints_guessed"][name],
                n["wall_p50"],
                n["wall_p99"],
                n["cpu_p50"],
                off["wall_p50"],
                off["cpu_p50"],
                "-" if plain is None else plain["cpu_p50"],
                g["wall_p50"],
                g["wall_p99"],
                g["cpu_p50"],
            ]
        )
        added.append(f"{n['cpu_p50'] - off['cpu_p50']:+.3f} ms ({name})")
        if plain is not None:
            refined.append(f"{n['cpu_p50'] - plain['cpu_p50']:+.3f} ms ({name})")
    ok_ms = max(r["native_p50_1"], r["native_p50_30"]) <= GOAL_MS
    ok_ratio = r["native_ratio"] <= GOAL_RATIO
    state = "on" if r["complete_joints"] else "off"
    return "\n\n".join(
        [
            machine_line(r["machine"]),
            "`python -m bench.decode`: the decode alone, batch 1, one thread, "
            f"{r['input_size']} px input (K = {r['top_k']} candidates per type, P = "
            f"{r['max_people']} person slots). Native: `nets.native` (numba, exact "
            f"matching; joint completion {state} as configured, and off); graph: the "
            "decode exported alone to ONNX (matcher "
            f"{r['graph_matcher']}) in ONNX Runtime. The native variants and the "
            "scenes alternate, the graph runs the scenes alternately; "
            f"{r['native']['1 person']['runs']} native and "
            f"{r['graph']['1 person']['runs']} graph runs per scene. CPU = the "
            "thread's CPU time (less sensitive to a shared machine than wall time). "
            "Guessed = joints the completion gave the people found. "
            f"The native engine's first call took {r['native_first_call_ms']} ms "
            "(numba's cache).",
            table(
                [
                    "maps",
                    "people",
                    "guessed",
                    "native p50 ms",
                    "native p99 ms",
                    "native CPU p50",
                    "no completion p50 ms",
                    "no completion CPU p50",
                    "no vote refinement CPU p50",
                    "graph p50 ms",
                    "graph p99 ms",
                    "graph CPU p50",
                ],
                rows,
            ),
            f"Native p50: **{r['native_p50_1']} ms** at 1 person, "
            f"**{r['native_p50_30']} ms** at 30; ratio **{r['native_ratio']}** (goals "
            f"<= {GOAL_MS} ms: {'met' if ok_ms else 'not met'}; <= {GOAL_RATIO}: "
            f"{'met' if ok_ratio else 'not met'}); by thread CPU time the ratio is "
            f"{r.get('native_cpu_ratio', '-')} (what differs: where 30 people's "
            "samples land in memory, top-K insertions, augmenting paths). The joint "
            "completion's share (CPU p50, as configured minus off): "
            + ", ".join(added)
            + (
                f"; the vote refinement's ({r['vote_refine']} steps): "
                + ", ".join(refined)
                if refined
                else ""
            )
            + ".",
        ]
    )


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    record = run(args.quick)
    write_json(record, args.json)
    if args.doc:
        update_section("decode", doc_section(record))
    for name in record["native"]:
        print(
            f"{name:40s} native p50 {record['native'][name]['wall_p50']:7.2f} ms  "
            f"graph p50 {record['graph'][name]['wall_p50']:7.2f} ms"
        )
    print(f"native p50(30) / p50(1) = {record['native_ratio']}")


if __name__ == "__main__":
    main_guard(main)
