"""Figures for training runs and evaluations (matplotlib, no display needed)."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from configs.extras import require
from configs.records import Prediction, Scene
from nets.similarity import KP_MIN_SCORE
from trainers.synth.preview import preview

require("matplotlib", "train", fatal=True).use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)


def loss_curve(csv_path: Path, png_path: Path) -> None:
    """Total loss (and each term, thin) against iteration, from scalars.csv."""
    with Path(csv_path).open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    its = [int(r["iteration"]) for r in rows]
    skip = {"iteration", "step", "lr", "img_per_s", "unix_time", "loss"}
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for key in rows[0]:
        if key in skip:
            continue
        values = [float(r[key]) if r.get(key) else float("nan") for r in rows]
        if all(v > 0 for v in values if v == v):
            ax.plot(its, values, lw=0.8, alpha=0.6, label=key)
    ax.plot(its, [float(r["loss"]) for r in rows], color="black", lw=2, label="loss")
    step2 = next((i for i, r in zip(its, rows, strict=True) if r["step"] == "2"), None)
    if step2 is not None:
        ax.axvline(step2, color="grey", ls="--", lw=1)
    if all(float(r["loss"]) > 0 for r in rows):
        ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)


def as_scene(pred: Prediction, image: np.ndarray, taxonomy_name: str) -> Scene:
    """A prediction dressed as a Scene so the synthetic world's preview can draw it;
    keypoints scored above KP_MIN_SCORE count as visible, the decode's guesses
    (`decode.complete_joints`, scored at most that) as occluded (drawn as rings)."""
    kps = np.asarray(pred.keypoints, np.float32).reshape(-1, 17, 3).copy()
    kps[..., 2] = np.select([kps[..., 2] > KP_MIN_SCORE, kps[..., 2] > 0], [2.0, 1.0])
    return Scene(
        image,
        pred.parts.astype(np.uint8),
        pred.instances.astype(np.uint16),
        kps,
        np.arange(len(kps), dtype=np.int64),
        taxonomy_name,
    )


def save_overlays(
    folder: Path,
    gts: list[Scene],
    preds: list[Prediction],
    taxonomy_name: str,
    names: list[str],
) -> list[Path]:
    """One PNG per scene: ground truth above, prediction below (image | parts |
    instances | skeletons, trainers.synth.preview)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for gt, pred, name in zip(gts, preds, names, strict=True):
        top = preview(gt)
        gap = np.full((6, top.shape[1], 3), 255, np.uint8)
        bottom = preview(as_scene(pred, gt.image, taxonomy_name))
        paths.append(folder / f"{name}.png")
        cv2.imwrite(str(paths[-1]), np.vstack([top, gap, bottom])[:, :, ::-1])
    return paths


def save_figure(path: Path, scene: Scene, pred: Prediction, taxonomy_name: str) -> None:
    """The prediction alone on a picture (image | parts | instances | skeletons)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = preview(as_scene(pred, scene.image, taxonomy_name))
    cv2.imwrite(str(path), image[:, :, ::-1])
