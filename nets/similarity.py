"""How alike two people are: OKS between poses, IoU between instance masks, and which
decoded people duplicate a better one.

Shared by the tracker (pipeline.stages.track), the teachers (trainers.teachers), the
graph decode (`nets.decode.drop_duplicates`) and their tests, so it lives below them.
The pose functions take numpy arrays or torch tensors (the graph decode exports them
to ONNX: no branching on values), so the OKS formula exists once in Python; the
native engine's numba loops have it once more (`nets.native._drop_duplicates`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from configs import body

KP_MIN_SCORE = 0.05  # a joint counts for OKS above this score
FAR = 1e9  # px; beyond any image, so a missing joint never widens a box
# OKS within this of the duplicate threshold is not above it: a fragment sharing one of
# its two joints with another scores 0.5 + e^-30-ish, and the engines' float sums put
# that on either side of a 0.5 threshold (the graph 0.5, the native engine 0.50000006)
OKS_TIE = 1e-6


def _sigmas(like: Any) -> Any:
    """The COCO-17 OKS sigmas (configs/body.yaml) as an array of `like`'s kind."""
    sigmas = body()["oks_sigmas"]
    if isinstance(like, torch.Tensor):
        return torch.tensor(sigmas, dtype=like.dtype, device=like.device)
    return np.asarray(sigmas, np.float32)


def oks(pred: Any, dets: Any, areas: Any) -> Any:
    """[..., T, D] object keypoint similarity between poses pred [..., T, 17, 3] and
    dets [..., D, 17, 3], over the joints present in both; `areas`, the scale squared
    (at least 1), broadcasts against [..., T, D] (a [D] vector: each det's own).
    numpy or torch."""
    xp = torch if isinstance(pred, torch.Tensor) else np
    # x and y apart: a sum over a last axis of 2 costs numpy 20x the arithmetic
    dx = pred[..., :, None, :, 0] - dets[..., None, :, :, 0]
    dy = pred[..., :, None, :, 1] - dets[..., None, :, :, 1]
    d2 = dx * dx + dy * dy
    floor = areas.clamp(min=1.0) if xp is torch else np.maximum(areas, 1.0)
    var = (2 * _sigmas(pred)) ** 2 * floor[..., None] * 2
    both = (pred[..., :, None, :, 2] > KP_MIN_SCORE) & (
        dets[..., None, :, :, 2] > KP_MIN_SCORE
    )
    sim = xp.exp(-d2 / var) * both
    return sim.sum(-1) / both.sum(-1).clip(min=1)


def pose_areas(kps: Any) -> Any:
    """[..., N] scale squared of poses [..., N, 17, 3]: the box area of their scored
    joints (score > 0), at least 1. numpy or torch."""
    xp = torch if isinstance(kps, torch.Tensor) else np
    present = kps[..., 2] > 0
    side = []
    for axis in (0, 1):
        v = kps[..., axis]
        hi = xp.amax(xp.where(present, v, -FAR), -1)
        lo = xp.amin(xp.where(present, v, FAR), -1)
        side.append((hi - lo).clip(min=0))
    return (side[0] * side[1]).clip(min=1.0)


def duplicates(keypoints: Any, valid: Any, threshold: float) -> Any:
    """[..., P] bool: the person slots to drop as duplicates of a better one.

    Slots come ranked best first (`decode.select_people`); slot p is a duplicate when
    an earlier valid slot q has OKS(p, q) > `threshold` (by more than `OKS_TIE`) over
    the joints both have.
    The scale is the larger of the two keypoint boxes, as the tracker's: both claim
    one body, and a fragment's box (a head, two feet) understates it, so with the
    better-ranked one's box alone a fragment ranked above a body's copy would keep it
    (on pseudo-labelled training frames the larger box found more duplicates at every
    threshold, docs/MATCHING.md). A fragment whose joints sit on the same joints of a
    better-ranked body is dropped: OKS counts only the joints it has. Fast-NMS: all
    pairs at once, fixed P x P cost; a slot dropped itself still drops later ones
    (only chains of near-copies tell the difference). numpy or torch (keypoints
    [..., P, 17, 3], valid [..., P] bool).
    """
    xp = torch if isinstance(keypoints, torch.Tensor) else np
    p = keypoints.shape[-3]
    area = pose_areas(keypoints)
    sim = oks(keypoints, keypoints, xp.maximum(area[..., :, None], area[..., None, :]))
    rank = torch.arange(p, device=keypoints.device) if xp is torch else np.arange(p)
    earlier = rank[None, :] < rank[:, None]  # [p, q]: q ranks above p
    above = sim > threshold + OKS_TIE
    return (above & earlier & valid[..., None, :]).any(-1) & valid


def mask_iou(masks: list[np.ndarray], labels: np.ndarray, count: int) -> np.ndarray:
    """T x D IoU between T boolean masks and the D instances of a label map."""
    areas = np.bincount(labels.ravel(), minlength=count + 1)[1 : count + 1]
    out = np.zeros((len(masks), count), np.float32)
    for i, m in enumerate(masks):
        inter = np.bincount(labels[m], minlength=count + 1)[1 : count + 1]
        union = m.sum() + areas - inter
        out[i] = inter / np.maximum(union, 1)
    return out
