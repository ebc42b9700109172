"""PASCAL-Person-Part: people of PASCAL VOC with part masks, in either published form.

Instance-level release (the layout of CIHP: `<split>/Images/<id>.jpg`,
`<split>/Category_ids/<id>.png` with 0 background, 1 lower arm, 2 head, 3 upper leg,
4 torso, 5 lower leg, 6 upper arm (taxonomy `pascal_person_part`), and
`<split>/Human_ids/<id>.png` with 0 background, k = person k; split = Training,
Testing). Or the original PASCAL-Part annotations (`Annotations_Part/<id>.mat`: a
struct `anno` whose `objects` have `class`, `mask` and `parts` with `part_name` and
`mask`; images in VOC's `JPEGImages/`), of which the person objects are read with
their 24 part names (taxonomy `pascal_part_person`). PASCAL-Person-Part's benchmark
merges them into 6 parts (`pascal6`, the default); the .mat parts also map to fine.
No keypoints in either form (all unlabelled).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.io

from configs import taxonomy as taxonomy_table
from configs.constants import IGNORE, NUM_KEYPOINTS
from configs.errors import DatasetError
from configs.records import Scene
from trainers.datasets.cihp import LabelPngDataset
from trainers.datasets.common import (
    Person,
    SceneDataset,
    assemble,
    check_file,
    check_taxonomy,
    map_parts,
    read_image,
)

PNG_NATIVE = "pascal_person_part"
MAT_NATIVE = "pascal_part_person"


def _items(value: Any) -> list[Any]:
    """A MATLAB struct array as a list (loadmat squeezes 1 x 1 to the struct, 0 x 0 to
    an empty array)."""
    return [v for v in np.atleast_1d(value) if not isinstance(v, (str, bytes))]


def read_part_mat(path: Path) -> list[tuple[np.ndarray, list[tuple[str, np.ndarray]]]]:
    """Person objects of a PASCAL-Part .mat: (mask, [(part name, mask), ...])."""
    try:
        anno = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)["anno"]
    except (OSError, ValueError, KeyError) as exc:
        raise DatasetError(f"cannot read PASCAL-Part annotation {path}: {exc}") from exc
    people = []
    for obj in _items(anno.objects):
        if str(obj.__dict__.get("class", "")) != "person":
            continue
        parts = [(str(p.part_name), np.asarray(p.mask) > 0) for p in _items(obj.parts)]
        people.append((np.asarray(obj.mask) > 0, parts))
    return people


class PascalPartMatDataset(SceneDataset):
    """PASCAL-Part .mat annotations, person objects only.

    Args:
        root: folder holding Annotations_Part/ (and JPEGImages/ unless `images`).
        images: VOC's JPEGImages folder.
        taxonomy: part taxonomy of the Scenes.
    """

    def __init__(
        self,
        root: str | Path,
        images: str | Path | None = None,
        taxonomy: str = "pascal6",
    ):
        root = Path(root)
        self.annotations = check_file(root / "Annotations_Part", "Annotations_Part")
        self.images = Path(images) if images else root / "JPEGImages"
        check_taxonomy(MAT_NATIVE, taxonomy)
        self.taxonomy = taxonomy
        self.ids = sorted(p.stem for p in self.annotations.glob("*.mat"))
        if not self.ids:
            raise DatasetError(f"no .mat files in {self.annotations}")
        self.classes = taxonomy_table(MAT_NATIVE)["classes"]

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> Scene:
        name = self.ids[index]
        image = read_image(self.images / f"{name}.jpg")
        people = []
        for mask, parts in read_part_mat(self.annotations / f"{name}.mat"):
            if mask.shape != image.shape[:2]:
                raise DatasetError(
                    f"{name}.mat: mask {mask.shape} vs image {image.shape}"
                )
            native = np.where(mask, IGNORE, 0).astype(np.uint8)
            for part_name, part_mask in parts:
                if part_name not in self.classes:
                    raise DatasetError(f"{name}.mat: unknown person part '{part_name}'")
                native[part_mask & mask] = self.classes.index(part_name)
            people.append(
                Person(
                    mask=mask,
                    keypoints=np.zeros((NUM_KEYPOINTS, 3), np.float32),
                    parts=map_parts(native, MAT_NATIVE, self.taxonomy),
                )
            )
        return assemble(image, people, self.taxonomy)


def open_pascal_person_part(
    root: str | Path,
    split: str = "Training",
    taxonomy: str = "pascal6",
    images: str | Path | None = None,
) -> SceneDataset:
    """The layout found at `root`: PASCAL-Part .mat files or the instance PNGs."""
    if (Path(root) / "Annotations_Part").is_dir():
        return PascalPartMatDataset(root, images, taxonomy)
    return LabelPngDataset(root, split, PNG_NATIVE, taxonomy)
