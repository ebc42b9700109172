"""Scenes <-> a COCO-style folder, so synthetic and real data share one loader path.

Layout: images/NAME.jpg, parts/NAME.png (uint8 part ids), instances/NAME.png (uint16,
k + 1 = the annotation with instance_id k + 1) and annotations.json in COCO keypoint
format (RLE masks, track ids; frame_id / video_id per image in video mode). It loads in
pycocotools.coco.COCO. The RLE helpers are small on purpose: real-data loaders use them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from configs import body, taxonomy
from configs.records import Scene

# Quality 95 without chroma subsampling: saved images stay close to the generated ones.
JPEG_PARAMS = [
    cv2.IMWRITE_JPEG_QUALITY,
    95,
    cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
    cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
]


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """Binary H x W mask -> COCO RLE with `counts` as str (JSON-serialisable)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {
        "size": [int(v) for v in rle["size"]],
        "counts": rle["counts"].decode("ascii"),
    }


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    """COCO RLE (compressed str/bytes or uncompressed list counts) -> H x W bool."""
    if isinstance(rle["counts"], list):
        rle = mask_utils.frPyObjects(rle, *rle["size"])
    elif isinstance(rle["counts"], str):
        rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    return mask_utils.decode(rle).astype(bool)


def person_category() -> dict[str, Any]:
    """The COCO person category with keypoint names and the 1-indexed skeleton."""
    b = body()
    return {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(b["keypoints"]),
        "skeleton": [[i + 1, j + 1] for i, j in b["limbs"] + b["redundant_limbs"]],
    }


def scene_annotations(
    scene: Scene, image_id: int, first_id: int
) -> list[dict[str, Any]]:
    """One COCO annotation per person of the scene (ids first_id, first_id + 1, ...)."""
    out = []
    for k in range(scene.num_people):
        mask = scene.instances == k + 1
        ys, xs = np.nonzero(mask)
        x0, y0 = int(xs.min()), int(ys.min())
        kp = scene.keypoints[k]
        out.append(
            {
                "id": first_id + k,
                "image_id": image_id,
                "category_id": 1,
                "keypoints": [round(float(v), 2) for v in kp.reshape(-1)],
                "num_keypoints": int((kp[:, 2] > 0).sum()),
                "bbox": [x0, y0, int(xs.max()) + 1 - x0, int(ys.max()) + 1 - y0],
                "area": int(mask.sum()),
                "iscrowd": 0,
                "segmentation": mask_to_rle(mask),
                "track_id": int(scene.track_ids[k]),
                "instance_id": k + 1,
            }
        )
    return out


class CocoWriter:
    """Writes scenes into a folder as they come; `close()` writes annotations.json."""

    def __init__(self, out: str | Path, info: dict[str, Any] | None = None):
        self.out = Path(out)
        for sub in ("images", "parts", "instances"):
            (self.out / sub).mkdir(parents=True, exist_ok=True)
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []
        self.videos: dict[int, int] = {}
        self.info = info or {}
        self.taxonomy: str | None = None

    def add(self, scene: Scene, name: str, **image_fields: Any) -> int:
        """Write one scene as NAME.jpg/.png; extra fields (frame_id, video_id) go on the
        image record. Returns the image id."""
        if self.taxonomy not in (None, scene.taxonomy):
            raise ValueError("all scenes of one export must share a part taxonomy")
        self.taxonomy = scene.taxonomy
        image_id = len(self.images) + 1
        h, w = scene.parts.shape
        bgr = cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(self.out / "images" / f"{name}.jpg"), bgr, JPEG_PARAMS)
        cv2.imwrite(str(self.out / "parts" / f"{name}.png"), scene.parts)
        cv2.imwrite(str(self.out / "instances" / f"{name}.png"), scene.instances)
        self.images.append(
            {
                "id": image_id,
                "file_name": f"{name}.jpg",
                "width": w,
                "height": h,
                **image_fields,
            }
        )
        if "video_id" in image_fields:
            vid = image_fields["video_id"]
            self.videos[vid] = self.videos.get(vid, 0) + 1
        self.annotations += scene_annotations(
            scene, image_id, len(self.annotations) + 1
        )
        return image_id

    def close(self) -> Path:
        tax = taxonomy(self.taxonomy or "fine")
        data: dict[str, Any] = {
            "info": {"description": "PartStream synthetic world", **self.info},
            "images": self.images,
            "annotations": self.annotations,
            "categories": [person_category()],
            "part_taxonomy": {
                "name": self.taxonomy or "fine",
                "classes": tax["classes"],
            },
        }
        if self.videos:
            data["videos"] = [
                {"id": v, "nframes": n} for v, n in sorted(self.videos.items())
            ]
        path = self.out / "annotations.json"
        path.write_text(json.dumps(data))
        return path


def export(scenes: Iterable[Scene], out: str | Path, names: Iterable[str]) -> Path:
    """Write scenes under the given names; returns the annotations.json path."""
    writer = CocoWriter(out)
    for scene, name in zip(scenes, names, strict=False):
        writer.add(scene, name)
    return writer.close()


def load_coco_export(folder: str | Path) -> Iterator[Scene]:
    """Scenes back from a folder written by CocoWriter (images in annotation order).

    The image is the stored JPEG (so not bit-identical to the generated one); parts,
    instances, keypoints and track ids are exact.
    """
    root = Path(folder)
    path = root / "annotations.json"
    if not path.is_file():
        raise ValueError(f"no annotations.json in {root}")
    data = json.loads(path.read_text())
    name = data.get("part_taxonomy", {}).get("name", "fine")
    by_image: dict[int, list[dict[str, Any]]] = {}
    for ann in data["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    for img in data["images"]:
        stem = Path(img["file_name"]).stem
        bgr = cv2.imread(str(root / "images" / img["file_name"]), cv2.IMREAD_COLOR)
        parts = cv2.imread(str(root / "parts" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        inst = cv2.imread(str(root / "instances" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        if bgr is None or parts is None or inst is None:
            raise ValueError(f"missing or unreadable files for image {stem} in {root}")
        anns = sorted(by_image.get(img["id"], []), key=lambda a: a["instance_id"])
        kps = np.array([a["keypoints"] for a in anns], np.float32).reshape(-1, 17, 3)
        yield Scene(
            image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB),
            parts=parts.astype(np.uint8),
            instances=inst.astype(np.uint16),
            keypoints=kps,
            track_ids=np.array([a["track_id"] for a in anns], np.int64),
            taxonomy=name,
        )
