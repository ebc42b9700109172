"""One annotated image: the record every data source (synthetic or real) yields.

Coordinates are continuous pixels: pixel (row r, col c) covers [c, c+1) x [r, r+1), so
its centre is (c + 0.5, r + 0.5). Keypoint visibility follows COCO: 0 = not labelled
(off-image), 1 = labelled but occluded, 2 = visible.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Scene:
    """Image plus exact ground truth for the people visible in it.

    Attributes:
        image: H x W x 3 uint8 RGB.
        parts: H x W uint8 part ids in `taxonomy` (0 background, 255 ignore).
        instances: H x W uint16; 0 background, k + 1 for person k.
        keypoints: P x 17 x 3 float32 (x, y, v) in pixels.
        track_ids: P int64, stable across the frames of one video.
        taxonomy: name of the part taxonomy in configs/parts.yaml.
        ignore: optional H x W bool of regions to leave out of losses and metrics.
    """

    image: np.ndarray
    parts: np.ndarray
    instances: np.ndarray
    keypoints: np.ndarray
    track_ids: np.ndarray
    taxonomy: str = "fine"
    ignore: np.ndarray | None = field(default=None)

    @property
    def num_people(self) -> int:
        return int(self.keypoints.shape[0])

    def boxes(self) -> np.ndarray:
        """P x 4 (x0, y0, x1, y1) boxes of each person's visible pixels."""
        out = np.zeros((self.num_people, 4), np.float32)
        for k in range(self.num_people):
            ys, xs = np.nonzero(self.instances == k + 1)
            if len(xs):
                out[k] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        return out


@dataclass
class Prediction:
    """What a parser says about one image, in the same layout as a Scene's ground truth.

    Attributes:
        parts: H x W int part ids (0 background).
        instances: H x W int; 0 background, k + 1 for predicted person k.
        keypoints: P x 17 x 3 float32 (x, y, score) in pixels; score 0 = absent joint.
        scores: P float32 person confidences (ranking for AP).
    """

    parts: np.ndarray
    instances: np.ndarray
    keypoints: np.ndarray
    scores: np.ndarray
