"""MoveNet MultiPose as a teacher: the torch rebuild (nets.movenet) and our own decode.

The decode is the one MoveNet's graph runs after its heads, vectorised over people and
without its cap of 6: person centres are the 5x5 local maxima of the centre heatmap;
each centre regresses its 17 joints; each joint then snaps to the keypoint-heatmap
peak inside the person's box, the heatmap weighted by exp(-d^2 / (0.3 min(H, W))) of
the grid distance d to the regressed joint, and moves by that cell's sub-cell offset.
A joint's score is that weighted heatmap value (0 below 0.127, "not found", as the
graph); a person's score is the centre score times the mean score of the found joints.

The image is letterboxed to `size` with the pipeline's own letterbox: 256 by default
(NOTES.md: 256 beat 512 on a held-out set of 21 people, 512 missing large ones; on
the samples in ../shared/data/formats, 512 scored higher on the 4 COCO photographs
and lower on the 3 OCHuman ones: measure before changing it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from configs.letterbox import Letterbox, letterbox_image
from nets.movenet import MoveNetWeightsError, load_movenet
from nets.similarity import oks
from trainers.teachers import TeacherError, TeacherOutput

DEFAULT_MODEL = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "models"
    / "movenet"
    / "movenet-multipose.json"
)
STRIDE = 4
KEYPOINT_MIN = 0.127  # the graph's threshold (float16 0.126953125) for a found joint
SIGMA_FACTOR = 0.3  # distance weight exp(-d^2 / (SIGMA_FACTOR * min(H, W)))
NMS_KERNEL = 5


def decode_people(
    maps: dict[str, torch.Tensor], max_people: int = 20, min_score: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """One image's raw head maps (C x h x w each, `nets.movenet.MoveNet` outputs
    without the batch axis) -> keypoints P x 17 x 3 (x, y, score) in input pixels and
    person scores P, in centre-score order; people scoring <= `min_score` dropped."""
    h, w = maps["center"].shape[-2:]
    center = torch.sigmoid(maps["center"][0])
    peaks = F.max_pool2d(center[None, None], NMS_KERNEL, 1, NMS_KERNEL // 2)[0, 0]
    center = torch.where(center == peaks, center, torch.zeros_like(center))
    center_scores, index = center.flatten().topk(min(max_people, h * w))
    # A person scores at most its centre score: skip the hopeless ones early (they
    # would only have entered the max over people of the joint scores below).
    index = index[center_scores > min_score]
    center_scores = center_scores[center_scores > min_score]
    if len(index) == 0:  # nobody: the max over people below would have no people
        return np.zeros((0, 17, 3), np.float32), np.zeros(0, np.float32)
    cy, cx = (index // w).float(), (index % w).float()

    off = maps["box_offset"][:, index // w, index % w]  # 2 x P (dy, dx)
    half = maps["box_scale"][:, index // w, index % w].clamp(min=0) / 2
    y0 = (cy + off[0] - half[0]).clamp(0, h)[:, None, None]
    y1 = (cy + off[0] + half[0]).clamp(0, h)[:, None, None]
    x0 = (cx + off[1] - half[1]).clamp(0, w)[:, None, None]
    x1 = (cx + off[1] + half[1]).clamp(0, w)[:, None, None]
    gy = torch.arange(h, dtype=torch.float32)[:, None]
    gx = torch.arange(w, dtype=torch.float32)[None, :]
    inside = (gy >= y0) & (gy < y1) & (gx >= x0) & (gx < x1)  # P x h x w

    reg = maps["kpt_regress"][:, index // w, index % w].view(17, 2, -1)  # (dy, dx)
    ry = (cy + reg[:, 0]).T[:, :, None, None]  # P x 17 x 1 x 1
    rx = (cx + reg[:, 1]).T[:, :, None, None]
    scale = SIGMA_FACTOR * min(h, w)
    # exp(-(dy^2 + dx^2) / s) = exp(-dy^2 / s) exp(-dx^2 / s): h + w exps, not h w
    near_y = torch.exp(-(gy - ry).square() / scale)  # P x 17 x h x 1
    near_x = torch.exp(-(gx - rx).square() / scale)  # P x 17 x 1 x w
    heat = torch.sigmoid(maps["kpt_heatmap"])
    weighted = heat[None] * (near_y * near_x * inside[:, None])  # P x 17 x h x w
    best = weighted.flatten(2).argmax(-1)  # P x 17
    py, px = best // w, best % w
    joint = torch.arange(17)[None, :]
    # The graph scores a joint by the max over people of the weighted maps there.
    score = weighted[:, joint, py, px].amax(0)
    score = torch.where(score > KEYPOINT_MIN, score, torch.zeros_like(score))
    offsets = maps["kpt_offset"].view(17, 2, h, w)
    y = (py + offsets[joint, 0, py, px]) * STRIDE
    x = (px + offsets[joint, 1, py, px]) * STRIDE
    found = (score > 0).float()
    person = center_scores * score.sum(1) / found.sum(1).clamp(min=1)
    keep = person > min_score
    keypoints = torch.stack([x, y, score], -1)[keep]
    return keypoints.numpy().astype(np.float32), person[keep].numpy().astype(np.float32)


def crop_around(keypoints: np.ndarray, margin: float) -> tuple[int, int, int]:
    """A square (x0, y0, side) around a person's found joints, `margin` times the
    longer side of their box (at least 32 px)."""
    seen = keypoints[keypoints[:, 2] > 0, :2]
    lo, hi = seen.min(0), seen.max(0)
    side = max(32, int(round(float((hi - lo).max()) * margin)))
    cx, cy = (lo + hi) / 2
    return int(round(cx - side / 2)), int(round(cy - side / 2)), side


def cut(image: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """image[y0 : y0 + side, x0 : x0 + side], black where it leaves the image."""
    out = np.zeros((side, side, 3), image.dtype)
    h, w = image.shape[:2]
    sx, sy = max(0, -x0), max(0, -y0)
    ex, ey = min(side, w - x0), min(side, h - y0)
    if ex > sx and ey > sy:
        out[sy:ey, sx:ex] = image[y0 + sy : y0 + ey, x0 + sx : x0 + ex]
    return out


class MoveNetTeacher:
    """Image in, people out (keypoints and scores; no masks, no parts).

    `refine`: look again at each person found (score >= `refine_min_score`) on a
    square crop around their joints (`refine_margin` times their extent), letterboxed
    to `size` like the image; the crop's person that best matches them (OKS >= 0.5,
    the person's box as scale) replaces them when it scores higher. Issue 12 measured
    a second pass on crops lifting OKS AP from 0.345 to 0.366.
    """

    name = "movenet"

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        size: int = 256,
        max_people: int = 20,
        min_score: float = 0.05,
        refine: bool = False,
        refine_min_score: float = 0.15,
        refine_margin: float = 1.25,
    ):
        if size % 32:
            raise TeacherError(f"MoveNet input size must be a multiple of 32: {size}")
        try:
            # channels_last: depthwise convs run faster in torch's CPU kernels
            self.net = load_movenet(model).to(memory_format=torch.channels_last)
        except MoveNetWeightsError as exc:
            raise TeacherError(str(exc)) from None
        self.size = size
        self.max_people = max_people
        self.min_score = min_score
        self.refine = refine
        self.refine_min_score = refine_min_score
        self.refine_margin = refine_margin

    @torch.inference_mode()
    def __call__(self, image: np.ndarray) -> TeacherOutput:
        ((keypoints, scores),) = self.people([image])
        if self.refine:
            chosen = np.flatnonzero(scores >= self.refine_min_score)
            crops = [crop_around(keypoints[i], self.refine_margin) for i in chosen]
            found = self.people([cut(image, *crop) for crop in crops])
            for i, (x0, y0, _), (kps, scs) in zip(chosen, crops, found, strict=True):
                kps[..., :2] += (x0, y0)
                keypoints[i], scores[i] = better(keypoints[i], scores[i], kps, scs)
        return TeacherOutput(keypoints=keypoints, scores=scores)

    @torch.inference_mode()
    def people(self, images: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """One pass over each image, all in one batch: per image, keypoints P x 17 x 3
        in its pixels and scores P."""
        if not images:
            return []
        boxes = [Letterbox.fit(im.shape[1], im.shape[0], self.size) for im in images]
        x = np.stack(
            [letterbox_image(im, b) for im, b in zip(images, boxes, strict=True)]
        )
        maps = self.net(
            torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
        )
        out = []
        for n, box in enumerate(boxes):
            keypoints, scores = decode_people(
                {k: v[n] for k, v in maps.items()}, self.max_people, self.min_score
            )
            keypoints[..., :2] = box.to_frame(keypoints[..., :2])
            out.append((keypoints, scores))
        return out


def better(
    person: np.ndarray, score: float, keypoints: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, float]:
    """Of the people found on a crop around `person`, the one that matches it (OKS >=
    0.5, the box of its found joints as scale) if it scores higher; else `person`."""
    if not len(scores):
        return person, score
    seen = person[person[:, 2] > 0, :2]
    area = float(np.prod(seen.max(0) - seen.min(0) + 1))
    sim = oks(person[None], keypoints, np.array([area]))[0]
    best = int(np.argmax(sim))
    if sim[best] >= 0.5 and scores[best] > score:
        return keypoints[best], float(scores[best])
    return person, score
