"""How alike two people are: OKS between poses, IoU between instance masks.

Shared by the tracker (pipeline.stages.track), the teachers (trainers.teachers) and
their tests, so it lives below both.
"""

from __future__ import annotations

import numpy as np

from configs import body

KP_MIN_SCORE = 0.05  # a joint counts for OKS above this score


def oks(pred: np.ndarray, dets: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """T x D object keypoint similarity between T poses and D poses (17 x 3 each),
    over joints present in both; `areas` (T x D, or D) is the scale squared."""
    sigmas = np.asarray(body()["oks_sigmas"], np.float32)
    d2 = ((pred[:, None, :, :2] - dets[None, :, :, :2]) ** 2).sum(-1)
    areas = np.broadcast_to(np.maximum(areas, 1.0), d2.shape[:2])
    var = (2 * sigmas) ** 2 * areas[..., None] * 2
    both = (pred[:, None, :, 2] > KP_MIN_SCORE) & (dets[None, :, :, 2] > KP_MIN_SCORE)
    sim = np.exp(-d2 / var) * both
    return sim.sum(-1) / np.maximum(both.sum(-1), 1)


def mask_iou(masks: list[np.ndarray], labels: np.ndarray, count: int) -> np.ndarray:
    """T x D IoU between T boolean masks and the D instances of a label map."""
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1 : count + 1]
    out = np.zeros((len(masks), count), np.float32)
    for i, m in enumerate(masks):
        inter = np.bincount(labels[m], minlength=count + 1)[1 : count + 1]
        union = m.sum() + areas - inter
        out[i] = inter / np.maximum(union, 1)
    return out
