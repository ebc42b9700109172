"""MHP v2 (LV-MHP-v2): one 58-class label PNG per person, and 2D poses.

Published layout (github.com/ZhaoJ9014/Multi-Human-Parsing; its v2 evaluation code):
`<split>/images/<id>.jpg`; `<split>/parsing_annos/<id>_<NN>_<kk>.png`, one PNG per
person kk = 01..NN of an image with NN people, labels 0..58 (taxonomy `mhp59`; the
annotation tool saved 3 identical channels, channel 0 is read);
`<split>/pose_annos/<id>.mat` with `person_<k>` (k = kk - 1), a 20 x 3 array: 16
joints in MPII order (x, y, flag; flag 0 visible, 1 occluded, 2 out of image as MHP's
README states; -1 coordinates for missing), then the head box and the person box as
corner rows; `list/<split>.txt` lists the image ids.

A person is its PNG's non-zero pixels. MHP's classes map to the target taxonomy by
configs/parts.yaml; classes with no single counterpart there (sleeves, trousers, arms
not split into upper and lower) are filled from the keypoints (parts_from_keypoints),
carried objects are ignore. Joints map to COCO-17 through configs/body.yaml (`mpii`):
MPII has no face keypoints, so the Scene's face points are unlabelled.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import scipy.io

from configs.constants import NUM_KEYPOINTS
from configs.errors import DatasetError
from configs.records import Scene
from trainers.datasets.common import (
    Person,
    SceneDataset,
    assemble,
    check_file,
    check_taxonomy,
    keypoints_from,
    map_parts,
    read_image,
    read_label_png,
)
from trainers.datasets.parts_from_keypoints import derive_parts

NATIVE = "mhp59"
JOINTS = 16
# MHP flag -> COCO visibility: visible, occluded, out of image
VISIBILITY = {0: 2.0, 1: 1.0, 2: 0.0}


def pose_keypoints(rows: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """COCO-17 keypoints and extras (head_top, neck, ...) of one `person_<k>` array."""
    rows = np.asarray(rows, np.float32).reshape(-1, 3)[:JOINTS].copy()
    missing = (rows[:, 0] < 0) | (rows[:, 1] < 0)
    rows[:, 2] = [VISIBILITY.get(int(f), 0.0) for f in rows[:, 2]]
    rows[missing] = 0.0
    return keypoints_from(rows, "mpii")


class MhpDataset(SceneDataset):
    """MHP v2 images as Scenes.

    Args:
        root: LV-MHP-v2 folder (holding train/, val/, list/).
        split: train or val.
        taxonomy: part taxonomy of the Scenes.
    """

    def __init__(self, root: str | Path, split: str = "train", taxonomy: str = "fine"):
        root = Path(root)
        self.dir = root / split
        annos = check_file(self.dir / "parsing_annos", "MHP parsing_annos folder")
        check_taxonomy(NATIVE, taxonomy)
        self.taxonomy = taxonomy
        self.people: dict[str, list[tuple[int, Path]]] = defaultdict(list)
        for path in annos.glob("*.png"):
            image_id, count, index = path.stem.rsplit("_", 2)
            if not (count.isdigit() and index.isdigit()):
                raise DatasetError(f"not an MHP person label name: {path.name}")
            self.people[image_id].append((int(index), path))
        listed = root / "list" / f"{split}.txt"
        ids = listed.read_text().split() if listed.exists() else sorted(self.people)
        self.ids = [i for i in ids if i in self.people]
        if not self.ids:
            raise DatasetError(f"no annotated MHP images in {self.dir}")

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int) -> Scene:
        image_id = self.ids[index]
        image = read_image(self.dir / "images" / f"{image_id}.jpg")
        poses = self._poses(image_id)
        people = []
        for k, path in sorted(self.people[image_id]):
            native = read_label_png(path)
            if native.shape != image.shape[:2]:
                raise DatasetError(
                    f"{path.name}: {native.shape} vs image {image.shape}"
                )
            mask = native > 0
            keypoints, extras = poses.get(
                k - 1, (np.zeros((NUM_KEYPOINTS, 3), np.float32), {})
            )
            derived = derive_parts(mask, keypoints, extras)
            people.append(
                Person(
                    mask=mask,
                    keypoints=keypoints,
                    parts=map_parts(native, NATIVE, self.taxonomy, derived),
                )
            )
        return assemble(image, people, self.taxonomy)

    def _poses(self, image_id: str) -> dict[int, tuple[np.ndarray, dict]]:
        path = self.dir / "pose_annos" / f"{image_id}.mat"
        if not path.exists():
            return {}
        try:
            mat = scipy.io.loadmat(path)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"cannot read MHP pose file {path}: {exc}") from exc
        return {
            int(key.split("_")[1]): pose_keypoints(value)
            for key, value in mat.items()
            if key.startswith("person_")
        }
