"""What every real data-set loader shares: the map-style base, file reading, taxonomy
mapping and turning per-person masks into one Scene.

Loaders index their files in `__init__` (cheap) and decode one image in `__getitem__`
(lazy), so opening COCO's 250k people costs one JSON parse and nothing more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from configs import ConfigError, body, mapping, taxonomy
from configs.constants import IGNORE, NUM_KEYPOINTS
from configs.errors import DatasetError
from configs.extras import require
from configs.records import Scene
from nets.decode import renumber_people

Image = require("PIL.Image", "train", fatal=True)


class SceneDataset(Sequence[Scene]):
    """Map-style data set of Scenes: `len(ds)`, `ds[i]`, `for scene in ds`."""

    taxonomy: str = "fine"

    def __len__(self) -> int:
        raise NotImplementedError

    def load(self, index: int) -> Scene:
        """Decode scene `index` (0 <= index < len)."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> Scene:  # type: ignore[override]
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"scene {index} out of range (data set has {n})")
        return self.load(index % n)


@dataclass
class Person:
    """One annotated person before the Scene is assembled.

    Attributes:
        mask: H x W bool, the person's annotated pixels.
        keypoints: 17 x 3 float32 COCO-17 (x, y, v).
        parts: H x W uint8 part ids in the target taxonomy (read inside `mask`), or None
            when the data set has no part labels for this person (ignore).
        track_id: identity across the frames of a video (-1: the person's index).
        box: optional (x0, y0, x1, y1); ignored in the Scene if the person is dropped.
    """

    mask: np.ndarray
    keypoints: np.ndarray
    parts: np.ndarray | None = None
    track_id: int = -1
    box: tuple[float, float, float, float] | None = None


def read_image(path: Path) -> np.ndarray:
    """H x W x 3 uint8 RGB."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"cannot read image {path}")
    return np.ascontiguousarray(image[:, :, ::-1])


def read_label_png(path: Path) -> np.ndarray:
    """H x W uint8 label ids of a label PNG (palette indices kept; RGB: channel 0).

    PIL rather than OpenCV: OpenCV would turn a palette PNG's indices into colours.
    """
    try:
        with Image.open(path) as im:
            labels = np.asarray(im)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read label map {path}: {exc}") from exc
    if labels.ndim == 3:  # MHP v2 stores its labels in all three channels
        labels = labels[:, :, 0]
    return np.ascontiguousarray(labels, dtype=np.uint8)


def check_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise DatasetError(f"{what} not found: {path}")
    return path


@cache
def _lut(source: str, target: str) -> np.ndarray:
    table = mapping(source, target)
    lut = np.full(256, IGNORE, np.uint8)
    lut[: len(table)] = table
    return lut


@cache
def _objects(source: str) -> np.ndarray:
    tax = taxonomy(source)
    flags = np.zeros(256, bool)
    for name in tax.get("objects", []):
        flags[tax["classes"].index(name)] = True
    return flags


def check_taxonomy(source: str, target: str) -> None:
    """Fail at open time, not at the first image, when `source` has no `target`."""
    try:
        _lut(source, target)
    except ConfigError as exc:
        raise DatasetError(str(exc)) from exc


def map_parts(
    native: np.ndarray, source: str, target: str, derived: np.ndarray | None = None
) -> np.ndarray:
    """Part ids of `source` mapped to `target` (configs/parts.yaml mappings).

    Classes without a counterpart (255 in the mapping) are filled from `derived` (fine
    ids, e.g. from keypoints) when given, except the source's carried `objects`, which
    stay ignore: a ball is no body part.
    """
    out = _lut(source, target)[native]
    if derived is not None:
        fill = (out == IGNORE) & (native != IGNORE) & ~_objects(source)[native]
        out[fill] = _lut("fine", target)[derived[fill]]
    return out


def keypoints_from(
    raw: np.ndarray, order: str
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """COCO-17 keypoints from another data set's order (configs/body.yaml
    `other_keypoints`), plus its extra labelled points (head_top, neck, ...) by name."""
    names = body()["other_keypoints"][order]
    coco = {n: i for i, n in enumerate(body()["keypoints"])}
    raw = np.asarray(raw, np.float32).reshape(len(names), 3)
    out = np.zeros((NUM_KEYPOINTS, 3), np.float32)
    extras: dict[str, np.ndarray] = {}
    for name, row in zip(names, raw, strict=True):
        if name in coco:
            out[coco[name]] = row if row[2] > 0 else 0.0
        elif row[2] > 0:
            extras[name] = row[:2].copy()
    return out, extras


def assemble(
    image: np.ndarray,
    people: list[Person],
    target: str,
    ignore: np.ndarray | None = None,
    overlap: str = "smaller_on_top",
) -> Scene:
    """One Scene from per-person masks.

    Overlaps: annotated masks rarely overlap but do at their borders; painting the
    larger people first keeps small people visible (`smaller_on_top`). Masks derived
    from keypoints overlap wherever two skeletons come close and nobody knows who is
    in front there (`ignore_overlap`): the larger person gets those pixels, ignored.
    People left without a pixel are dropped (Scene contract); their box is ignored.
    """
    h, w = image.shape[:2]
    instances = np.zeros((h, w), np.uint16)
    parts = np.zeros((h, w), np.uint8)
    ignore = np.zeros((h, w), bool) if ignore is None else ignore.copy()
    order = sorted(range(len(people)), key=lambda k: -int(people[k].mask.sum()))
    if overlap == "ignore_overlap":
        order.reverse()  # larger last: they win the shared pixels
        counts = np.zeros((h, w), np.uint8)
    for k in order:
        person = people[k]
        m = person.mask
        instances[m] = k + 1
        parts[m] = IGNORE if person.parts is None else person.parts[m]
        if overlap == "ignore_overlap":
            counts[m] += 1
    if overlap == "ignore_overlap":
        ignore |= counts > 1

    present = [(instances == k + 1).any() for k in range(len(people))]
    kept, instances = renumber_people(present, instances, dtype=np.uint16)
    for k in set(range(len(people))) - set(kept):
        if people[k].box is not None:
            x0, y0, x1, y1 = (int(round(v)) for v in people[k].box)
            ignore[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = True

    keypoints = np.zeros((len(kept), NUM_KEYPOINTS, 3), np.float32)
    track_ids = np.zeros(len(kept), np.int64)
    for j, k in enumerate(kept):
        keypoints[j] = people[k].keypoints
        track_ids[j] = people[k].track_id if people[k].track_id >= 0 else j
    return Scene(
        image=image,
        parts=parts,
        instances=instances,
        keypoints=keypoints,
        track_ids=track_ids,
        taxonomy=target,
        ignore=ignore if ignore.any() else None,
    )
