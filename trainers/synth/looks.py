"""What a person wears and looks like: skin, hair, clothing cut, colours and textures.

Clothing is deliberately cut across part borders (a shirt covers torso and upper arms,
trousers the hips and both leg parts, a dress the torso and the thighs), and clothing
colours overlap skin and hair colours, so a part cannot be told by its colour alone.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from trainers.synth.rand import Rand, choose, pick
from trainers.synth.textures import (
    BLOTCH,
    CHECKS,
    DOTS,
    GRAIN,
    MATERIALS,
    PLAID,
    STRIPES,
    MaterialTable,
    bank,
)

MAT_SKIN, MAT_HAIR, MAT_TOP, MAT_BOTTOM, MAT_SHOES, MAT_DARK, MAT_LIPS, MAT_ACCENT = (
    range(MATERIALS)
)

SKIN_TONES = np.array(
    [
        (255, 224, 196),
        (241, 194, 167),
        (224, 172, 138),
        (198, 134, 94),
        (161, 102, 68),
        (120, 75, 50),
        (88, 57, 39),
        (60, 40, 30),
    ],
    np.float32,
)
HAIR_COLOURS = np.array(
    [
        (25, 20, 18),
        (45, 30, 22),
        (70, 45, 28),
        (110, 75, 45),
        (190, 160, 105),
        (140, 65, 30),
        (165, 165, 160),
        (230, 225, 215),
    ],
    np.float32,
)
CLOTH_TEXTURES = (0, STRIPES, CHECKS, BLOTCH, DOTS, PLAID)
CLOTH_TEXTURE_P = (0.45, 0.2, 0.08, 0.13, 0.07, 0.07)


@dataclass
class Material:
    """Colour a, blended to colour b by a bank field whose features are `period` m."""

    a: np.ndarray
    b: np.ndarray
    field: int
    period: float
    offset: tuple[int, int]


@dataclass
class Look:
    """Appearance of one person; fixed over a video so the person stays recognisable.

    sleeve / legwear: how far clothing runs down the arm / leg chain, in segments
    (0 bare, 0.5 half the upper segment, 1 to the elbow/knee, 2 to the wrist/ankle).
    skirt: hem position along the thigh (0 none), shared by dresses and skirts;
    skirt_flare: how far (m) the hem stands off the thigh.
    tucked: height of the trousers' waistband above the hips (torso lengths).
    fringe: half-angle (deg) of the hair cap around the head's top; face: of the face.
    long_hair: length (m) of hair hanging below the head (0 short).
    neckline: depth of the front neckline (torso lengths); print_size: half-size of a
    chest print (heights, 0 none). bulk: clothing radius / limb radius.
    """

    materials: list[Material]
    sleeve: float
    legwear: float
    skirt: float
    skirt_flare: float
    tucked: float
    fringe: float
    face: float
    long_hair: float
    neckline: float
    print_size: float
    belt: bool
    barefoot: bool
    bulk: float = 1.12


def random_colour(rng: Rand) -> np.ndarray:
    """A clothing colour: greys, muted and saturated hues, sometimes skin-like."""
    u = rng.random()
    if u < 0.1:
        base = SKIN_TONES[rng.integers(len(SKIN_TONES))]
        return np.clip(base + rng.normal(0, 12, 3), 0, 255).astype(np.float32)
    sat = (
        0.0 if u < 0.3 else rng.uniform(0.1, 0.4) if u < 0.65 else rng.uniform(0.4, 1.0)
    )
    val = rng.uniform(0.12, 0.97)
    rgb = colorsys.hsv_to_rgb(rng.random(), sat, val)
    return np.array(rgb, np.float32) * 255


def material(
    rng: Rand,
    a: np.ndarray,
    kind: int,
    period: float,
    contrast: np.ndarray | None = None,
) -> Material:
    fid = choose(rng, bank().of_kind(kind)) if kind else 0
    if contrast is None:
        contrast = (
            random_colour(rng) if rng.random() < 0.6 else a * rng.uniform(0.4, 0.8)
        )
    return Material(
        a=a,
        b=contrast.astype(np.float32),
        field=fid,
        period=period,
        offset=(int(rng.integers(512)), int(rng.integers(512))),
    )


def cloth(rng: Rand) -> Material:
    kind = CLOTH_TEXTURES[pick(rng, CLOTH_TEXTURE_P)]
    return material(rng, random_colour(rng), kind, rng.uniform(0.02, 0.12))


def sample_look(rng: Rand) -> Look:
    """A random person's appearance."""
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.9, 1.08)
    skin = np.clip(skin + rng.normal(0, 6, 3), 0, 255).astype(np.float32)
    hair = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]
    if rng.random() < 0.06:
        hair = random_colour(rng)
    hair = np.clip(hair * rng.uniform(0.85, 1.15), 0, 255).astype(np.float32)
    top = cloth(rng)
    bottom = cloth(rng)
    dress = rng.random() < 0.14
    if dress:
        bottom = top
    skirt = rng.uniform(0.35, 0.9) if dress or rng.random() < 0.08 else 0.0
    legwear = rng.uniform(*((1.8, 2.0), (0.3, 0.75), (1.2, 1.6))[pick(rng, (7, 2, 1))])
    if skirt:
        legwear = 2.0 if rng.random() < 0.3 else 0.0  # leggings or bare legs
    sleeve = rng.uniform(
        *((0, 0), (0.3, 0.6), (0.8, 1.3), (1.75, 2.0))[pick(rng, (3, 9, 3, 9))]
    )
    shoes = random_colour(rng) * (rng.uniform(0.2, 0.6) if rng.random() < 0.6 else 1)
    materials = [
        material(rng, skin, GRAIN, 0.05, skin * rng.uniform(0.8, 0.95)),
        material(
            rng,
            hair,
            choose(rng, (0, GRAIN, STRIPES)),
            rng.uniform(0.01, 0.03),
            hair * rng.uniform(0.6, 1.3),
        ),
        top,
        bottom,
        material(rng, shoes.astype(np.float32), 0, 0.05),
        material(rng, np.array([30, 22, 20], np.float32), 0, 0.05),
        material(
            rng, np.clip(skin * [1.0, 0.6, 0.6], 0, 255).astype(np.float32), 0, 0.05
        ),
        cloth(rng),
    ]
    return Look(
        materials=materials,
        sleeve=sleeve,
        legwear=legwear,
        skirt=skirt,
        skirt_flare=rng.uniform(0.02, 0.12),
        tucked=rng.uniform(0.0, 0.35),
        fringe=rng.uniform(35, 65),
        face=rng.uniform(55, 66),
        long_hair=rng.uniform(
            *((0, 0), (0.05, 0.18), (0.18, 0.35))[pick(rng, (11, 5, 4))]
        ),
        neckline=rng.uniform(0.05, 0.35),
        print_size=rng.uniform(0.025, 0.055) if rng.random() < 0.3 else 0.0,
        belt=bool(rng.random() < 0.2),
        barefoot=bool(rng.random() < 0.03),
    )


def register(
    table: MaterialTable,
    pid: int,
    materials: list[Material],
    px_per_m: float,
    anchor: tuple[float, float],
) -> None:
    """Enter materials into the scene's colour table at canvas id `pid`, with texture
    features scaled to `px_per_m` and anchored at image point `anchor`."""
    periods = bank().period
    for k, m in enumerate(materials):
        scale = periods[m.field] / max(m.period * px_per_m, 0.5)
        table.set(pid, k, m.a, m.b, m.field, scale, anchor, m.offset)
