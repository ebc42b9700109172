"""Score a model on held-out scenes with the field's metrics, in the paper's layout.

    python -m trainers.evaluate [--checkpoint C] --data synthetic [--count N --seed K]
                                [--json out.json] [--overlays DIR]
                                [--protocol official]
    python -m trainers.evaluate --data coco:PATH/annotations.json ...
    python -m trainers.evaluate --data real --json OUT [--clips DIR]

`--data real` scores the model beside its teachers on real people (real_eval.py).

No checkpoint: the shipped default model (nets/weights/default.pt). Synthetic scenes use
held-out seeds K .. K+N-1 (< 1_000_000, never trained on: trainers.data). Real data-set
scenes are letterboxed into the network input and scored in that grid, the padding
ignored. The worst scenes (lowest per-scene AP^p_50, then mIoU) are drawn as
ground-truth | prediction overlays. `--protocol official` reproduces the official
evaluation scripts' numbers where our default protocol is stricter
(trainers.metrics, "Two protocols").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch
from tqdm import tqdm

from configs import ConfigError
from configs.cli import add_checkpoint, check_input_size, still_input_size
from configs.errors import CheckpointError, DatasetError
from configs.letterbox import Letterbox
from configs.records import Prediction, Scene
from nets.decode import decode_fixed, to_predictions
from nets.matching import MATCHERS
from nets.model import InferenceModel, activations
from nets.model import load_model as load_weights
from trainers.augment import resize_to_input
from trainers.data import heldout_seeds, synthetic_scene, to_taxonomy
from trainers.metrics import PROTOCOLS, miou, part_ap
from trainers.metrics import evaluate as score
from trainers.plots import save_figure, save_overlays
from trainers.targets import MAP_GROUPS, encode, output_grid, perfect_maps
from trainers.teachers import TeacherError

# The paper's tables: MHP v2 (instance-level parts), PASCAL-Person-Part (regions), COCO.
TABLES = (
    (
        "MHP v2 protocol",
        (
            ("mIoU", "mIoU"),
            ("APp50", "AP^p_50"),
            ("APpvol", "AP^p_vol"),
            ("PCP50", "PCP_50"),
        ),
    ),
    (
        "PASCAL-Person-Part protocol",
        (
            ("APr50", "AP^r_50"),
            ("APr60", "AP^r_60"),
            ("APr70", "AP^r_70"),
            ("APrvol", "AP^r_vol"),
        ),
    ),
    ("COCO keypoints", (("OKS_AP", "OKS AP"),)),
)


def scenes_for(
    data: str, cfg: dict[str, Any], count: int, seed: int
) -> Iterator[Scene]:
    """Scenes at the network input size: held-out synthetic seeds or a data-set spec.

    Bad input (seeds reaching the training range, an unknown data set) fails here, at
    the call, not half-way through the progress bar."""
    if data == "synthetic":
        seeds = heldout_seeds(count, seed)
        return (synthetic_scene(s, cfg) for s in seeds)
    from trainers.datasets import open_dataset

    dataset = open_dataset(data)
    tax, size = cfg["model"]["taxonomy"], cfg["input_size"]
    picks = range(seed, min(len(dataset), seed + count))
    return (letterbox(to_taxonomy(dataset[i], tax), size) for i in picks)


def letterbox(scene: Scene, size: int) -> Scene:
    """Scene fitted into size x size with the padding marked ignore."""
    height, width = scene.parts.shape
    fitted = resize_to_input(scene, size)
    pad = Letterbox.fit(width, height, size).padding()
    fitted.ignore = pad if fitted.ignore is None else (fitted.ignore | pad)
    return fitted


def _batches(items: Iterable[Scene], size: int) -> Iterator[list[Scene]]:
    batch: list[Scene] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


@torch.inference_mode()
def predict(
    model: InferenceModel,
    scenes: list[Scene],
    grid: str = "input",
    oracle: Sequence[str] = (),
) -> list[Prediction]:
    """Run the exported graph (network + fused decode) on input-size scenes; maps come
    back upsampled to the input grid, or as they are for grid="output".

    `oracle` names map groups (`trainers.targets.MAP_GROUPS`) taken from the ground
    truth instead of the network, so one head can be scored with the others perfect
    (the DSPF ablation) or the cost of a weak head measured.
    """
    images = np.stack([s.image for s in scenes]).transpose(0, 3, 1, 2)
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    x = x.contiguous(memory_format=torch.channels_last)
    if oracle:
        maps = activations(model.model(x))
        truth = perfect_maps([encode(s, model.cfg) for s in scenes], model.cfg)
        maps.update({k: truth[k] for group in oracle for k in MAP_GROUPS[group]})
        out = decode_fixed(maps, model.cfg, model.matcher)
    else:
        out = model(x)
    return to_predictions(out, int(model.cfg["output_stride"]), grid)


def run(
    model: InferenceModel,
    cfg: dict[str, Any],
    scenes: Iterable[Scene],
    count: int,
    batch_size: int = 4,
    grid: str = "input",
    oracle: Sequence[str] = (),
    protocol: str = "ours",
) -> tuple[dict[str, Any], list[Scene], list[Prediction]]:
    """Predict every scene (progress bar) and score the lot, on the input grid or on
    the network's output grid (`trainers.targets.output_grid`); `oracle` as in
    `predict`, `protocol` as in `trainers.metrics`."""
    gts: list[Scene] = []
    preds: list[Prediction] = []
    with tqdm(total=count, desc="evaluate", unit="scene", dynamic_ncols=True) as bar:
        for batch in _batches(scenes, batch_size):
            preds += predict(model, batch, grid, oracle)
            gts += batch if grid == "input" else [output_grid(s) for s in batch]
            bar.update(len(batch))
    if not gts:
        raise ConfigError("no scenes to evaluate")
    return score(preds, gts, cfg["model"]["taxonomy"], protocol), gts, preds


def worst(
    gts: list[Scene], preds: list[Prediction], taxonomy: str, k: int
) -> list[int]:
    """Indices of the k scenes with the lowest (AP^p_50, mIoU)."""
    keys = []
    for i, (g, p) in enumerate(zip(gts, preds, strict=True)):
        ap = part_ap([p], [g], taxonomy)["APp50"]
        keys.append((ap, miou([p], [g], taxonomy)[0], i))
    return [i for *_, i in sorted(keys)[:k]]


def format_table(metrics: dict[str, Any]) -> str:
    """The paper's table layout, percentages with one decimal."""
    lines = []
    for title, columns in TABLES:
        heads = [h for _, h in columns]
        widths = [max(8, len(h)) for h in heads]
        lines.append(title)
        lines.append(
            "| "
            + " | ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True))
            + " |"
        )
        lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        cells = [
            f"{100 * metrics[key]:.1f}".rjust(w)
            for (key, _), w in zip(columns, widths, strict=True)
        ]
        lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def read_frame(spec: str) -> np.ndarray:
    """'VIDEO:N' -> frame N of the video as H x W x 3 uint8 RGB."""
    path, _, index = spec.rpartition(":")
    if not path or not index.isdigit():
        raise ConfigError(f"--frame needs VIDEO:N, got '{spec}'")
    try:
        with av.open(path) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i == int(index):
                    return frame.to_ndarray(format="rgb24")
    except (OSError, av.FFmpegError) as exc:
        raise ConfigError(f"cannot read video {path}: {exc}") from exc
    raise ConfigError(f"{path} has no frame {index}")


def blank_scene(image: np.ndarray, taxonomy: str) -> Scene:
    """A picture without ground truth, as a Scene (to letterbox and predict it)."""
    h, w = image.shape[:2]
    return Scene(image, np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint16),
                 np.zeros((0, 17, 3), np.float32), np.zeros(0, np.int64),
                 taxonomy)  # fmt: skip


def show_frame(model: InferenceModel, image: np.ndarray, path: Path) -> Prediction:
    """What the model makes of one real picture (no ground truth): the picture
    letterboxed to the input, and the prediction's parts, people and skeletons."""
    empty = blank_scene(image, model.cfg["model"]["taxonomy"])
    scene = letterbox(empty, model.cfg["input_size"])
    pred = predict(model, [scene])[0]
    save_figure(path, scene, pred, model.cfg["model"]["taxonomy"])
    return pred


def add_protocol_option(parser: argparse.ArgumentParser) -> None:
    """--protocol: our stricter matching (default) or the official scripts' numbers."""
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="ours",
        help="'official' reproduces the official evaluation scripts (MHP v2, PGN) "
        "where ours is stricter: AP^r duplicate matches and class averaging, MHP's "
        "part-0 people, their tie order (trainers.metrics)",
    )


def load_model(
    checkpoint: str | None, matcher: str | None = None
) -> tuple[InferenceModel, dict[str, Any], str]:
    model, cfg = load_weights(checkpoint)
    name = checkpoint or "default model"
    model = model.eval().to(memory_format=torch.channels_last)
    return InferenceModel(model, cfg, matcher).eval(), cfg, name


def evaluate_real_cli(model: InferenceModel, name: str, args: Any) -> int:
    """`--data real`: the model beside the teachers, table printed, JSON written."""
    from trainers.pseudolabel import default_teachers
    from trainers.real_eval import (
        FORMATS,
        Systems,
        clip_files,
        evaluate_real,
        format_real,
        student_predictor,
    )

    if args.clip_frames < 1:
        raise ConfigError("--clip-frames must be at least 1")
    clips = clip_files(Path(args.clips) if args.clips else None)
    cfg = model.cfg
    still = args.input_size or still_input_size(cfg, cfg["pipeline"])
    systems = Systems(
        student_predictor(model), *default_teachers(), student_predictor(model, still)
    )
    formats = Path(args.formats) if args.formats else FORMATS
    pictures = Path(args.overlays) if args.overlays else None
    result = evaluate_real(systems, formats, clips, args.clip_frames, pictures)
    result["model"] = name
    result["input_size"] = {"samples": still, "clips": int(cfg["input_size"])}
    print(f"\n{name} beside its teachers on real people\n\n{format_real(result)}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2, default=float))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trainers.evaluate", description=__doc__.split("\n\n")[0]
    )
    add_checkpoint(parser)
    parser.add_argument(
        "--data",
        default="synthetic",
        help="'synthetic', 'real' (the student beside its teachers on real people) "
        "or a data-set spec (trainers.datasets)",
    )
    parser.add_argument("--count", type=int, default=100, help="scenes to score")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="first held-out seed (synthetic) or first index (data set)",
    )
    parser.add_argument("--json", help="write the metrics here")
    parser.add_argument("--overlays", help="folder for the worst scenes' overlays "
                        "(--data real: one frame per clip, every system)")  # fmt: skip
    parser.add_argument("--worst", type=int, default=4, help="overlays to draw")
    parser.add_argument(
        "--frame",
        metavar="VIDEO:N",
        help="instead: draw the model's output on frame N of a real video (PNG in "
        "--overlays)",
    )
    parser.add_argument(
        "--grid",
        choices=("input", "output"),
        default="input",
        help="score at the input resolution (maps upsampled from stride 4) or on the "
        "network's stride-4 output grid, which leaves out the resolution limit",
    )
    parser.add_argument(
        "--matcher",
        choices=MATCHERS,
        help="limb matcher of the decode (default: the checkpoint's decode.matcher); "
        "greedy is the paper's Table 5 baseline",
    )
    parser.add_argument(
        "--oracle",
        nargs="+",
        choices=tuple(MAP_GROUPS),
        default=[],
        help="map groups taken from the ground truth instead of the network: scores "
        "the other heads alone, e.g. --oracle parts keypoints limbs leaves only the "
        "DSPF to the model",
    )
    parser.add_argument(
        "--clips",
        help="--data real: score people per frame etc. on the videos of this folder "
        "(default: the validation clips of configs/real_clips.yaml)",
    )
    parser.add_argument(
        "--clip-frames", type=int, default=10, help="--data real: frames per clip"
    )
    parser.add_argument("--formats", help="--data real: labelled samples folder "
                        "(default ../shared/data/formats)")  # fmt: skip
    parser.add_argument("--input-size", type=int, help="run the model at this square "
                        "input instead of its config's (a multiple of 32); --data real "
                        "otherwise gives the labelled photographs the pipeline's "
                        "still-image size (pipeline.still_scale)")  # fmt: skip
    add_protocol_option(parser)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        if args.count < 1:
            raise ConfigError("--count must be at least 1")
        model, cfg, name = load_model(args.checkpoint, args.matcher)
        if args.input_size:
            cfg["input_size"] = check_input_size(args.input_size)  # model.cfg's dict
            name += f" at {args.input_size} px"
        if args.data == "real":
            return evaluate_real_cli(model, name, args)
        if args.frame:
            out = Path(args.overlays or ".") / f"{Path(args.frame).stem}_frame.png"
            pred = show_frame(model, read_frame(args.frame), out)
            print(f"{name}: {len(pred.scores)} people on {args.frame} -> {out}")
            return 0
        scenes = scenes_for(args.data, cfg, args.count, args.seed)
        metrics, gts, preds = run(
            model, cfg, scenes, args.count, args.batch, args.grid, args.oracle,
            args.protocol,
        )  # fmt: skip
    except (ConfigError, CheckpointError, DatasetError, TeacherError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    where = f"{args.data}, {len(gts)} scenes" + (
        f" from seed {args.seed}" if args.data == "synthetic" else ""
    )
    if args.oracle:
        where += f"; {', '.join(args.oracle)} from the ground truth"
    where += f"; {args.protocol} protocol"
    print(f"\n{name} on {where}\n\n{format_table(metrics)}")
    metrics["scenes"] = len(gts)
    metrics["data"] = args.data
    metrics["grid"] = args.grid
    metrics["matcher"] = model.matcher
    metrics["oracle"] = list(args.oracle)
    metrics["protocol"] = args.protocol
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(metrics, indent=2, default=float))
    if args.overlays and args.worst > 0:
        picks = worst(gts, preds, cfg["model"]["taxonomy"], args.worst)
        paths = save_overlays(
            Path(args.overlays),
            [gts[i] for i in picks],
            [preds[i] for i in picks],
            cfg["model"]["taxonomy"],
            [f"worst{r}_scene{i}" for r, i in enumerate(picks)],
        )
        print(f"overlays of the {len(paths)} worst scenes in {args.overlays}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
