"""Figures for training runs and evaluations (matplotlib, no display needed)."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import matplotlib
import numpy as np

from configs import body, taxonomy
from trainers.scene import Prediction, Scene

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)


def loss_curve(csv_path: Path, png_path: Path) -> None:
    """Total loss (and each term, thin) against iteration, from scalars.csv."""
    with Path(csv_path).open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    its = [int(r["iteration"]) for r in rows]
    skip = {"iteration", "step", "lr", "img_per_s", "loss"}
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


def overlay(
    image: np.ndarray,
    parts: np.ndarray,
    instances: np.ndarray,
    keypoints: np.ndarray,
    taxonomy_name: str,
) -> np.ndarray:
    """Image with part colours blended in, person outlines and skeletons.

    Label maps may be at a coarser grid than the image (the network's stride): they are
    scaled up by nearest neighbour.
    """
    h, w = image.shape[:2]
    colors = np.array(taxonomy(taxonomy_name)["colors"], np.uint8)
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(colors)] = colors
    parts = cv2.resize(parts.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST)
    inst = cv2.resize(
        instances.astype(np.uint16), (w, h), interpolation=cv2.INTER_NEAREST
    )
    out = image.copy()
    fg = (parts > 0) & (parts != 255)
    out[fg] = (0.45 * image[fg] + 0.55 * lut[parts[fg]]).astype(np.uint8)
    edges = (inst != np.roll(inst, 1, 0)) | (inst != np.roll(inst, 1, 1))
    out[edges & (inst > 0)] = 255
    limbs = body()["limbs"]
    for k, person in enumerate(np.asarray(keypoints).reshape(-1, 17, 3)):
        hue = int(37 * k) % 180
        col = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2RGB)[0, 0]
        col = tuple(int(c) for c in col)
        for a, b in limbs:
            if person[a, 2] > 0 and person[b, 2] > 0:
                cv2.line(
                    out,
                    tuple(int(v) for v in person[a, :2]),
                    tuple(int(v) for v in person[b, :2]),
                    col,
                    1,
                    cv2.LINE_AA,
                )
        for x, y, v in person:
            if v > 0:
                cv2.circle(out, (int(x), int(y)), 2, col, -1, cv2.LINE_AA)
    return out


def save_overlays(
    folder: Path,
    gts: list[Scene],
    preds: list[Prediction],
    taxonomy_name: str,
    names: list[str],
) -> list[Path]:
    """One PNG per scene: ground truth left, prediction right."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for gt, pred, name in zip(gts, preds, names, strict=True):
        left = overlay(gt.image, gt.parts, gt.instances, gt.keypoints, taxonomy_name)
        right = overlay(
            gt.image, pred.parts, pred.instances, pred.keypoints, taxonomy_name
        )
        gap = np.full((left.shape[0], 4, 3), 255, np.uint8)
        path = folder / f"{name}.png"
        cv2.imwrite(str(path), np.hstack([left, gap, right])[:, :, ::-1])
        paths.append(path)
    return paths
