"""CLI: write synthetic scenes or clips as a COCO-style folder (see docs/SYNTH.md).

python -m trainers.synth --out DIR --count N --size 384 --people 1:15 --seed 0
python -m trainers.synth --out DIR --video --count 2 --frames 60 --preview
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
from tqdm import tqdm

from configs.records import Scene
from trainers.synth.coco_export import CocoWriter
from trainers.synth.compose import MAX_PEOPLE, generate_scene, scene_seed
from trainers.synth.preview import preview
from trainers.synth.video import generate_video

PREVIEWS = 8


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (no usage dump)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _people(text: str) -> tuple[int, int]:
    try:
        lo, _, hi = text.partition(":")
        pair = (int(lo), int(hi or lo))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected MIN:MAX or N, got '{text}'"
        ) from None
    if not 0 <= pair[0] <= pair[1] <= MAX_PEOPLE:
        raise argparse.ArgumentTypeError(
            f"need 0 <= MIN <= MAX <= {MAX_PEOPLE}: '{text}'"
        )
    return pair


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got '{text}'"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got '{text}'")
    return value


def _size(text: str) -> int:
    value = _positive(text)
    if value < 64:
        raise argparse.ArgumentTypeError(f"size must be at least 64, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m trainers.synth", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument(
        "--count", type=_positive, default=8, help="scenes (or clips with --video)"
    )
    p.add_argument("--size", type=_size, default=384, help="square image side, px")
    p.add_argument("--people", type=_people, default=(1, 15), help="MIN:MAX people")
    p.add_argument("--seed", type=_seed, default=0, help="base seed (>= 0)")
    p.add_argument("--video", action="store_true", help="write clips with track ids")
    p.add_argument("--frames", type=_positive, default=30, help="frames per clip")
    p.add_argument("--fps", type=float, default=15.0, help="clip frame rate")
    p.add_argument(
        "--preview", action="store_true", help=f"write {PREVIEWS} overlay PNGs"
    )
    p.add_argument("--backgrounds", type=str, default=None, help="folder of photos")
    p.add_argument(
        "--degrade", type=float, default=1.0, help="camera degradation, 0 = off"
    )
    return p


def _scenes(args: argparse.Namespace) -> Iterator[tuple[Scene, str, dict]]:
    opts = {"backgrounds": args.backgrounds, "degrade": args.degrade}
    if not args.video:
        for i in range(args.count):
            seed = scene_seed(args.seed, i)
            yield generate_scene(seed, args.size, args.people, **opts), f"{i:06d}", {}
        return
    for v in range(args.count):
        clip = generate_video(
            scene_seed(args.seed, v),
            args.size,
            args.frames,
            args.people,
            args.fps,
            **opts,
        )
        for f, scene in enumerate(clip):
            yield scene, f"v{v:04d}_f{f:05d}", {"video_id": v, "frame_id": f}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.fps <= 0:
        build_parser().error("--fps must be positive")
    if args.backgrounds and not Path(args.backgrounds).is_dir():
        build_parser().error(f"--backgrounds folder not found: {args.backgrounds}")
    info = {k: v if not isinstance(v, Path) else str(v) for k, v in vars(args).items()}
    writer = CocoWriter(args.out, info={"generator": "trainers.synth", "args": info})
    total = args.count * (args.frames if args.video else 1)
    every = max(1, total // PREVIEWS)
    if args.preview:
        (args.out / "preview").mkdir(parents=True, exist_ok=True)
    try:
        for k, (scene, name, fields) in enumerate(
            tqdm(_scenes(args), total=total, unit="frame" if args.video else "scene")
        ):
            writer.add(scene, name, **fields)
            if args.preview and k % every == 0 and k // every < PREVIEWS:
                pic = cv2.cvtColor(preview(scene), cv2.COLOR_RGB2BGR)
                cv2.imwrite(str(args.out / "preview" / f"{name}.png"), pic)
    except ValueError as exc:
        print(f"python -m trainers.synth: error: {exc}", file=sys.stderr)
        return 2
    path = writer.close()
    print(
        f"wrote {len(writer.images)} images, {len(writer.annotations)} people: {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
