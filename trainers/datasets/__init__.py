"""Real data-set loaders: each yields `configs.records.Scene`s in a configs taxonomy.

`open_dataset("KIND:PATH[,option=value,...]")` opens one, e.g.
`coco:data/coco/annotations/person_keypoints_train2017.json,images=data/coco/train2017`.
Every loader is map-style (`len(ds)`, `ds[i]`, iteration), indexes its files when
opened and decodes an image only when asked. Formats and choices: docs/DATASETS.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from configs.errors import DatasetError
from trainers.datasets.cihp import CihpDataset
from trainers.datasets.coco import CocoDataset, CrowdPoseDataset
from trainers.datasets.common import SceneDataset
from trainers.datasets.densepose import DensePoseDataset
from trainers.datasets.mhp import MhpDataset
from trainers.datasets.pascal_person_part import open_pascal_person_part
from trainers.datasets.posetrack import PoseTrackDataset
from trainers.datasets.pseudo import PseudoLabelDataset

# kind -> (opener taking PATH first, its options)
DATASETS: dict[str, tuple[Callable[..., SceneDataset], tuple[str, ...]]] = {
    "coco": (CocoDataset, ("images", "taxonomy", "parts", "reach")),
    "ochuman": (CocoDataset, ("images", "taxonomy", "parts", "reach")),
    "crowdpose": (CrowdPoseDataset, ("images", "taxonomy")),
    "posetrack18": (PoseTrackDataset, ("images", "taxonomy")),
    "densepose": (DensePoseDataset, ("images", "taxonomy", "unlabelled")),
    "mhp": (MhpDataset, ("split", "taxonomy")),
    "pascal_person_part": (open_pascal_person_part, ("split", "taxonomy", "images")),
    "cihp": (CihpDataset, ("split", "taxonomy")),
    "pseudo": (PseudoLabelDataset, ("taxonomy", "soft")),
}
_NUMBERS = {"reach": float, "soft": float}


def parse_spec(spec: str) -> tuple[str, str, dict[str, Any]]:
    """'KIND:PATH,key=value,...' -> (kind, path, options)."""
    kind, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise DatasetError(f"data set spec '{spec}' is not KIND:PATH[,option=value]")
    if kind not in DATASETS:
        raise DatasetError(
            f"unknown data set kind '{kind}' (known: {', '.join(DATASETS)})"
        )
    path, *items = rest.split(",")
    allowed = DATASETS[kind][1]
    options: dict[str, Any] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or key not in allowed:
            raise DatasetError(
                f"bad option '{item}' for {kind} (options: {', '.join(allowed)})"
            )
        try:
            options[key] = _NUMBERS.get(key, str)(value)
        except ValueError as exc:
            raise DatasetError(f"option {key} needs a number, got '{value}'") from exc
    return kind, path, options


def open_dataset(spec: str) -> SceneDataset:
    """The data set a spec names, e.g. 'cihp:../shared/data/formats/cihp'."""
    kind, path, options = parse_spec(spec)
    return DATASETS[kind][0](path, **options)


__all__ = ["DATASETS", "SceneDataset", "open_dataset", "parse_spec"]
