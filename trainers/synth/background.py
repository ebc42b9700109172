"""Backgrounds and non-person objects: walls, floors, clutter, look-alike limbs, props.

Clutter that looks like people on purpose (skin- and clothing-coloured capsules, round
skin blobs) is drawn through the same canvas as people under the CLUTTER id, so it gets
the same textures and shading but labels background: a network has to learn body
*structure*, not "textured capsule = arm". Foreground objects (poles, counters,
railings, plants) are drawn after people under the OCCLUDER id: they hide people
without being people.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from trainers.synth.draw import CIRCLE, POLY, SEG, Shape
from trainers.synth.looks import SKIN_TONES, Material, cloth, material, random_colour
from trainers.synth.rand import Rand, choose
from trainers.synth.textures import BLOTCH, GRAIN, PLAIN, STRIPES, TILE, bank

CLUTTER, OCCLUDER = 254, 255  # canvas person ids of non-person objects
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass
class Background:
    """image: H x W x 3 uint8 RGB; clutter shapes (drawn before people) and their
    materials; px_per_m: texture scale of those materials."""

    image: np.ndarray
    clutter: list[Shape]
    materials: list[Material]
    px_per_m: float


def object_materials(rng: Rand) -> list[Material]:
    """Eight materials shared by clutter, props and occluders."""
    out = []
    for _ in range(2):
        skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.85, 1.1)
        skin = np.clip(skin, 0, 255).astype(np.float32)
        out.append(material(rng, skin, GRAIN, 0.05, skin * 0.85))
    out += [cloth(rng) for _ in range(4)]
    out += [material(rng, random_colour(rng), PLAIN, 0.1) for _ in range(2)]
    return out


@lru_cache(maxsize=32)
def _read_image(path: str) -> np.ndarray | None:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@lru_cache(maxsize=8)
def list_images(folder: str) -> tuple[str, ...]:
    """Image files of a folder, sorted (the seed picks one by index)."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"background folder not found: {folder}")
    files = tuple(
        str(p) for p in sorted(root.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not files:
        raise ValueError(f"no images in background folder {folder}")
    return files


def _photo(rng: Rand, size: int, folder: str) -> np.ndarray:
    files = list_images(folder)
    img = _read_image(files[int(rng.integers(len(files)))])
    if img is None:
        raise ValueError(f"cannot read background image {files[0]}")
    h, w = img.shape[:2]
    side = int(min(h, w) * rng.uniform(0.5, 1.0))
    y0, x0 = int(rng.integers(h - side + 1)), int(rng.integers(w - side + 1))
    crop = cv2.resize(img[y0 : y0 + side, x0 : x0 + side], (size, size))
    return crop[:, ::-1].copy() if rng.random() < 0.5 else crop


def _field(rng: Rand, size: int, base: np.ndarray, spread: float):
    cells = int(rng.integers(2, 7))
    small = np.clip(base + rng.normal(0, spread, (cells, cells, 3)), 0, 255)
    return cv2.resize(
        small.astype(np.uint8), (size, size), interpolation=cv2.INTER_CUBIC
    )


def _texture_overlay(rng: Rand, img: np.ndarray, amp: float) -> np.ndarray:
    b = bank()
    fid = choose(rng, b.of_kind(choose(rng, (BLOTCH, GRAIN, STRIPES))))
    step = rng.uniform(0.3, 2.0)
    h, w = img.shape[:2]
    rows = (np.arange(h) * step).astype(np.int64) + int(rng.integers(TILE))
    cols = (np.arange(w) * step).astype(np.int64) + int(rng.integers(TILE))
    tex = b.fields[fid][np.ix_(rows & (TILE - 1), cols & (TILE - 1))]
    tex3 = cv2.cvtColor(tex, cv2.COLOR_GRAY2RGB)
    return cv2.addWeighted(img, 1.0, tex3, amp, -amp * 128)


def _muted(rng: Rand) -> np.ndarray:
    """A wall or floor colour: mostly greys, beiges and dull hues, sometimes any."""
    if rng.random() < 0.3:
        return random_colour(rng)
    rgb = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 0.35), rng.uniform(0.2, 0.9))
    return np.array(rgb, np.float32) * 255


def _procedural(rng: Rand, size: int, horizon: float) -> np.ndarray:
    wall = _field(rng, size, _muted(rng), rng.uniform(5, 35))
    floor = _field(rng, size, _muted(rng), rng.uniform(5, 30))
    img = wall
    hy = int(np.clip(horizon, 0, size))
    if hy < size:
        img[hy:] = floor[hy:]
        if rng.random() < 0.6:  # floor tiles in perspective
            col = tuple(int(c) for c in random_colour(rng))
            vx = size * rng.uniform(0.2, 0.8)
            for x in np.linspace(-size, 2 * size, int(rng.integers(6, 20))):
                cv2.line(img, (int(vx), hy), (int(x), size), col, 1, cv2.LINE_AA)
            y = hy + 2.0
            while y < size:
                cv2.line(img, (0, int(y)), (size, int(y)), col, 1, cv2.LINE_AA)
                y += 2 + (y - hy) * rng.uniform(0.15, 0.4)
    img = _texture_overlay(rng, img, rng.uniform(0.03, 0.22))
    for _ in range(int(rng.integers(4, 30))):
        _rgb_clutter(rng, img, size, hy)
    return img


def _rgb_clutter(rng: Rand, img: np.ndarray, size: int, hy: int) -> None:
    """One flat object: box, frame, disc, pole or polyline (windows, furniture)."""
    col = tuple(int(c) for c in random_colour(rng))
    x, y = rng.uniform(-0.1, 1.1, 2) * size
    w, h = np.exp(rng.uniform(np.log(4), np.log(size * 0.5), 2))
    kind = rng.integers(5)
    p1, p2 = (int(x), int(y)), (int(x + w), int(y + h))
    if kind == 0:
        cv2.rectangle(img, p1, p2, col, -1)
    elif kind == 1:
        cv2.rectangle(img, p1, p2, col, int(rng.integers(1, 6)))
    elif kind == 2:
        cv2.ellipse(
            img, p1, (int(w / 2), int(h / 2)), rng.uniform(0, 180), 0, 360, col, -1
        )
    elif kind == 3:
        cv2.line(
            img,
            (int(x), 0),
            (int(x + rng.normal(0, 10)), max(hy, 1) + int(h)),
            col,
            int(rng.integers(2, 12)),
        )
    else:
        pts = rng.uniform(-1, 1, (int(rng.integers(3, 7)), 2)) * [w, h] + [x, y]
        cv2.polylines(
            img,
            [pts.astype(np.int32)],
            bool(rng.random() < 0.5),
            col,
            int(rng.integers(1, 5)),
        )


def _limb_clutter(rng: Rand, size: int, count: int) -> list[Shape]:
    """Capsule chains and blobs that look like loose limbs and heads (background)."""
    out = []
    for _ in range(count):
        x, y = rng.uniform(0, size, 2)
        r = size * np.exp(rng.uniform(np.log(0.006), np.log(0.04)))
        ang = rng.uniform(0, 2 * np.pi)
        mat = int(rng.integers(6))
        if rng.random() < 0.2:
            out.append(Shape(0.0, 0, CIRCLE, (x, y, r * rng.uniform(1.5, 3)), 0, mat))
            continue
        for _ in range(int(rng.integers(1, 4))):
            length = r * rng.uniform(3, 9)
            x2, y2 = x + length * np.cos(ang), y + length * np.sin(ang)
            out.append(Shape(0.0, 0, SEG, (x, y, x2, y2, r), 0, mat))
            x, y, ang, r = x2, y2, ang + rng.normal(0, 0.8), r * rng.uniform(0.7, 1.1)
    return out


def make_background(
    rng: Rand, size: int, horizon: float, folder: str | None = None
) -> Background:
    """A background image plus clutter shapes for the canvas."""
    if folder and rng.random() < 0.8:
        img = _photo(rng, size, folder)
    else:
        img = _procedural(rng, size, horizon)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.8, 2.5))
    clutter = _limb_clutter(rng, size, int(rng.integers(0, 9)))
    return Background(img, clutter, object_materials(rng), size / 4.0)


def occluder_shapes(rng: Rand, size: int, count: int) -> list[Shape]:
    """Foreground objects in front of everyone: poles, counters, railings, plants."""
    out: list[Shape] = []
    for _ in range(count):
        kind = rng.integers(4)
        mat = int(rng.integers(2, 8))
        x = rng.uniform(0, size)
        if kind == 0:  # pole
            r = size * rng.uniform(0.01, 0.05)
            out.append(
                Shape(
                    0.0,
                    0,
                    SEG,
                    (x, -r, x + rng.normal(0, 0.02 * size), size + r, r),
                    0,
                    mat,
                )
            )
        elif kind == 1:  # counter / car body / table top rising from the bottom
            top = size * rng.uniform(0.7, 0.95)
            w = size * rng.uniform(0.2, 0.7)
            poly = np.array(
                [
                    (x - w / 2, top),
                    (x + w / 2, top + rng.normal(0, 5)),
                    (x + w / 2, size + 1),
                    (x - w / 2, size + 1),
                ]
            )
            out.append(Shape(0.0, 0, POLY, poly, 0, mat))
        elif kind == 2:  # railing
            y = size * rng.uniform(0.6, 0.9)
            r = size * rng.uniform(0.004, 0.012)
            out.append(
                Shape(0.0, 0, SEG, (-5, y, size + 5, y + rng.normal(0, 8), r), 0, mat)
            )
            for px in np.arange(x % (size / 6), size, size / rng.uniform(3, 8)):
                out.append(Shape(0.0, 0, SEG, (px, y, px, size + r, r), 0, mat))
        else:  # plant: a cluster of blobs at the bottom
            for _ in range(int(rng.integers(4, 10))):
                cx = x + rng.normal(0, size * 0.05)
                cy = size * rng.uniform(0.8, 1.0)
                out.append(
                    Shape(
                        0.0, 0, CIRCLE, (cx, cy, size * rng.uniform(0.02, 0.06)), 0, mat
                    )
                )
    return out
