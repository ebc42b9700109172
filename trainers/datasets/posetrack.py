"""PoseTrack18: video frames with COCO-ordered keypoints, track ids and ignore regions.

Layout (posetrack.net, as mmpose's samples keep it): `annotations/<split>/<video>.json`
per video (or one merged JSON), COCO format with `images` entries carrying `vid_id`,
`frame_id`, `is_labeled`, `ignore_regions_x` / `ignore_regions_y` (polygons) and
`file_name` relative to the data set root; `annotations` with `track_id`. The keypoint
order is COCO's with head_bottom and head_top in the eye slots (configs/body.yaml
`other_keypoints.posetrack18`): the Scene's eyes are unlabelled and those two points
shape the head. Visibility is 1 for every labelled point (PoseTrack does not say what
is visible). There are no masks: masks are drawn from the keypoints (parts_from_
keypoints.skeleton_masks) and the band around them, their overlaps and the ignore
regions are ignore. Only labelled frames are indexed, in video and frame order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from configs.errors import DatasetError
from trainers.datasets.coco import CocoDataset


def ignore_regions(info: dict[str, Any], height: int, width: int) -> np.ndarray:
    """H x W bool union of an image's `ignore_regions_x/y` polygons."""
    out = np.zeros((height, width), bool)
    xs_all = info.get("ignore_regions_x") or []
    ys_all = info.get("ignore_regions_y") or []
    polys = [
        np.stack([xs, ys], axis=1).ravel().astype(float).tolist()
        for xs, ys in zip(xs_all, ys_all, strict=True)
        if len(xs) >= 3 and len(xs) == len(ys)
    ]
    if polys:
        rles = mask_utils.frPyObjects(polys, height, width)
        out |= mask_utils.decode(mask_utils.merge(rles)).astype(bool)
    return out


class PoseTrackDataset(CocoDataset):
    """PoseTrack18 labelled frames as Scenes (track ids from `track_id`).

    Args:
        annotations: one PoseTrack JSON, or a folder of per-video JSONs.
        images: the data set root `file_name`s start from (default: found above the
            annotations).
        taxonomy: part taxonomy of the Scenes.
    """

    keypoint_order = "posetrack18"

    def __init__(
        self,
        annotations: str | Path,
        images: str | Path | None = None,
        taxonomy: str = "fine",
    ):
        super().__init__(
            annotations, images, taxonomy, "derive", None, skip_empty=False
        )

    def _files(self, path: Path) -> list[Path]:
        if path.is_dir():
            files = sorted(path.glob("*.json"))
            if not files:
                raise DatasetError(f"no PoseTrack JSON files in {path}")
            return files
        return [path]

    def _keep_image(self, info: dict[str, Any]) -> bool:
        return bool(info.get("is_labeled", True))

    def _image_order(self, info: dict[str, Any]) -> Any:
        return (
            str(info.get("vid_id", "")),
            int(info.get("frame_id", 0)),
            info["file_name"],
        )

    def _ignore(self, info: dict[str, Any], height: int, width: int) -> np.ndarray:
        return ignore_regions(info, height, width)
