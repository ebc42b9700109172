"""Same outputs from two trees: the decode and the streaming results, compared.

    python bench/equivalence.py inputs --out IN.npz [--clip PATH:I,J,...]...
    python bench/equivalence.py decode --tree DIR --inputs IN.npz --checkpoint CKPT \\
        --out DUMP.json [--runtime torch|onnxruntime] [--matcher pgd]
    python bench/equivalence.py record ADDRESS --out FEED.jsonl [--idle S]
    python bench/equivalence.py compare A B

How issue 13's "behaviour unchanged" was checked (docs/BENCHMARKS.md, "Restructure
equivalence"). `inputs` writes the decode benchmark's scenes once (bench.decode's
oracle maps of 1 and 30 people, and clip frames squeezed to the network input), so
both trees see the same arrays. `decode` imports DIR's code (DIR goes first on
sys.path: a checkout of an old commit works) and runs its graph decode
(`nets.model.InferenceModel`, the exported graph's module) on every input, eager
torch or DIR's own ONNX export in ONNX Runtime; the dump holds people, keypoints,
scores and the instance and part maps. `record` saves a run_stream.py --publish feed
(docs/FEED.md) one message a line. `compare` takes two decode dumps, two recorded
feeds, or two video files (decoded with PyAV) and prints one line per item that
differs and a summary; exit 1 when anything differs.

Only numpy, tqdm, torch, PyAV, pyzmq and pycocotools at the top: `decode` must import
the tree under test, not this one.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import sys
import time
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

OUTPUTS = ("keypoints", "person_scores", "person_valid", "instances", "parts")
VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "video"
DEFAULT_CLIPS = (
    f"{VIDEO / 'vtest.avi'}:0,30,100,200,400,600,790",
    f"{VIDEO / 'basketball_240p.mp4'}:0,50,100,150",
    f"{VIDEO / 'two_people_occlusion.mp4'}:0,35,70",
)


# ---- inputs -------------------------------------------------------------------------


def make_inputs(clips: list[str], out: Path, size: int | None) -> None:
    """The decode benchmark's oracle scenes (maps) and clip frames (images) -> npz,
    at `size` px (default: the default config's input size; a checkpoint's must match
    for the onnxruntime dump, whose export has a fixed size)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.decode import oracle_maps
    from configs import load_config
    from tests.clips import squeezed_frames

    cfg = load_config()
    cfg["input_size"] = size or cfg["input_size"]
    arrays: dict[str, np.ndarray] = {}
    for people in (1, 30):
        for key, value in oracle_maps(cfg, people).items():
            arrays[f"maps/{people} people/{key}"] = value
    for spec in clips:
        path, _, picks = spec.rpartition(":")
        try:
            indices = [int(i) for i in picks.split(",")]
        except ValueError:
            raise SystemExit(f"error: --clip {spec}: want PATH:I,J,...") from None
        if not Path(path).is_file():
            raise SystemExit(f"error: {path or spec} not found")
        frames = squeezed_frames(Path(path), indices, int(cfg["input_size"]))
        if len(frames) != len(indices):
            raise SystemExit(f"error: {path} has fewer frames than {max(indices) + 1}")
        for i, image in zip(indices, frames, strict=True):
            arrays[f"image/{Path(path).name} frame {i}"] = image
    np.savez_compressed(out, **arrays)
    print(f"{out}: {len(_groups(arrays))} inputs")


def _groups(keys: Any) -> list[str]:
    """Input names: "maps/<scene>" (one key per map under it) or "image/<frame>"."""
    return sorted({"/".join(k.split("/")[:2]) for k in keys})


# ---- decode dump --------------------------------------------------------------------


def _pack(a: np.ndarray) -> dict[str, Any]:
    a = np.ascontiguousarray(a)
    data = base64.b64encode(zlib.compress(a.tobytes())).decode()
    return {"dtype": str(a.dtype), "shape": list(a.shape), "zlib_b64": data}


def _unpack(d: dict[str, Any]) -> np.ndarray:
    raw = zlib.decompress(base64.b64decode(d["zlib_b64"]))
    return np.frombuffer(raw, d["dtype"]).reshape(d["shape"])


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _onnx_images(module: Any, size: int, folder: Path) -> Any:
    """images -> outputs by name, through the tree's own ONNX export of `module`."""
    from nets.export import export_onnx

    session = _session(export_onnx(module, folder / "graph.onnx", size))
    names = [o.name for o in session.get_outputs()]
    return lambda images: dict(
        zip(names, session.run(None, {"images": images}), strict=True)
    )


def _onnx_maps(cfg: dict, matcher: str, maps: dict, path: Path) -> dict:
    """The tree's `decode_fixed` alone, traced on `maps`, run in ONNX Runtime (old
    trees have no decode-only export of their own, so this one serves both)."""
    import torch

    from nets.decode import decode_fixed

    names = sorted(maps)

    class Decode(torch.nn.Module):
        def forward(self, *tensors: Any) -> tuple:
            out = decode_fixed(dict(zip(names, tensors, strict=True)), cfg, matcher)
            return tuple(out[k] for k in OUTPUTS)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notices
        torch.onnx.export(
            Decode(),
            tuple(maps[k] for k in names),
            str(path),
            input_names=[f"in_{k}" for k in names],
            output_names=list(OUTPUTS),
            opset_version=17,
            dynamo=False,
        )
    values = _session(path).run(None, {f"in_{k}": maps[k].numpy() for k in names})
    return dict(zip(OUTPUTS, values, strict=True))


def decode_dump(args: argparse.Namespace) -> None:
    """Run DIR's graph decode on every input and write the JSON dump."""
    tree = Path(args.tree).resolve()
    sys.path.insert(0, str(tree))
    import torch

    torch.set_num_threads(1)
    from nets.decode import decode_fixed
    from nets.model import InferenceModel, load_checkpoint

    model, cfg = load_checkpoint(args.checkpoint)
    module = InferenceModel(model.eval(), cfg, args.matcher).eval()
    inputs = np.load(args.inputs)
    onnx = args.runtime == "onnxruntime"
    folder = Path(args.out).with_suffix(".export")
    size = int(cfg["input_size"])
    shapes = {inputs[k].shape[-1] for k in inputs.files if k.startswith("image/")}
    if onnx and shapes - {size}:
        raise SystemExit(
            f"error: {args.inputs} holds {sorted(shapes)} px images, the checkpoint's "
            f"fixed-size export takes {size} px: make them with `inputs --size {size}`"
        )
    if onnx:
        folder.mkdir(parents=True, exist_ok=True)
        run = _onnx_images(module, size, folder)
    items = {}
    for group in tqdm(_groups(inputs.files), desc=f"decode ({tree.name})"):
        kind, name = group.split("/", 1)
        if kind == "maps":
            maps = {
                k.split("/")[2]: torch.from_numpy(inputs[k])
                for k in inputs.files
                if k.startswith(group + "/")
            }
            if onnx:
                out = _onnx_maps(cfg, args.matcher, maps, folder / "decode.onnx")
            else:
                with torch.inference_mode():
                    out = decode_fixed(maps, cfg, args.matcher)
        elif onnx:
            out = run(inputs[group])
        else:
            with torch.inference_mode():
                out = module(torch.from_numpy(inputs[group]))
        out = {k: np.asarray(v) for k, v in out.items()}
        items[f"{kind}: {name}"] = {
            "people": int(out["person_valid"][0].astype(bool).sum()),
            **{k: _pack(out[k][0]) for k in OUTPUTS},
        }
    record = {
        "kind": "decode",
        "tree": str(tree),
        "checkpoint": str(args.checkpoint),
        "runtime": args.runtime,
        "matcher": args.matcher,
        "items": items,
    }
    Path(args.out).write_text(json.dumps(record))
    people = ", ".join(f"{k}: {v['people']}" for k, v in items.items())
    print(f"{args.out}: {len(items)} inputs; people {people}")


# ---- feed recorder ------------------------------------------------------------------


def record_feed(args: argparse.Namespace) -> None:
    """Subscribe to a results feed and write every message, one JSON a line, until it
    has been silent for --idle seconds after its first message (or --wait before)."""
    import zmq

    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    try:
        sock.connect(args.address)
    except zmq.ZMQError as exc:
        raise SystemExit(f"error: cannot connect to {args.address}: {exc}") from None
    count, deadline = 0, time.monotonic() + args.wait
    with open(args.out, "w") as f:
        while time.monotonic() < deadline:
            if sock.poll(200):
                f.write(sock.recv().decode() + "\n")
                count += 1
                deadline = time.monotonic() + args.idle
    print(f"{args.out}: {count} messages")


# ---- comparison ---------------------------------------------------------------------


def _show(diffs: list[str], limit: int = 50) -> None:
    """The first `limit` differences, one a line, and how many more there are."""
    for line in diffs[:limit]:
        print(line)
    if len(diffs) > limit:
        print(f"... {len(diffs) - limit} more")


def _kind(path: Path) -> str:
    if path.suffix == ".jsonl":
        return "feed"
    if path.suffix == ".json":
        return "decode"
    return "video"


def compare_decode(a: dict, b: dict) -> list[str]:
    diffs, stats = [], {"kp": 0.0, "score": 0.0, "inst": 0, "parts": 0, "pixels": 0}
    for name in sorted(set(a["items"]) | set(b["items"])):
        if name not in a["items"] or name not in b["items"]:
            diffs.append(f"{name}: only in {'A' if name in a['items'] else 'B'}")
            continue
        x, y = a["items"][name], b["items"][name]
        arr = {k: (_unpack(x[k]), _unpack(y[k])) for k in OUTPUTS}
        valid = arr["person_valid"][0].astype(bool) | arr["person_valid"][1]
        problems = []
        if x["people"] != y["people"]:
            problems.append(f"people {x['people']} vs {y['people']}")
        if not np.array_equal(*arr["person_valid"]):
            problems.append("person slots differ")
        kp = float(
            np.abs(np.subtract(*arr["keypoints"], dtype=np.float64))[valid].max(
                initial=0
            )
        )
        sc = float(
            np.abs(np.subtract(*arr["person_scores"], dtype=np.float64))[valid].max(
                initial=0
            )
        )
        inst = int((arr["instances"][0] != arr["instances"][1]).sum())
        parts = int((arr["parts"][0] != arr["parts"][1]).sum())
        stats["kp"], stats["score"] = max(stats["kp"], kp), max(stats["score"], sc)
        stats["inst"] += inst
        stats["parts"] += parts
        stats["pixels"] += arr["parts"][0].size
        if kp > 0:
            problems.append(f"keypoints max |d| {kp:.4g} px")
        if sc > 0:
            problems.append(f"scores max |d| {sc:.3g}")
        if inst or parts:
            problems.append(f"instance map {inst} px, part map {parts} px differ")
        line = f"{name}: {x['people']} people"
        diffs.append(line + (": " + "; ".join(problems) if problems else ", same"))
    if diffs:
        print("\n".join(diffs))
    print(
        f"summary: {len(a['items'])} inputs; max keypoint |d| {stats['kp']:.3g} px, "
        f"max score |d| {stats['score']:.3g}, map pixels differing: instances "
        f"{stats['inst']}, parts {stats['parts']} of {stats['pixels']}"
    )
    return [d for d in diffs if not d.endswith(", same")]


def _load_feed(path: Path) -> dict[int, dict]:
    return {m["frame"]: m for m in map(json.loads, path.read_text().splitlines())}


def _mask(rle: dict) -> np.ndarray:
    from pycocotools import mask as coco_mask

    return coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode()})


def compare_feed(a: dict[int, dict], b: dict[int, dict]) -> list[str]:
    """Frame by frame: people (in feed order), scores, keypoints, track ids, masks."""
    diffs = []
    worst = {"kp": 0.0, "score": 0.0, "mask_px": 0, "people": 0}
    for frame in sorted(set(a) | set(b)):
        if frame not in a or frame not in b:
            diffs.append(f"frame {frame}: only in {'A' if frame in a else 'B'}")
            continue
        pa, pb = a[frame]["people"], b[frame]["people"]
        worst["people"] += len(pa)
        if len(pa) != len(pb):
            diffs.append(f"frame {frame}: {len(pa)} vs {len(pb)} people")
            continue
        problems = []
        ids = [p["track_id"] for p in pa], [p["track_id"] for p in pb]
        if ids[0] != ids[1]:
            problems.append(f"track ids {ids[0]} vs {ids[1]}")
        for i, (x, y) in enumerate(zip(pa, pb, strict=True)):
            kp = float(np.abs(np.subtract(x["keypoints"], y["keypoints"])).max())
            sc = abs(x["score"] - y["score"])
            px = int((_mask(x["mask"]) != _mask(y["mask"])).sum())
            if set(x["parts"]) != set(y["parts"]):
                problems.append(
                    f"person {i}: parts {sorted(x['parts'])} vs {sorted(y['parts'])}"
                )
            else:
                px += sum(
                    int((_mask(x["parts"][n]) != _mask(y["parts"][n])).sum())
                    for n in x["parts"]
                )
            worst["kp"], worst["score"] = max(worst["kp"], kp), max(worst["score"], sc)
            worst["mask_px"] += px
            if kp > 0 or sc > 0 or px:
                problems.append(
                    f"person {i}: keypoints |d| {kp:.3g}, score |d| {sc:.3g}, "
                    f"mask px {px}"
                )
        if problems:
            diffs.append(f"frame {frame}: " + "; ".join(problems))
    _show(diffs)
    print(
        f"summary: frames A {len(a)}, B {len(b)}, common {len(set(a) & set(b))}; "
        f"{worst['people']} people in A; frames differing {len(diffs)}; max keypoint "
        f"|d| {worst['kp']:.3g} px, max score |d| {worst['score']:.3g}, mask pixels "
        f"differing {worst['mask_px']}"
    )
    return diffs


def _frames(path: Path) -> Any:
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def compare_video(a: Path, b: Path) -> list[str]:
    """Decoded frames: max abs difference and PSNR per frame, frame counts."""
    diffs, n, worst, low = [], 0, 0, math.inf
    sentinel = object()
    fa, fb = _frames(a), _frames(b)
    while True:
        x, y = next(fa, sentinel), next(fb, sentinel)
        if x is sentinel or y is sentinel:
            if x is not y:
                diffs.append(f"frame {n}: only in {'A' if y is sentinel else 'B'}")
            break
        if x.shape != y.shape:
            diffs.append(f"frame {n}: size {x.shape} vs {y.shape}")
        else:
            d = np.abs(x.astype(np.int16) - y).max()
            mse = float(np.mean((x.astype(np.float64) - y) ** 2))
            psnr = math.inf if mse == 0 else 10 * math.log10(255**2 / mse)
            worst, low = max(worst, int(d)), min(low, psnr)
            if d:
                diffs.append(f"frame {n}: max |d| {d}, PSNR {psnr:.1f} dB")
        n += 1
    _show(diffs)
    print(
        f"summary: {n} frames compared, {len(diffs)} differ; max |d| {worst}, "
        f"lowest PSNR {low:.1f} dB"
    )
    return diffs


def compare(args: argparse.Namespace) -> int:
    a, b = Path(args.a), Path(args.b)
    kind = _kind(a)
    if kind != _kind(b):
        raise SystemExit(f"error: {a} and {b} are not the same kind of file")
    if kind == "decode":
        diffs = compare_decode(json.loads(a.read_text()), json.loads(b.read_text()))
    elif kind == "feed":
        diffs = compare_feed(_load_feed(a), _load_feed(b))
    else:
        diffs = compare_video(a, b)
    return 1 if diffs else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python bench/equivalence.py",
        description=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("inputs", help="write the shared decode inputs (npz)")
    s.add_argument("--out", required=True, type=Path)
    s.add_argument(
        "--clip",
        action="append",
        metavar="PATH:I,J,...",
        help="clip frames to decode (default: three ../shared clips)",
    )
    s.add_argument("--size", type=int, help="network input px (default: the config's)")
    s = sub.add_parser("decode", help="dump a tree's graph decode of the inputs")
    s.add_argument("--tree", required=True, help="checkout whose code runs")
    s.add_argument("--inputs", required=True, type=Path)
    s.add_argument("--checkpoint", required=True, type=Path)
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("--runtime", choices=("torch", "onnxruntime"), default="torch")
    s.add_argument("--matcher", default="pgd", choices=("pgd", "greedy", "hungarian"))
    s = sub.add_parser("record", help="save a --publish results feed as JSON lines")
    s.add_argument("address", help="the feed's address, e.g. tcp://127.0.0.1:5555")
    s.add_argument("--out", required=True, type=Path)
    s.add_argument(
        "--idle",
        type=float,
        default=20.0,
        help="stop after this many silent seconds (default 20)",
    )
    s.add_argument(
        "--wait",
        type=float,
        default=600.0,
        help="give up if nothing arrives for this long (default 600)",
    )
    s = sub.add_parser("compare", help="compare two dumps, feeds (.jsonl) or videos")
    s.add_argument("a")
    s.add_argument("b")
    args = p.parse_args(argv)
    for name in ("inputs", "checkpoint", "a", "b"):
        path = getattr(args, name, None)
        if path is not None and not Path(path).is_file():
            print(f"error: {path} not found", file=sys.stderr)
            return 2
    if args.command == "inputs":
        make_inputs(args.clip or list(DEFAULT_CLIPS), args.out, args.size)
    elif args.command == "decode":
        decode_dump(args)
    elif args.command == "record":
        record_feed(args)
    else:
        return compare(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
