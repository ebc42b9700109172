"""DensePose-COCO: COCO people whose part masks come from the `dp_masks` annotation.

Published layout (detectron2 projects/DensePose/doc/DENSEPOSE_DATASETS.md): a COCO
JSON whose annotated people carry `dp_masks`, 14 RLE masks (`size` [256, 256]) in the
order of the `densepose14` taxonomy, drawn on a 256 x 256 grid stretched over the
person's `bbox`. The grid is decoded as DensePose's own `GetDensePoseMask` does (later
parts overwrite earlier ones), resized to the box with nearest neighbour and pasted at
its integer corner (the box is resized first and then clipped to the image, where the
DensePose notebook clips the box before resizing and so squeezes cut-off people).

DensePose's head is one part; in the fine taxonomy it is split into hair and face from
the keypoints. Pixels of the person mask without a DensePose label, and people without
`dp_masks`, are ignore for parts unless `unlabelled="derive"` (parts from keypoints).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from configs import taxonomy as taxonomy_table
from configs.constants import IGNORE
from configs.errors import DatasetError
from trainers.datasets.coco import CocoDataset
from trainers.datasets.common import check_taxonomy, map_parts
from trainers.datasets.parts_from_keypoints import capsules, split_head

NATIVE = "densepose14"
GRID = 256


def dp_grid(dp_masks: list[Any]) -> np.ndarray:
    """256 x 256 uint8 densepose14 ids of one person's `dp_masks`."""
    if len(dp_masks) != 14:
        raise DatasetError(f"dp_masks must hold 14 part masks, got {len(dp_masks)}")
    grid = np.zeros((GRID, GRID), np.uint8)
    for i, rle in enumerate(dp_masks, start=1):
        if rle:
            grid[mask_utils.decode(rle) > 0] = i
    return grid


def paste_grid(
    grid: np.ndarray, box: list[float], height: int, width: int
) -> np.ndarray:
    """H x W uint8: the box grid resized over `box` (x, y, w, h) and clipped."""
    x0, y0 = int(box[0]), int(box[1])
    x1, y1 = int(box[0] + box[2]), int(box[1] + box[3])
    out = np.zeros((height, width), np.uint8)
    if x1 <= x0 or y1 <= y0:
        return out
    patch = cv2.resize(grid, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x1, width), min(y1, height)
    if cx1 > cx0 and cy1 > cy0:
        out[cy0:cy1, cx0:cx1] = patch[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    return out


def head_parts(mask: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """H x W fine ids (hair / face / ignore) for every pixel of `mask`."""
    out = np.zeros(mask.shape, np.uint8)
    ys, xs = np.nonzero(mask)
    p = np.stack([xs + 0.5, ys + 0.5], axis=1)
    out[ys, xs] = split_head(p, keypoints, capsules(keypoints))
    return out


class DensePoseDataset(CocoDataset):
    """DensePose-COCO people with their 14 annotated parts.

    Args: as CocoDataset, plus
        unlabelled: "ignore" or "derive": parts of person pixels DensePose left
            unlabelled (and of people without `dp_masks`).
    """

    def __init__(
        self,
        annotations: str | Path,
        images: str | Path | None = None,
        taxonomy: str = "fine",
        unlabelled: str = "ignore",
        skip_empty: bool = True,
    ):
        if unlabelled not in ("ignore", "derive"):
            raise DatasetError(
                f"unlabelled must be 'ignore' or 'derive', not '{unlabelled}'"
            )
        check_taxonomy(NATIVE, taxonomy)
        super().__init__(annotations, images, taxonomy, "derive", None, skip_empty)
        self.unlabelled = unlabelled
        self.head_id = taxonomy_table(NATIVE)["classes"].index("head")

    def _parts(
        self,
        ann: dict[str, Any],
        mask: np.ndarray,
        keypoints: np.ndarray,
        extras: dict[str, np.ndarray],
    ) -> np.ndarray | None:
        derived = (
            self._derived_parts(mask, keypoints, extras)
            if self.unlabelled == "derive"
            else None
        )
        if not ann.get("dp_masks"):
            return derived
        h, w = mask.shape
        native = paste_grid(dp_grid(ann["dp_masks"]), ann["bbox"], h, w)
        # The person is its COCO mask and its DensePose parts: grown in place, so the
        # Person built from `mask` gets the union too.
        mask |= native > 0
        native[mask & (native == 0)] = IGNORE
        head = head_parts(native == self.head_id, keypoints)
        out = map_parts(native, NATIVE, self.taxonomy, head)
        if derived is not None:
            fill = native == IGNORE
            out[fill] = derived[fill]
        return out
