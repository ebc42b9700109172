"""Pseudo-label real footage with the pretrained teachers, into the COCO-style folder
the synthetic export and the real loaders share (one loader path trains on all three).

    python -m trainers.pseudolabel --source FILE_OR_DIR [...] --out DIR [--every N]

Layout of DIR (trainers/synth/coco_export.py's, plus two things): images/NAME.jpg,
parts/NAME.png (fine ids, 255 part-ignore), instances/NAME.png (uint16),
confidence/NAME.png (uint8: the parsing teacher's top probability x 254, 255 = ignore
every loss there), annotations.json (COCO keypoints; joints under the threshold have
v = 0, every joint's teacher score is in `keypoint_scores`), and records/NAME.json, one
per finished frame: a frame counts as done once its record exists, so a killed run
resumes where it stopped (`annotations.json` is rebuilt from the records at the end and
every `--flush` frames). Fusion recipe: trainers/fusion.py. Validation clips
(configs/real_clips.yaml) are skipped unless --include-validation. Train on it with the
data spec `pseudo:DIR` (trainers/datasets/pseudo.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
from tqdm import tqdm

from configs import ConfigError, real_clips, taxonomy
from trainers.fusion import Fused, FusionConfig, fuse
from trainers.synth.coco_export import JPEG_PARAMS, mask_to_rle, person_category
from trainers.teachers import Teacher, TeacherError

VIDEO_EXT = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
FOLDERS = ("images", "parts", "instances", "confidence", "records")


def list_sources(
    paths: Sequence[str | Path], include_validation: bool = False
) -> tuple[list[tuple[Path, str]], list[Path]]:
    """(file, name prefix) of every video and image under `paths`, and the validation
    clips left out (and stills named like them). The prefix is the file's path under
    its source folder with '/' as '__', so photos in different folders never collide."""
    held_out = set(real_clips()["validation"])
    held_stems = {Path(name).stem for name in held_out}
    found: list[tuple[Path, str]] = []
    skipped: list[Path] = []
    for raw in paths:
        root = Path(raw)
        if root.is_file():
            files, base = [root], root.parent
        elif root.is_dir():
            files = sorted(
                p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXT | IMAGE_EXT
            )
            base = root
        else:
            raise ConfigError(f"source not found: {root}")
        for f in files:
            prefix = "__".join(f.relative_to(base).with_suffix("").parts)
            if (f.name in held_out or prefix in held_stems) and not include_validation:
                skipped.append(f)
                continue
            found.append((f, prefix))
    return found, skipped


def spread(sources: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
    """Sources in a fixed pseudo-random order (a hash of the name): a run stopped
    early, or a training started on a partial folder, sees every kind of footage."""
    return sorted(sources, key=lambda s: zlib.crc32(s[1].encode()))


def clip_every(path: Path, every: int, per_clip: int | None) -> int:
    """The frame step for one source: `every`, widened so that a long video gives at
    most `per_clip` frames (a 30 s talking head would otherwise outweigh a crowd)."""
    if per_clip is None:
        return every
    return max(every, -(-frame_count(path, 1) // per_clip))


def frame_count(path: Path, every: int) -> int:
    """Frames `frames` will yield (from the container's frame count; images: 1)."""
    if path.suffix.lower() in IMAGE_EXT:
        return 1
    try:
        with av.open(str(path)) as container:
            n = container.streams.video[0].frames
    except (OSError, av.FFmpegError, IndexError):
        return 0
    return -(-n // every) if n else 0


def frames(path: Path, every: int) -> Iterator[tuple[int, Any]]:
    """(index, frame) of every `every`-th frame; a frame is an av.VideoFrame or, for a
    photo, an RGB array: `to_rgb` turns either into H x W x 3 uint8 (decoding the
    skipped and resumed frames costs no colour conversion)."""
    if path.suffix.lower() in IMAGE_EXT:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ConfigError(f"cannot read image {path}")
        yield 0, np.ascontiguousarray(image[:, :, ::-1])
        return
    try:
        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i % every == 0:
                    yield i, frame
    except (OSError, av.FFmpegError) as exc:
        raise ConfigError(f"cannot read video {path}: {exc}") from exc


def to_rgb(frame: Any, max_side: int) -> np.ndarray:
    """RGB uint8, scaled down so its longer side is at most `max_side`."""
    image = frame if isinstance(frame, np.ndarray) else frame.to_ndarray(format="rgb24")
    h, w = image.shape[:2]
    scale = max_side / max(h, w)
    if scale < 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


def annotations(fused: Fused) -> list[dict[str, Any]]:
    """COCO annotations of one fused frame (ids and image ids filled in by `collect`).
    People without a mask carry no `segmentation`: the loader draws them from their
    keypoints, the band around ignored."""
    scene = fused.scene
    out = []
    for k in range(scene.num_people):
        kp = scene.keypoints[k]
        ann: dict[str, Any] = {
            "category_id": 1,
            "keypoints": [round(float(v), 2) for v in kp.reshape(-1)],
            "keypoint_scores": [round(float(s), 3) for s in fused.keypoint_scores[k]],
            "num_keypoints": int((kp[:, 2] > 0).sum()),
            "score": round(float(fused.scores[k]), 4),
            "iscrowd": 0,
            "track_id": -1,
            "instance_id": k + 1,
        }
        if fused.has_mask[k]:
            mask = scene.instances == k + 1
            ys, xs = np.nonzero(mask)
            x0, y0 = int(xs.min()), int(ys.min())
            ann["bbox"] = [x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0]
            ann["area"] = int(mask.sum())
            ann["segmentation"] = mask_to_rle(mask)
        else:
            pts = kp[kp[:, 2] > 0, :2]
            x0, y0 = pts.min(0)
            bw, bh = pts.max(0) - pts.min(0)
            ann["bbox"] = [round(float(v), 1) for v in (x0, y0, bw, bh)]
            ann["area"] = round(float(bw * bh), 1)
        out.append(ann)
    return out


def write_frame(out: Path, name: str, fused: Fused, fields: dict[str, Any]) -> None:
    """Images and maps first, the record last (atomically): the record marks it done."""
    scene = fused.scene
    bgr = cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(out / "images" / f"{name}.jpg"), bgr, JPEG_PARAMS)
    cv2.imwrite(str(out / "parts" / f"{name}.png"), scene.parts)
    cv2.imwrite(str(out / "instances" / f"{name}.png"), scene.instances)
    cv2.imwrite(str(out / "confidence" / f"{name}.png"), fused.confidence)
    h, w = scene.parts.shape
    record = {
        "image": {"file_name": f"{name}.jpg", "width": w, "height": h, **fields},
        "annotations": annotations(fused),
    }
    tmp = out / "records" / f"{name}.json.tmp"
    tmp.write_text(json.dumps(record))
    tmp.replace(out / "records" / f"{name}.json")


def collect(out: Path, info: dict[str, Any] | None = None) -> Path:
    """annotations.json from every finished frame's record (sorted by name)."""
    images, anns = [], []
    for image_id, path in enumerate(sorted((out / "records").glob("*.json")), 1):
        record = json.loads(path.read_text())
        images.append({"id": image_id, **record["image"]})
        for ann in record["annotations"]:
            anns.append({"id": len(anns) + 1, "image_id": image_id, **ann})
    data = {
        "info": {"description": "PartStream pseudo-labels (trainers.pseudolabel)",
                 **(info or {})},
        "images": images,
        "annotations": anns,
        "categories": [person_category()],
        "part_taxonomy": {"name": "fine", "classes": taxonomy("fine")["classes"]},
    }  # fmt: skip
    path = out / "annotations.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
    return path


def label(
    sources: list[tuple[Path, str]],
    out: Path,
    pose: Teacher,
    parse: Teacher,
    every: int = 1,
    max_side: int = 640,
    limit: int | None = None,
    flush: int = 200,
    cfg: FusionConfig | None = None,
    per_clip: int | None = None,
) -> dict[str, Any]:
    """Label every `every`-th frame (at most `per_clip` per video) of the sources not
    yet done; returns this run's counts and throughput (frames labelled per second,
    decoding included). The recipe (`recipe_of` the fusion config and the pose
    teacher) is written with every run and must match the folder's earlier runs: one
    folder, one recipe."""
    recipe = recipe_of(cfg or FusionConfig(), getattr(pose, "refine", False))
    check_recipe(out, recipe)
    for sub in FOLDERS:
        (out / sub).mkdir(parents=True, exist_ok=True)
    done = {p.stem for p in (out / "records").glob("*.json")}
    steps = {path: clip_every(path, every, per_clip) for path, _ in sources}
    total = sum(frame_count(path, steps[path]) for path, _ in sources)
    labelled = skipped = people = 0
    start = time.perf_counter()
    bar = tqdm(total=total, desc="pseudo-label", unit="frame", dynamic_ncols=True)
    with bar:
        for path, prefix in sources:
            is_video = path.suffix.lower() in VIDEO_EXT
            for index, frame in frames(path, steps[path]):
                bar.update(1)
                name = f"{prefix}__f{index:06d}" if is_video else prefix
                if name in done:
                    skipped += 1
                    continue
                image = to_rgb(frame, max_side)
                fused = fuse(image, pose(image), parse(image), cfg)
                fields = {"source": prefix}
                if is_video:
                    fields["frame_id"] = index
                write_frame(out, name, fused, fields)
                labelled += 1
                people += fused.scene.num_people
                if flush and labelled % flush == 0:
                    collect(out)
                if limit is not None and labelled >= limit:
                    break
            if limit is not None and labelled >= limit:
                break
    seconds = time.perf_counter() - start
    stats = {
        "labelled": labelled,
        "resumed_past": skipped,
        "people": people,
        "seconds": round(seconds, 1),
        "frames_per_second": round(labelled / seconds, 3) if seconds > 0 else 0.0,
        "every": every,
        "per_clip": per_clip,
        "max_side": max_side,
        "recipe": recipe,
    }
    collect(out, {"last_run": stats})
    log = out / "runs.jsonl"
    with open(log, "a") as f:
        f.write(json.dumps(stats) + "\n")
    return stats


def recipe_of(cfg: FusionConfig, refine: bool) -> dict[str, Any]:
    """What differs from the default recipe: the fusion's settings that are not
    FusionConfig's defaults, and MoveNet's crop pass where `refine`."""
    default = asdict(FusionConfig())
    recipe = {k: v for k, v in asdict(cfg).items() if v != default[k]}
    if refine:
        recipe["refine"] = True
    return recipe


def check_recipe(out: Path, recipe: dict[str, Any]) -> None:
    """ConfigError if an earlier run into `out` recorded another recipe (runs before
    recipes were recorded count as the defaults')."""
    log = out / "runs.jsonl"
    if not log.is_file():
        return
    for line in log.read_text().splitlines():
        earlier = json.loads(line).get("recipe", {})
        if earlier != recipe:
            raise ConfigError(
                f"{out} was labelled with {earlier or 'the default recipe'}, not "
                f"{recipe or 'the default recipe'}: use another --out"
            )


def default_teachers(threads: int = 1, refine: bool = False) -> tuple[Teacher, Teacher]:
    """(pose teacher, parsing teacher): MoveNet MultiPose (with its crop pass where
    `refine`) and BodyPix 2, their files read from ../shared/models; `threads` for
    LiteRT (torch's are set globally). One thread is the fast choice on a crowded CPU:
    threads of one op wait on each other."""
    from trainers.teachers.bodypix import BodyPixTeacher
    from trainers.teachers.movenet import MoveNetTeacher

    return MoveNetTeacher(refine=refine), BodyPixTeacher(threads=threads)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trainers.pseudolabel", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--source", nargs="+", required=True, help="videos, photos "
                        "or folders of them (searched recursively)")  # fmt: skip
    parser.add_argument("--out", required=True, help="output folder (resumed if it "
                        "holds records)")  # fmt: skip
    parser.add_argument("--every", type=int, default=1, help="label every N-th frame")
    parser.add_argument("--max-side", type=int, default=640, help="frames are "
                        "scaled down to this longer side before labelling")  # fmt: skip
    parser.add_argument("--per-clip", type=int, help="at most this many frames of "
                        "one video (its step widened)")  # fmt: skip
    parser.add_argument("--limit", type=int, help="stop after labelling this many")
    parser.add_argument("--flush", type=int, default=200, help="rewrite "
                        "annotations.json every N labelled frames")  # fmt: skip
    parser.add_argument("--include-validation", action="store_true",
                        help="label the validation clips of configs/real_clips.yaml "
                        "too (never for training)")  # fmt: skip
    parser.add_argument("--refine", action="store_true", help="MoveNet looks "
                        "again at each person on a crop around them (slower; "
                        "its OKS AP 17.9 -> 23.9, docs/MODEL.md)")  # fmt: skip
    parser.add_argument("--joint-threshold", type=float,
                        default=FusionConfig.joint_threshold, help="MoveNet "
                        "joints scored at least this are labelled")  # fmt: skip
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        if args.every < 1 or args.max_side < 32 or (args.per_clip or 1) < 1:
            raise ConfigError("--every, --per-clip must be >= 1, --max-side >= 32")
        fusion = FusionConfig(joint_threshold=args.joint_threshold)
        if not fusion.unsure_joint <= fusion.joint_threshold <= 1:
            raise ConfigError(
                f"--joint-threshold must be in [{fusion.unsure_joint}, 1] (below it "
                "joints get ignore disks)"
            )
        # before the teachers load: a folder with another recipe fails at once
        check_recipe(Path(args.out), recipe_of(fusion, args.refine))
        import torch

        torch.set_num_threads(args.threads)
        sources, held_out = list_sources(args.source, args.include_validation)
        if held_out:
            print(f"left out {len(held_out)} validation clips (real_clips.yaml)")
        if not sources:
            raise ConfigError("no videos or images found in --source")
        pose, parse = default_teachers(args.threads, args.refine)
        stats = label(spread(sources), Path(args.out), pose, parse, args.every,
                      args.max_side, args.limit, args.flush, fusion,
                      per_clip=args.per_clip)  # fmt: skip
    except (ConfigError, TeacherError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    print(
        f"labelled {stats['labelled']} frames ({stats['people']} people) in "
        f"{stats['seconds']} s: {stats['frames_per_second']} frames/s; "
        f"{stats['resumed_past']} already done; {args.out}/annotations.json"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
