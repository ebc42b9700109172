"""Augmentations that keep ground truth exact, applied to a Scene before encoding.

Geometry moves every label with the image: label maps are warped with nearest
neighbour, the image with bilinear interpolation, keypoints with the same affine map in
continuous pixel coordinates (pixel (r, c) covers [c, c+1) x [r, r+1)). Keypoints that
leave the frame become v = 0 at (0, 0); people with no pixel left are dropped and the
survivors renumbered in their old order, so instance k + 1 is still keypoints[k] and
track_ids[k]. Every draw comes from the numpy Generator passed in.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from configs import body, taxonomy
from configs.letterbox import Letterbox
from configs.records import Scene


def _keep_people(
    scene: Scene,
    image: np.ndarray,
    parts: np.ndarray,
    instances: np.ndarray,
    keypoints: np.ndarray,
    ignore: np.ndarray | None,
) -> Scene:
    """Scene from transformed maps: off-frame keypoints zeroed, empty people gone."""
    height, width = parts.shape
    kps = keypoints.astype(np.float32, copy=True)
    inside = (
        (kps[..., 0] >= 0)
        & (kps[..., 0] < width)
        & (kps[..., 1] >= 0)
        & (kps[..., 1] < height)
    )
    kps[~(inside & (kps[..., 2] > 0))] = 0.0
    present = np.bincount(instances.ravel(), minlength=scene.num_people + 1) > 0
    keep = np.flatnonzero(present[1:])
    lut = np.zeros(scene.num_people + 1, np.uint16)
    lut[keep + 1] = np.arange(1, len(keep) + 1)
    return Scene(
        image=image,
        parts=parts,
        instances=lut[instances],
        keypoints=kps[keep],
        track_ids=np.asarray(scene.track_ids)[keep],
        taxonomy=scene.taxonomy,
        ignore=ignore,
    )


def mirror_keypoints(keypoints: np.ndarray, width: int) -> np.ndarray:
    """Keypoints [N, 17, 3] of an image `width` px wide, mirrored left-right: left and
    right joints swap names, x -> width - x (pixel c covers [c, c + 1)) where the score
    or visibility is > 0; other joints keep their values. A copy."""
    kps = np.asarray(keypoints, np.float32).reshape(-1, 17, 3)[:, body()["flip"]]
    kps = kps.copy()
    kps[..., 0] = np.where(kps[..., 2] > 0, width - kps[..., 0], kps[..., 0])
    return kps


def hflip(scene: Scene) -> Scene:
    """Mirror left-right; left and right keypoints and parts swap names."""
    width = scene.parts.shape[1]
    lut = np.arange(256, dtype=np.uint8)
    flip = taxonomy(scene.taxonomy)["flip"]
    lut[: len(flip)] = flip
    kps = mirror_keypoints(scene.keypoints, width)
    kps[..., 0] = np.where(kps[..., 2] > 0, kps[..., 0], 0.0)  # unlabelled: x 0
    return Scene(
        image=np.ascontiguousarray(scene.image[:, ::-1]),
        parts=lut[scene.parts[:, ::-1]],
        instances=np.ascontiguousarray(scene.instances[:, ::-1]),
        keypoints=kps,
        track_ids=np.asarray(scene.track_ids).copy(),
        taxonomy=scene.taxonomy,
        ignore=None if scene.ignore is None else scene.ignore[:, ::-1].copy(),
    )


def warp(scene: Scene, matrix: np.ndarray, size: int) -> Scene:
    """Apply a 2 x 3 affine map (continuous pixels) and crop/pad to size x size."""
    matrix = np.asarray(matrix, np.float64)
    # OpenCV puts pixel centres at integers; ours are at +0.5.
    cv_matrix = matrix.copy()
    cv_matrix[:, 2] += matrix[:, :2] @ [0.5, 0.5] - 0.5
    dsize = (size, size)

    def labels(m: np.ndarray) -> np.ndarray:
        return cv2.warpAffine(
            m, cv_matrix, dsize, flags=cv2.INTER_NEAREST, borderValue=0
        )

    image = cv2.warpAffine(
        scene.image, cv_matrix, dsize, flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0)
    )
    ignore = None
    if scene.ignore is not None:
        ignore = labels(scene.ignore.astype(np.uint8)).astype(bool)
    kps = np.asarray(scene.keypoints, np.float32).copy()
    kps[..., :2] = kps[..., :2] @ matrix[:, :2].T.astype(np.float32) + matrix[:, 2]
    return _keep_people(
        scene, image, labels(scene.parts), labels(scene.instances), kps, ignore
    )


def _turned(zoom: float, rng: np.random.Generator, rotate: float) -> np.ndarray:
    """The 2 x 2 map that scales by `zoom` and turns by a random angle within
    +- `rotate` degrees (one draw)."""
    angle = np.deg2rad(rng.uniform(-rotate, rotate))
    cos, sin = np.cos(angle) * zoom, np.sin(angle) * zoom
    return np.array([[cos, -sin], [sin, cos]])


def _placed(
    scene: Scene,
    linear: np.ndarray,
    centre: np.ndarray,
    slack: np.ndarray,
    rng: np.random.Generator,
    size: int,
) -> Scene:
    """`scene` warped by `linear`, its point `centre` landing within +- `slack` of the
    output's centre (uniform, one draw): the placement both zooms share."""
    target = size / 2 + rng.uniform(-slack, slack)
    offset = target - linear @ centre
    return warp(scene, np.column_stack([linear, offset]), size)


def random_affine(
    scene: Scene,
    rng: np.random.Generator,
    size: int,
    scale: tuple[float, float] = (0.5, 2.0),
    rotate: float = 10.0,
) -> Scene:
    """Random zoom (log-uniform, relative to fitting the image), rotation, crop/pad.

    The image centre lands anywhere that keeps the crop inside the zoomed image (when it
    is larger than the output) or the image inside the output (when smaller).
    """
    sides = np.array(scene.parts.shape[::-1], np.float64)  # width, height
    zoom = size / sides.max() * np.exp(rng.uniform(*np.log(scale)))
    linear = _turned(zoom, rng, rotate)
    slack = np.abs(sides * zoom - size) / 2
    return _placed(scene, linear, sides / 2, slack, rng, size)


def person_zoom(
    scene: Scene,
    rng: np.random.Generator,
    size: int,
    fill: tuple[float, float] = (0.5, 0.95),
    rotate: float = 10.0,
) -> Scene:
    """Zoom onto one random person so its box spans `fill` (uniform) of the output.

    Real footage is mostly crowds and far walkers, while users' webcams and photos show
    people large: without this the student rarely sees a person fill its input. The
    box is the person's mask, or its labelled joints when it has no pixel; the person
    lands anywhere that keeps the box inside the output.
    """
    k = int(rng.integers(scene.num_people))
    ys, xs = np.nonzero(scene.instances == k + 1)
    if not len(xs):
        seen = scene.keypoints[k, :, 2] > 0
        xs, ys = scene.keypoints[k, seen, 0], scene.keypoints[k, seen, 1]
    lo, hi = np.array([xs.min(), ys.min()]), np.array([xs.max(), ys.max()]) + 1
    zoom = rng.uniform(*fill) * size / max(float((hi - lo).max()), 1.0)
    linear = _turned(zoom, rng, rotate)
    extent = np.abs(linear) @ (hi - lo)  # the rotated box's sides
    slack = np.maximum(size - extent, 0.0) / 2
    return _placed(scene, linear, (lo + hi) / 2, slack, rng, size)


def color_jitter(
    image: np.ndarray, rng: np.random.Generator, strength: float = 0.3
) -> np.ndarray:
    """Random brightness, contrast and saturation, each a factor in 1 +- strength.

    The three are linear in the pixel, so they are applied as one 3 x 4 colour matrix.
    """
    bright, contrast, sat = rng.uniform(1 - strength, 1 + strength, size=3)
    luma = np.array([0.299, 0.587, 0.114])
    saturation = sat * np.eye(3) + (1 - sat) * np.outer(np.ones(3), luma)
    linear = contrast * bright * saturation
    # Contrast pulls towards the (brightened) mean grey; saturation keeps grey grey.
    bias = (1 - contrast) * bright * float(image.mean())
    matrix = np.column_stack([linear, np.full(3, bias)])
    return cv2.transform(image, matrix)


def augment(scene: Scene, rng: np.random.Generator, cfg: dict[str, Any]) -> Scene:
    """Training augmentation: flip, zoom/rotate/crop to cfg["input_size"] (onto one
    person with probability augment.person_zoom), colour."""
    aug = cfg["augment"]
    if rng.random() < aug["flip"]:
        scene = hflip(scene)
    size, rotate = cfg["input_size"], float(aug["rotate"])
    zoom_in = aug["person_zoom"] > 0 and scene.num_people > 0  # else no extra draw
    if zoom_in and rng.random() < aug["person_zoom"]:
        scene = person_zoom(scene, rng, size, tuple(aug["person_fill"]), rotate)
    else:
        scene = random_affine(scene, rng, size, tuple(aug["scale"]), rotate)
    scene.image = color_jitter(scene.image, rng, float(aug["color"]))
    return scene


def resize_to_input(scene: Scene, size: int) -> Scene:
    """Letterbox any image into the square network input (configs.letterbox)."""
    height, width = scene.parts.shape
    box = Letterbox.fit(width, height, size)
    near = cv2.INTER_NEAREST_EXACT
    ignore = None
    if scene.ignore is not None:
        ignore = box.paste(scene.ignore.astype(np.uint8), near).astype(bool)
    return _keep_people(
        scene,
        box.paste(scene.image),
        box.paste(scene.parts, near),
        box.paste(scene.instances, near),
        box.to_input(scene.keypoints),
        ignore,
    )
