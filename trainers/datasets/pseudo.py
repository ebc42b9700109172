"""Pseudo-labelled real frames (trainers.pseudolabel's folder): the COCO loader, plus
the per-pixel confidence map whose 255 marks what no loss may see, and frames without
people kept (they teach the student to see nobody where the teachers see nobody)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from trainers.datasets.coco import CocoDataset
from trainers.datasets.common import IGNORE, DatasetError, read_label_png


class PseudoLabelDataset(CocoDataset):
    """`pseudo:DIR`: DIR/annotations.json, images/, parts/, instances/, confidence/."""

    def __init__(self, folder: str | Path, taxonomy: str = "fine"):
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
