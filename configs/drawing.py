"""The one person palette and skeleton painter: the pipeline's overlay
(pipeline/stages/render.py) and the synthetic world's previews
(trainers/synth/preview.py) draw people alike, so a person looks the same in a
training preview and on the stream.

Colours follow a person's id (track id in the pipeline and the synthetic clips), the
skeleton is the body's limb tree (configs/body.yaml `limbs`), drawn at 1/16 px.
"""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from configs import body

PALETTE = 24  # distinct person colours before they repeat
UNCONFIRMED = PALETTE  # palette row of people without an id (yet)
SHIFT = 4  # OpenCV fixed-point bits: points are placed at 1/16 px


def person_colours(n: int = PALETTE) -> np.ndarray:
    """(n + 1) x 3 uint8 RGB: well-spread saturated hues (golden-ratio steps), then a
    neutral grey for people without an id."""
    hues = (np.arange(n) * 0.618034) % 1.0
    rgb = [colorsys.hsv_to_rgb(h, 0.75, 1.0) for h in hues] + [(0.75, 0.75, 0.75)]
    return (np.asarray(rgb) * 255).astype(np.uint8)


def colour_slots(ids: np.ndarray) -> np.ndarray:
    """Palette row of each id (-1, no id yet: the grey row)."""
    ids = np.asarray(ids, np.int64)
    return np.where(ids >= 0, ids % PALETTE, UNCONFIRMED)


def line_thickness(shape: tuple[int, ...]) -> int:
    """Stroke width in px for an image of this shape (1 px per 240 px of short side)."""
    return max(1, round(min(shape[:2]) / 240))


def draw_skeleton(
    out: np.ndarray,
    keypoints: np.ndarray,
    colour: tuple[int, ...],
    seen: np.ndarray,
    thickness: int,
    hollow: np.ndarray | None = None,
) -> None:
    """One person's skeleton onto `out` (H x W x 3 RGB), in place.

    keypoints: 17 x >= 2 (x, y in continuous px); a limb is drawn where both ends are
    `seen` and neither is `hollow`, in the person's colour with a black outline; each
    seen joint is a white dot ringed in black, or (where `hollow`, e.g. an occluded
    ground-truth joint or a guessed one) a ring of the person's colour: limbs to guesses
    drew webs across close-ups.
    """
    pts = np.round(np.asarray(keypoints)[:, :2] * (1 << SHIFT)).astype(np.int32)
    joined = seen if hollow is None else seen & ~hollow
    for i, j in body()["limbs"]:
        if joined[i] and joined[j]:
            a, b = tuple(pts[i]), tuple(pts[j])
            cv2.line(out, a, b, (0, 0, 0), thickness + 2, cv2.LINE_AA, SHIFT)
            cv2.line(out, a, b, colour, thickness, cv2.LINE_AA, SHIFT)
    radius = (1 << SHIFT) * (thickness + 1)
    for k in np.flatnonzero(seen):
        centre = tuple(pts[k])
        if hollow is not None and hollow[k]:
            cv2.circle(out, centre, radius, colour, thickness, cv2.LINE_AA, SHIFT)
            continue
        cv2.circle(out, centre, radius, (255, 255, 255), -1, cv2.LINE_AA, SHIFT)
        cv2.circle(out, centre, radius, (0, 0, 0), 1, cv2.LINE_AA, SHIFT)
