"""Overlay pictures of a Scene for people: image | parts | instances | skeletons."""

from __future__ import annotations

import cv2
import numpy as np

from configs import taxonomy
from configs.drawing import (
    colour_slots,
    draw_skeleton,
    line_thickness,
    person_colours,
)
from configs.records import Scene


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.4) -> None:
    """White text on a dark box (an outline drawn with a thicker stroke comes out wider
    than the text in OpenCV 5, so no outline)."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    (w, h), base = cv2.getTextSize(text, font, scale, 1)
    x, y = org
    cv2.rectangle(img, (x - 1, y - h - 2), (x + w + 1, y + base), (0, 0, 0), -1)
    cv2.putText(img, text, org, font, scale, (255, 255, 255), 1, cv2.LINE_AA)


def parts_panel(scene: Scene) -> np.ndarray:
    tax = taxonomy(scene.taxonomy)
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(tax["colors"])] = tax["colors"]
    lut[255] = (255, 255, 255)
    col = lut[scene.parts]
    dim = (scene.image * 0.35).astype(np.uint8)
    return np.where(scene.parts[..., None] > 0, col, dim)


def instances_panel(scene: Scene) -> np.ndarray:
    """Each person in the colour of their track id (stable over a clip)."""
    ids = scene.track_ids
    lut = np.zeros((scene.num_people + 1, 3), np.uint8)
    lut[1:] = person_colours()[colour_slots(ids)]
    dim = (scene.image * 0.35).astype(np.uint8)
    out = np.where(scene.instances[..., None] > 0, lut[scene.instances], dim)
    for k, (x0, y0, _, _) in enumerate(scene.boxes()):
        _text(out, f"#{ids[k]}", (int(x0), max(int(y0) + 10, 10)), 0.35)
    return out


def skeleton_panel(scene: Scene) -> np.ndarray:
    """Each person's skeleton in the colour of their track id, as the overlay draws
    it; occluded joints (v = 1) as rings."""
    out = (scene.image * 0.6).astype(np.uint8)
    thick = line_thickness(scene.image.shape)
    colours = person_colours()[colour_slots(scene.track_ids)]
    for kp, colour in zip(scene.keypoints, colours, strict=True):
        rgb = tuple(int(c) for c in colour)
        draw_skeleton(out, kp, rgb, kp[:, 2] > 0, thick, hollow=kp[:, 2] == 1)
    return out


def legend(width: int, name: str) -> np.ndarray:
    tax = taxonomy(name)
    classes, colours = tax["classes"][1:], tax["colors"][1:]
    per_row = 8
    rows = (len(classes) + per_row - 1) // per_row
    out = np.full((18 * rows + 4, width, 3), 32, np.uint8)
    cell = width // per_row
    for k, (cls, col) in enumerate(zip(classes, colours, strict=True)):
        x, y = (k % per_row) * cell + 4, (k // per_row) * 18 + 4
        cv2.rectangle(out, (x, y), (x + 12, y + 12), tuple(int(c) for c in col), -1)
        _text(out, cls.replace("_", " "), (x + 16, y + 11), 0.36)
    return out


def preview(scene: Scene) -> np.ndarray:
    """One RGB picture: the four panels side by side, a part legend and key below."""
    row = np.concatenate(
        [
            scene.image,
            parts_panel(scene),
            instances_panel(scene),
            skeleton_panel(scene),
        ],
        1,
    )
    key = np.full((18, row.shape[1], 3), 32, np.uint8)
    _text(
        key,
        f"{scene.num_people} people | colour = track id | joints: dot = visible "
        "(v=2), ring = occluded (v=1)",
        (4, 13),
        0.4,
    )
    return np.concatenate([row, legend(row.shape[1], scene.taxonomy), key], 0)
