"""COCO-format person data sets: COCO keypoints + instance masks, OCHuman, CrowdPose.

Masks come from the annotation's `segmentation` (polygons, uncompressed or compressed
RLE, decoded with pycocotools); crowd regions (`iscrowd`) become ignore. COCO has no
part labels: parts are derived from keypoints and masks (parts_from_keypoints.py)
unless `parts="none"` (then people's pixels are ignore for parts); a folder written by
trainers.synth.coco_export has exact part label PNGs, read instead. People annotated
with keypoints only (CrowdPose, PoseTrack) get masks drawn from their keypoints, with
the band around them ignored. RLE helpers: trainers.synth.coco_export's (one home).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

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
from trainers.datasets.parts_from_keypoints import derive_parts, skeleton_person
from trainers.synth.coco_export import rle_to_mask

PART_SOURCES = ("auto", "png", "derive", "none")


def decode_segmentation(seg: Any, height: int, width: int) -> np.ndarray:
    """H x W bool mask of a COCO segmentation: polygon list, uncompressed RLE (list
    counts) or compressed RLE (string counts)."""
    if isinstance(seg, list):
        polys = [p for p in seg if len(p) >= 6]  # a polygon needs three points
        if not polys:
            return np.zeros((height, width), bool)
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
        mask = mask_utils.decode(rle).astype(bool)
    elif isinstance(seg, dict) and isinstance(seg.get("counts"), (list, str, bytes)):
        mask = rle_to_mask(seg)
    else:
        raise DatasetError(f"unknown segmentation format: {str(seg)[:60]}")
    if mask.shape != (height, width):
        raise DatasetError(
            f"RLE of size {mask.shape} in an image of size {(height, width)}"
        )
    return mask


def xywh_to_xyxy(box: Any) -> tuple[float, float, float, float] | None:
    if not box or len(box) != 4:
        return None
    x, y, w, h = (float(v) for v in box)
    return x, y, x + w, y + h


def load_json(path: Path) -> dict[str, Any]:
    check_file(path, "annotation file")
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path} is not valid JSON: {exc}") from exc


def find_image_root(files: list[Path], first_image: str, images: Path | None) -> Path:
    """The folder `file_name`s are relative to: `images` if given, else the annotation
    file's folder, its images/ (synthetic exports) or a parent (PoseTrack's names start
    at the data set's root)."""
    if images is not None:
        return Path(images)
    start = files[0].parent
    for root in [start, start / "images", *start.parents[:3]]:
        if (root / first_image).exists():
            return root
    raise DatasetError(
        f"image {first_image} not found next to {files[0]} or its parents: "
        "give the image folder (spec option images=DIR)"
    )


class CocoDataset(SceneDataset):
    """People of a COCO-format keypoint file, one Scene per image.

    Args:
        annotations: the JSON file (or, for subclasses, a folder of them).
        images: folder the images' `file_name`s are relative to (default: found next
            to the annotations).
        taxonomy: part taxonomy of the Scenes (configs/parts.yaml).
        parts: "auto" (label PNGs when the folder has them, else derive), "png"
            (`parts/<image stem>.png` next to the JSON in the taxonomy its
            `part_taxonomy` names, as trainers.synth.coco_export writes), "derive"
            (from keypoints and masks) or "none" (ignore).
        reach: see `derive_parts`; None labels every mask pixel.
        skip_empty: leave out images without a (non-crowd) person.
    """

    keypoint_order = "coco"  # or a key of configs/body.yaml `other_keypoints`

    def __init__(
        self,
        annotations: str | Path,
        images: str | Path | None = None,
        taxonomy: str = "fine",
        parts: str = "auto",
        reach: float | None = None,
        skip_empty: bool = True,
    ):
        if parts not in PART_SOURCES:
            raise DatasetError(f"parts must be one of {PART_SOURCES}, not '{parts}'")
        check_taxonomy("fine", taxonomy)
        self.taxonomy = taxonomy
        self.parts_mode = parts
        self.reach = reach
        files = self._files(Path(annotations))
        self.images: list[dict[str, Any]] = []
        self.anns: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        label_taxonomy = None
        for path in files:
            data = load_json(path)
            label_taxonomy = data.get("part_taxonomy", {}).get("name")
            people = self._person_categories(data, path)
            for ann in data.get("annotations", []):
                if ann.get("category_id", 1) in people:
                    self.anns[ann["image_id"]].append(ann)
            self.images += [im for im in data.get("images", []) if self._keep_image(im)]
        if skip_empty:
            self.images = [
                im
                for im in self.images
                if any(not a.get("iscrowd") for a in self.anns.get(im["id"], []))
            ]
        self.images.sort(key=self._image_order)
        if not self.images:
            raise DatasetError(f"no annotated images in {annotations}")
        self.root = find_image_root(files, self.images[0]["file_name"], images)
        self.label_dir: Path | None = None
        if parts in ("auto", "png"):
            folder = files[0].parent / "parts"
            if label_taxonomy and folder.is_dir():
                check_taxonomy(label_taxonomy, taxonomy)
                self.label_dir, self.label_taxonomy = folder, label_taxonomy
            elif parts == "png":
                raise DatasetError(f"no part label PNGs ({folder}, part_taxonomy)")

    def _files(self, path: Path) -> list[Path]:
        return [path]

    @staticmethod
    def _person_categories(data: dict[str, Any], path: Path) -> set[int]:
        cats = data.get("categories") or [{"id": 1, "name": "person"}]
        people = {c["id"] for c in cats if c.get("name") == "person"}
        if not people:
            raise DatasetError(f"{path} has no 'person' category")
        return people

    def _keep_image(self, info: dict[str, Any]) -> bool:
        return True

    def _image_order(self, info: dict[str, Any]) -> Any:
        return str(info["file_name"])

    def __len__(self) -> int:
        return len(self.images)

    def image_path(self, index: int) -> Path:
        return self.root / self.images[index]["file_name"]

    def load(self, index: int) -> Scene:
        info = self.images[index]
        image = read_image(self.image_path(index))
        h, w = image.shape[:2]
        ignore = self._ignore(info, h, w)
        labelled = self._label_map(info)
        people: list[Person] = []
        drawn = False
        for ann in self.anns.get(info["id"], []):
            if ann.get("iscrowd"):
                if ann.get("segmentation"):
                    ignore |= decode_segmentation(ann["segmentation"], h, w)
                continue
            keypoints, extras = self._keypoints(ann)
            if ann.get("segmentation"):
                mask = decode_segmentation(ann["segmentation"], h, w)
                parts = (
                    labelled
                    if labelled is not None
                    else self._parts(ann, mask, keypoints, extras)
                )
            else:
                mask, band, derived = skeleton_person(keypoints, extras, (h, w))
                parts = map_parts(derived, "fine", self.taxonomy)
                ignore |= band
                drawn = True
            people.append(
                Person(
                    mask=mask,
                    keypoints=keypoints,
                    parts=parts,
                    track_id=int(ann.get("track_id", -1)),
                    box=xywh_to_xyxy(ann.get("bbox")),
                )
            )
        overlap = "ignore_overlap" if drawn else "smaller_on_top"
        return assemble(image, people, self.taxonomy, ignore, overlap)

    def _label_map(self, info: dict[str, Any]) -> np.ndarray | None:
        if self.label_dir is None:
            return None
        native = read_label_png(self.label_dir / f"{Path(info['file_name']).stem}.png")
        return map_parts(native, self.label_taxonomy, self.taxonomy)

    def _ignore(self, info: dict[str, Any], height: int, width: int) -> np.ndarray:
        return np.zeros((height, width), bool)

    def _keypoints(
        self, ann: dict[str, Any]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        raw = ann.get("keypoints") or []
        if self.keypoint_order != "coco":
            return keypoints_from(raw, self.keypoint_order)
        kp = np.zeros((NUM_KEYPOINTS, 3), np.float32)
        if raw:
            kp[:] = np.asarray(raw, np.float32).reshape(NUM_KEYPOINTS, 3)
            kp[kp[:, 2] <= 0] = 0.0
        return kp, {}

    def _parts(
        self,
        ann: dict[str, Any],
        mask: np.ndarray,
        keypoints: np.ndarray,
        extras: dict[str, np.ndarray],
    ) -> np.ndarray | None:
        if self.parts_mode == "none":
            return None
        return self._derived_parts(mask, keypoints, extras)

    def _derived_parts(
        self, mask: np.ndarray, keypoints: np.ndarray, extras: dict[str, np.ndarray]
    ) -> np.ndarray:
        """Parts drawn from the keypoints inside `mask`, in the dataset's taxonomy."""
        derived = derive_parts(mask, keypoints, extras, self.reach)
        return map_parts(derived, "fine", self.taxonomy)


class CrowdPoseDataset(CocoDataset):
    """CrowdPose: COCO format, 14 keypoints (configs/body.yaml), no masks: masks are
    drawn from keypoints, the band around them and their overlaps are ignored."""

    keypoint_order = "crowdpose"
