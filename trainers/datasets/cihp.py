"""CIHP (Crowd Instance-level Human Parsing) and the label-PNG instance layout it shares
with PASCAL-Person-Part's instance-level release.

Official layout (lip.sysuhcp.com; PGN's README): `<split>/Images/<id>.jpg`,
`<split>/Category_ids/<id>.png` (part ids of the data set's taxonomy) and
`<split>/Human_ids/<id>.png` (0 background, k = person k), split = Training,
Validation. PGN's training layout (CIHP_PGN repo, the samples in ../shared) has
`images/`, `labels/` (CIHP's 20 classes), `labels_rev/` (the labels of the mirrored
image), `edges/` (instance contours) and `list/<name>_id.txt`, but no person ids:
people are then the connected regions of the labels cut along the edges (small
fragments and the edge pixels join the nearest person), which separates touching
people as well as the edges do. Neither layout has keypoints (all unlabelled).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage

from configs.constants import NUM_KEYPOINTS
from configs.errors import DatasetError
from configs.records import Scene
from trainers.datasets.common import (
    Person,
    SceneDataset,
    assemble,
    check_taxonomy,
    map_parts,
    read_image,
    read_label_png,
)

MIN_PERSON = 0.02  # regions below this fraction of the largest are fragments


def instances_from_edges(labels: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """H x W uint16 person ids (0 background) from part labels and instance edges."""
    body = labels > 0
    core = body & (edges == 0)
    count, regions, stats, _ = cv2.connectedComponentsWithStats(
        core.astype(np.uint8), connectivity=4
    )
    if count <= 1:
        return body.astype(np.uint16)
    sizes = stats[1:, cv2.CC_STAT_AREA]
    people = np.flatnonzero(sizes >= MIN_PERSON * sizes.max()) + 1
    relabel = np.zeros(count, np.uint16)
    relabel[people] = np.arange(1, len(people) + 1)
    ids = relabel[regions]
    # every other body pixel (edges, fragments) joins the nearest person
    _, (iy, ix) = ndimage.distance_transform_edt(ids == 0, return_indices=True)
    rest = body & (ids == 0)
    ids[rest] = ids[iy[rest], ix[rest]]
    return ids


def _ids_in(folder: Path, suffix: str) -> list[str]:
    return sorted(p.stem for p in folder.glob(f"*{suffix}"))


class LabelPngDataset(SceneDataset):
    """Images with a part-label PNG and a person-id PNG per image (official CIHP and
    PASCAL-Person-Part instance layouts).

    Args:
        root: the split folder (holding Images/) or the data set folder above it.
        split: split folder name used when `root` is the data set folder.
        native: taxonomy of the Category_ids PNGs.
        taxonomy: part taxonomy of the Scenes.
    """

    def __init__(self, root: str | Path, split: str, native: str, taxonomy: str):
        root = Path(root)
        self.dir = root if (root / "Images").is_dir() else root / split
        for sub in ("Images", "Category_ids", "Human_ids"):
            if not (self.dir / sub).is_dir():
                raise DatasetError(f"{self.dir / sub} not found (official layout)")
        check_taxonomy(native, taxonomy)
        self.native, self.taxonomy = native, taxonomy
        self.ids = _ids_in(self.dir / "Category_ids", ".png")
        if not self.ids:
            raise DatasetError(f"no label PNGs in {self.dir / 'Category_ids'}")

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> Scene:
        name = self.ids[index]
        image = read_image(self.dir / "Images" / f"{name}.jpg")
        labels = read_label_png(self.dir / "Category_ids" / f"{name}.png")
        humans = read_label_png(self.dir / "Human_ids" / f"{name}.png")
        return _scene(image, labels, humans, self.native, self.taxonomy)


def _scene(
    image: np.ndarray, labels: np.ndarray, humans: np.ndarray, native: str, target: str
) -> Scene:
    if labels.shape != image.shape[:2] or humans.shape != image.shape[:2]:
        raise DatasetError(
            f"label maps {labels.shape}/{humans.shape} do not match image "
            f"{image.shape[:2]}"
        )
    parts = map_parts(labels, native, target)
    people = [
        Person(mask=humans == k, keypoints=np.zeros((NUM_KEYPOINTS, 3), np.float32),
               parts=parts)
        for k in np.unique(humans)
        if k != 0
    ]  # fmt: skip
    return assemble(image, people, target)


class CihpDataset(SceneDataset):
    """CIHP in its official layout (person ids given) or PGN's (people from edges).

    Args:
        root: data set folder (official: above or at the split folder; PGN: holding
            images/, labels/, edges/).
        split: official: Training / Validation; PGN: a `list/<split>_id.txt` name
            (None: every label file).
        taxonomy: part taxonomy of the Scenes (CIHP's own: cihp20).
    """

    native = "cihp20"

    def __init__(
        self, root: str | Path, split: str | None = None, taxonomy: str = "cihp20"
    ):
        root = Path(root)
        self.official: LabelPngDataset | None = None
        if (root / "labels").is_dir() and (root / "edges").is_dir():
            check_taxonomy(self.native, taxonomy)
            self.root, self.taxonomy = root, taxonomy
            listed = root / "list" / f"{split}_id.txt"
            if split is not None and not listed.exists():
                raise DatasetError(f"split list {listed} not found")
            self.ids = (
                listed.read_text().split()
                if split
                else _ids_in(root / "labels", ".png")
            )
        else:
            self.official = LabelPngDataset(
                root, split or "Training", self.native, taxonomy
            )
            self.taxonomy = taxonomy
            self.ids = self.official.ids

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> Scene:
        if self.official is not None:
            return self.official.load(index)
        name = self.ids[index]
        image = read_image(self.root / "images" / f"{name}.jpg")
        labels = read_label_png(self.root / "labels" / f"{name}.png")
        edges = read_label_png(self.root / "edges" / f"{name}.png")
        humans = instances_from_edges(labels, edges)
        return _scene(image, labels, humans, self.native, self.taxonomy)
