"""Pseudo-labelled real frames (trainers.pseudolabel's folder): the COCO loader, plus
the per-pixel confidence map whose 255 marks what no loss may see, and frames without
people kept (they teach the student to see nobody where the teachers see nobody).

`soft=V` (spec option, 0 < V < 1) also keeps the pose teacher's joints under the
labelling threshold (their positions and scores are in the annotations) with v = V:
the targets give them disks of height V (`trainers.targets`), so the student learns
weak peaks where the teacher guessed an occluded joint (on the labelled photographs
MoveNet's joints scored 0.1-0.3 still reach keypoint similarity 0.55-0.67), where
without them those cells are negatives. Limbs, DSPF and grouping use labelled joints
(v >= 1) only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trainers.datasets.coco import CocoDataset
from trainers.datasets.common import IGNORE, DatasetError, read_label_png


class PseudoLabelDataset(CocoDataset):
    """`pseudo:DIR`: DIR/annotations.json, images/, parts/, instances/, confidence/."""

    def __init__(self, folder: str | Path, taxonomy: str = "fine", soft: float = 0.0):
        if not 0.0 <= soft < 1.0:
            raise DatasetError(f"pseudo: soft={soft} must be in [0, 1)")
        self.soft = soft
        root = Path(folder)
        if root.is_file():
            root = root.parent
        super().__init__(
            root / "annotations.json", taxonomy=taxonomy, parts="png", skip_empty=False
        )
        self.confidence_dir = root / "confidence"
        if not self.confidence_dir.is_dir():
            raise DatasetError(f"no confidence/ folder in {root}")

    def _ignore(self, info: dict[str, Any], height: int, width: int) -> np.ndarray:
        name = Path(info["file_name"]).stem
        conf = read_label_png(self.confidence_dir / f"{name}.png")
        if conf.shape != (height, width):
            raise DatasetError(f"confidence map of {name} is not {width}x{height}")
        return conf == IGNORE

    def _keypoints(
        self, ann: dict[str, Any]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        kp, extras = super()._keypoints(ann)
        scores = ann.get("keypoint_scores")
        if self.soft and scores and ann.get("keypoints"):
            raw = np.asarray(ann["keypoints"], np.float32).reshape(-1, 3)
            guess = (raw[:, 2] <= 0) & (np.asarray(scores) > 0)
            kp[guess, :2] = raw[guess, :2]
            kp[guess, 2] = self.soft
        return kp, extras
