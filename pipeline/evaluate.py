"""How well the whole pipeline keeps identities, measured on the synthetic crowd (whose
ground truth is known).

    python -m pipeline.evaluate [--frames 90] [--seeds 0 1 2] [--checkpoint C]
                                [--config C] [--backend B] [--json OUT]
    python -m pipeline.evaluate --truth-detections [--drop 0.1] [--jitter 2] ...

The first runs the whole pipeline; the second feeds the tracker alone with detections
made from the ground truth (optionally with people dropped at random and keypoints
jittered), which isolates the tracker from the network.

Each frame, predicted people are paired with true people by mask IoU >= 0.5
(Hungarian); a true person's track then counts an *ID switch* each time it is paired
with a different predicted id than the last time (CLEAR-MOT). Also reported: how many
true person-frames were paired with a confirmed id ("id_coverage"), and how many
distinct ids each true person received.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from configs.cli import setup_logging
from nets.decode import renumber_people
from pipeline.engine.messages import Message
from pipeline.engine.stage import Sink
from pipeline.engine.worker import describe
from pipeline.options import add_model_arguments

MIN_IOU = 0.5

log = logging.getLogger(__name__)


def match_truth(
    pred: np.ndarray,
    pred_ids: np.ndarray,
    truth: np.ndarray,
    truth_ids: np.ndarray,
    min_iou: float = MIN_IOU,
) -> dict[int, int]:
    """true track id -> predicted track id (-1: paired with an unconfirmed person) for
    the true people that overlap a predicted one by at least `min_iou`."""
    n_pred, n_true = len(pred_ids), len(truth_ids)
    if not n_pred or not n_true:
        return {}
    joint = np.bincount(
        pred.astype(np.int64).ravel() * (n_true + 1) + truth.astype(np.int64).ravel(),
        minlength=(n_pred + 1) * (n_true + 1),
    )
    joint = joint.reshape(n_pred + 1, n_true + 1)
    inter = joint[1:, 1:]
    union = joint[1:].sum(1)[:, None] + joint[:, 1:].sum(0)[None] - inter
    iou = inter / np.maximum(union, 1)
    rows, cols = linear_sum_assignment(-iou)
    return {
        int(truth_ids[c]): int(pred_ids[r])
        for r, c in zip(rows, cols, strict=True)
        if iou[r, c] >= min_iou
    }


class IdSwitches:
    """CLEAR-MOT identity switches over a sequence of frame pairings."""

    def __init__(self) -> None:
        self.last: dict[int, int] = {}
        self.ids: dict[int, set[int]] = {}
        self.switches = 0
        self.present = 0
        self.with_id = 0

    def update(self, pairs: dict[int, int], present: int) -> None:
        """pairs from `match_truth`; present = true people in the frame."""
        self.present += present
        for truth, pred in pairs.items():
            if pred < 0:
                continue
            self.with_id += 1
            self.ids.setdefault(truth, set()).add(pred)
            if truth in self.last and self.last[truth] != pred:
                self.switches += 1
            self.last[truth] = pred

    def result(self) -> dict[str, Any]:
        per_person = [len(v) for v in self.ids.values()]
        return {
            "id_switches": self.switches,
            "truth_tracks": len(self.ids),
            "id_coverage": self.with_id / self.present if self.present else 0.0,
            "ids_per_person_max": max(per_person, default=0),
        }


class TruthScorer(Sink):
    """A sink that scores tracking against the synthetic source's ground truth."""

    name = "truth-scorer"

    def __init__(self) -> None:
        self.counter = IdSwitches()
        self.frames = 0

    def open(self) -> None:
        pass

    def write(self, msg: Message) -> None:
        people, truth = msg.people, msg.truth
        pairs = match_truth(
            people.instances, people.track_ids, truth["instances"], truth["track_ids"]
        )
        self.counter.update(pairs, len(truth["track_ids"]))
        self.frames += 1

    def close(self) -> dict[str, Any]:
        return {
            "path": self.name,
            "frames": self.frames,
            "truth_person_frames": self.counter.present,
            **self.counter.result(),
        }


def truth_detections(
    scene: Any, rng: np.random.Generator, drop: float, jitter: float
) -> tuple[np.ndarray, ...]:
    """A Scene as postprocess outputs: each person kept with probability 1 - drop,
    visible-or-occluded joints with score 1 and Gaussian jitter (px)."""
    kps = scene.keypoints.copy()
    kps[..., 2] = (kps[..., 2] > 0).astype(np.float32)
    kps[..., :2] += rng.normal(0.0, jitter, kps[..., :2].shape) if jitter else 0.0
    rows, instances = renumber_people(
        rng.random(scene.num_people) >= drop, scene.instances, dtype=np.uint16
    )
    return kps[rows], np.ones(len(rows), np.float32), scene.boxes()[rows], instances


def score_tracker_ids(seed: int, frames: int, opts: Any) -> dict[str, Any]:
    """The tracker alone on ground-truth detections of one synthetic clip."""
    from configs import load_config
    from pipeline.stages.track import Tracker, TrackerConfig
    from trainers.synth import generate_video

    tracker = Tracker(TrackerConfig(**load_config(opts.config)["pipeline"]["track"]))
    rng = np.random.default_rng(seed)
    counter = IdSwitches()
    for scene in generate_video(seed, opts.size, frames):
        kps, scores, boxes, instances = truth_detections(
            scene, rng, opts.drop, opts.jitter
        )
        ids, _ = tracker.update(kps, scores, boxes, instances)
        counter.update(
            match_truth(instances, ids, scene.instances, scene.track_ids),
            scene.num_people,
        )
    return {"seed": seed, "frames": frames, **counter.result()}


def score_pipeline_ids(seed: int, frames: int, opts: Any) -> dict[str, Any]:
    """Run the full pipeline on one synthetic clip and score its ids."""
    from pipeline.io.source import SyntheticSource
    from pipeline.io.video_file import FileSink
    from pipeline.options import StreamOptions
    from pipeline.runner import run_pipeline

    stream = StreamOptions(
        config=opts.config,
        checkpoint=opts.checkpoint,
        backend=opts.backend,
        hud=False,
        progress=False,
    )
    source = SyntheticSource(frames=frames, size=opts.size, seed=seed, truth=True)
    sinks: list[Sink] = [TruthScorer()]
    if opts.output:
        sinks.append(FileSink(Path(opts.output) / f"seed{seed}.mp4"))
    result = run_pipeline(stream, source, sinks)
    if result.errors:
        raise RuntimeError("; ".join(result.errors))
    return {"seed": seed, **result.reports["sink"]["outputs"][0]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m pipeline.evaluate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--frames", type=int, default=90)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--size", type=int, default=384)
    add_model_arguments(p, device=False)
    p.add_argument("--output", help="folder for the overlay videos (optional)")
    p.add_argument("--json", help="write the results here")
    p.add_argument(
        "--truth-detections",
        action="store_true",
        help="score the tracker alone on ground-truth detections",
    )
    p.add_argument(
        "--drop",
        type=float,
        default=0.0,
        help="with --truth-detections: chance a person is missed",
    )
    p.add_argument(
        "--jitter",
        type=float,
        default=0.0,
        help="with --truth-detections: keypoint noise (px, std)",
    )
    args = p.parse_args(argv)
    setup_logging()
    run = score_tracker_ids if args.truth_detections else score_pipeline_ids
    rows = []
    for seed in args.seeds:
        try:
            rows.append(run(seed, args.frames, args))
        except Exception as exc:
            log.error("%s", describe(exc))
            return 1
        print(json.dumps(rows[-1]))
    total = {k: sum(r[k] for r in rows) for k in ("id_switches", "truth_tracks")}
    print(json.dumps({"seeds": len(rows), **total}))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
