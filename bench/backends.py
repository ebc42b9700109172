"""Backends: torch eager, ONNX Runtime, OpenVINO f32 and bf16 on the default model.

    python -m bench.backends [--quick] [--threads N] --json OUT [--doc]

For each input size, the shipped model (image in, fused decode, five tensors out) is
exported once and run by every backend on the same synthetic frame: median and p90
milliseconds, FPS, and parity with torch (keypoints of people both call valid, person
validity, part and instance maps). The network alone (activated maps, no decode) is
exported beside it, so the fused decode's share of each backend's time is measured as
the difference, and its eager cost is timed directly on 1- and 30-person frames.
MoveNet MultiPose's network runs beside them in turns (when ../shared has it), so
every row has the ratio network / MoveNet that issue 12's speed budget is. Then, on
one thread at 256 and 384 px (`bench.network_cost`): the shipped network beside
MoveNet and slimmer-head variants (speed only, untrained), and the shipped network's
time part by part.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from bench.common import (
    BenchError,
    machine,
    machine_line,
    main_guard,
    parser,
    percentiles,
    time_alternating,
    time_ms,
    write_json,
)
from bench.decode import CLIP, clip_images
from bench.network_cost import (
    doc_tables,
    load_reference,
    networks,
    one_thread_rows,
    part_times,
    ratio,
)
from bench.report import table, update_section
from configs.cli import add_checkpoint
from nets.decode import decode_fixed
from nets.export import export_onnx
from nets.model import (
    InferenceModel,
    NetworkModel,
    activations,
    load_model,
    weights_path,
)
from nets.runtimes import (
    NativeDecoded,
    OnnxRuntime,
    OpenVinoRuntime,
    TorchRuntime,
    openvino_bf16_supported,
)
from trainers.synth import generate_scene

BACKENDS = ("torch", "onnxruntime", "openvino-f32", "openvino-bf16")
ONE_THREAD_SIZES = (256, 384)  # issue 12's two budgets (12 and 25 ms)


def frame(size: int, people: int, seed: int = 0) -> np.ndarray:
    """A 1 x 3 x size x size float32 synthetic frame in [0, 1]."""
    image = generate_scene(seed, size, people=(people, people)).image
    return (image.transpose(2, 0, 1)[None] / 255.0).astype(np.float32)


def runtime(backend: str, module: nn.Module, onnx_path: Path, threads: int) -> Any:
    if backend == "torch":
        return TorchRuntime(module, threads)
    if backend == "onnxruntime":
        return OnnxRuntime(onnx_path, threads)
    return OpenVinoRuntime(onnx_path, threads, backend.split("-")[1])


def person_distance_px(ref: np.ndarray, out: np.ndarray) -> float:
    """Worst over ref's people of the mean joint distance to the closest out person.

    People are matched as sets, not by slot: a backend may order equal-score people
    differently. Joints absent (score 0) in ref do not count; no partner is inf.
    """
    worst = 0.0
    for person in ref:
        present = person[:, 2] > 0
        if not present.any():
            continue
        if not len(out):
            return float("inf")
        d = np.linalg.norm(out[:, present, :2] - person[present, :2], axis=-1)
        worst = max(worst, float(d.mean(-1).min()))
    return worst


def parity(ref: dict[str, np.ndarray], out: dict[str, np.ndarray]) -> dict[str, float]:
    """How far a backend's decode outputs are from torch's on the same frame."""
    valid_ref, valid_out = ref["person_valid"][0], out["person_valid"][0]
    return {
        "people": int(valid_ref.sum()),
        "people_out": int(valid_out.sum()),
        "keypoint_px": person_distance_px(
            ref["keypoints"][0][valid_ref], out["keypoints"][0][valid_out]
        ),
        "parts_agree": float((ref["parts"] == out["parts"]).mean()),
        "instances_agree": float((ref["instances"] == out["instances"]).mean()),
    }


def map_parity(ref: dict[str, np.ndarray], out: dict[str, np.ndarray]) -> float:
    """Largest difference over the network's activated maps, relative to their range."""
    worst = 0.0
    for name, value in ref.items():
        scale = float(np.abs(value).max()) or 1.0
        worst = max(worst, float(np.abs(value - out[name]).max()) / scale)
    return worst


def bf16_gate(model: nn.Module, cfg: dict, frames: int, tmp: Path) -> dict[str, Any]:
    """The accuracy gate bf16 must pass to be the default precision (issue 14): the
    native decode of OpenVINO bf16 maps finds the same people as of f32 maps (same
    count, every joint within 1 px) on `frames` real frames of vtest.avi."""
    if not openvino_bf16_supported():
        return {"supported": False, "frames": 0, "same": 0, "passed": False}
    if not CLIP.is_file():
        raise BenchError(f"the bf16 gate needs {CLIP}")
    size = int(cfg["input_size"])
    path = export_onnx(NetworkModel(model).eval(), tmp / f"gate_{size}.onnx", size)
    runs = {p: NativeDecoded(OpenVinoRuntime(path, 1, p), cfg) for p in ("f32", "bf16")}
    same = 0
    for images in clip_images(list(range(0, 10 * frames, 10)), size):
        f32, bf16 = (runs[p].run(images) for p in ("f32", "bf16"))
        found = parity(f32, bf16)
        same += found["people"] == found["people_out"] and found["keypoint_px"] <= 1.0
    return {"supported": True, "frames": frames, "same": same, "passed": same == frames}


def bench_size(
    model: nn.Module,
    cfg: dict,
    size: int,
    backends: list[str],
    repeats: int,
    warmup: int,
    threads: int,
    tmp: Path,
    reference: nn.Module | None = None,
) -> list[dict]:
    """One row per backend at `size`: the fused graph, the network alone and (with a
    `reference` network, MoveNet) the reference alone, timed in turns."""
    modules = {
        "full": InferenceModel(model, cfg).eval(),
        "net": NetworkModel(model).eval(),
    }
    if reference is not None:
        modules["reference"] = reference
    paths = {
        name: export_onnx(module, tmp / f"{name}_{size}.onnx", size)
        for name, module in modules.items()
    }
    images = frame(size, people=5)
    rows, ref, ref_maps = [], None, None
    for backend in backends:
        rts = {
            name: runtime(backend, module, paths[name], threads)
            for name, module in modules.items()
        }
        out, maps = rts["full"].run(images), rts["net"].run(images)
        ref, ref_maps = (out, maps) if ref is None else (ref, ref_maps)
        times = time_alternating(
            {name: (lambda rt=rt: rt.run(images)) for name, rt in rts.items()},
            repeats,
            warmup,
        )
        p_full = percentiles(times["full"], (50, 90))
        p_net = percentiles(times["net"], (50, 90))
        movenet = (
            percentiles(times["reference"])["p50"] if reference is not None else None
        )
        rows.append(
            {
                "size": size,
                "backend": backend,
                "median_ms": p_full["p50"],
                "p90_ms": p_full["p90"],
                "fps": round(1000.0 / p_full["p50"], 1),
                "network_ms": p_net["p50"],
                "decode_ms": round(p_full["p50"] - p_net["p50"], 3),
                "map_rel_err": map_parity(ref_maps, maps),
                **parity(ref, out),
                "movenet_ms": movenet,
                "network_vs_movenet": ratio(p_net["p50"], movenet),
            }
        )
    return rows


def eager_decode(
    model: nn.Module, cfg: dict, size: int, repeats: int, matchers: tuple[str, ...]
) -> dict:
    """Eager-torch decode time on the network's maps for 1- and 30-person frames."""
    out = {}
    with torch.inference_mode():
        for people in (1, 30):
            maps = activations(model(torch.from_numpy(frame(size, people, seed=1))))
            for matcher in matchers:
                ms = time_ms(lambda m=maps, k=matcher: decode_fixed(m, cfg, k), repeats)
                out[f"{matcher}_{people}"] = percentiles(ms)["p50"]
    return out


def run(args: Any) -> dict[str, Any]:
    threads = args.threads
    torch.set_num_threads(threads)
    info = machine()
    model, cfg = load_model(args.checkpoint)
    model.eval()
    sizes = [256] if args.quick else [256, 384, 512]
    repeats, warmup = (3, 1) if args.quick else (30, 3)
    matchers = ("pgd",) if args.quick else ("pgd", "greedy", "hungarian")
    backends = [
        b for b in BACKENDS if b != "openvino-bf16" or openvino_bf16_supported()
    ]
    path = weights_path(args.checkpoint)
    weights = "random" if path is None else args.checkpoint or "nets/weights/default.pt"
    reference, note = load_reference()
    nets = networks(model, cfg, reference, trained=path is not None)
    one_sizes = ONE_THREAD_SIZES[:1] if args.quick else ONE_THREAD_SIZES
    rows, one_thread, parts = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-backends-") as tmp:
        for size in tqdm(sizes, desc="sizes"):
            rows += bench_size(
                model,
                cfg,
                size,
                backends,
                repeats,
                warmup,
                threads,
                Path(tmp),
                reference,
            )
        for size in tqdm(one_sizes, desc="one thread"):
            images = frame(size, people=5)
            one_thread += one_thread_rows(nets, images, repeats, warmup, Path(tmp))
            parts.append(part_times(model, images, repeats, warmup, Path(tmp)))
        gate = bf16_gate(model, cfg, 3 if args.quick else 30, Path(tmp))
    decode = eager_decode(model, cfg, int(cfg["input_size"]), repeats, matchers)
    return {
        "machine": info,
        "weights": weights,
        "threads": threads,
        "repeats": repeats,
        "warmup": warmup,
        "rows": rows,
        "eager_decode_ms": decode,
        "bf16_gate": gate,
        "movenet": {"available": reference is not None, "note": note},
        "one_thread": one_thread,
        "parts": parts,
    }


def doc_section(record: dict[str, Any]) -> str:
    header = [
        "size",
        "backend",
        "median ms",
        "p90 ms",
        "FPS",
        "network ms",
        "MoveNet ms",
        "network / MoveNet",
        "decode ms",
        "map rel. err",
        "people (torch / this)",
        "keypoint px",
        "parts agree",
        "inst. agree",
    ]
    rows = [
        [
            r["size"],
            r["backend"],
            r["median_ms"],
            r["p90_ms"],
            r["fps"],
            r["network_ms"],
            "-" if r.get("movenet_ms") is None else r["movenet_ms"],
            "-"
            if r.get("network_vs_movenet") is None
            else f"{r['network_vs_movenet']:.2f}",
            r["decode_ms"],
            f"{r['map_rel_err']:.1e}",
            f"{r['people']} / {r['people_out']}",
            r["keypoint_px"],
            r["parts_agree"],
            r["instances_agree"],
        ]
        for r in record["rows"]
    ]
    d = record["eager_decode_ms"]
    matchers = sorted({k.rsplit("_", 1)[0] for k in d})
    decode_rows = [[m, d[f"{m}_1"], d[f"{m}_30"]] for m in matchers]
    return "\n\n".join(
        [
            machine_line(record["machine"]),
            f"Weights: {record['weights']}; {record['threads']} threads per backend; "
            f"median of {record['repeats']} runs after {record['warmup']} warm-up "
            "runs; parity against torch eager on the same 5-person frame: map rel. "
            "err is the largest difference of the network's activated maps over their "
            "range; keypoint px the worst, over torch's people, mean joint distance "
            "to the closest person of this backend (people matched as sets). "
            "MoveNet ms: MoveNet MultiPose's network alone, same backend and "
            "threads, timed in turns with this model's graphs.",
            table(header, rows),
            "Eager-torch decode alone (ms, median) on the network's maps:",
            table(["matcher", "1 person", "30 people"], decode_rows),
            *([bf16_line(record["bf16_gate"])] if "bf16_gate" in record else []),
            *(doc_tables(record) if "one_thread" in record else []),
        ]
    )


def bf16_line(gate: dict[str, Any]) -> str:
    """What the bf16 accuracy gate found, and so which precision is the default."""
    if not gate["supported"]:
        return (
            "bf16 accuracy gate: this CPU has no bf16 in OpenVINO, so the gate "
            "cannot pass here; **f32 is the default**."
        )
    verdict = (
        "passed: bf16 may be the default"
        if gate["passed"]
        else "failed: **f32 stays the default**"
    )
    return (
        f"bf16 accuracy gate (native decode of OpenVINO bf16 vs f32 maps, "
        f"vtest.avi): same people on {gate['same']} of {gate['frames']} frames, "
        f"{verdict}."
    )


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="threads per backend")
    add_checkpoint(ap)
    args = ap.parse_args()
    if args.threads < 1:
        raise BenchError("--threads must be at least 1")
    record = run(args)
    write_json(record, args.json)
    if args.doc:
        update_section("backends", doc_section(record))
    for r in record["rows"]:
        print(
            f"{r['size']:4d} {r['backend']:14s} {r['median_ms']:7.2f} ms "
            f"{r['fps']:6.1f} FPS  decode {r['decode_ms']:6.2f} ms"
        )


if __name__ == "__main__":
    main_guard(main)
