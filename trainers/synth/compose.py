"""People + camera + background -> one Scene whose ground truth is its own drawing.

People stand on a ground plane seen by a pinhole camera: a person at distance D is
drawn at f / D px per metre with their feet on image row horizon + f * height / D,
so farther people are smaller and higher. They are drawn far to near into one id
canvas; the part and instance maps are that canvas after the last shape, and keypoint
visibility is read from it (COCO v: 2 on the person's own pixel, 1 under someone or
something else, 0 off-image or turned away from the camera).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields, replace

import cv2
import numpy as np

from configs.records import Scene
from trainers.synth.background import (
    CLUTTER,
    OCCLUDER,
    Background,
    list_images,
    make_background,
    occluder_shapes,
)
from trainers.synth.body import (
    FAMILIES,
    FAMILY_WEIGHTS,
    PELVIS,
    Body,
    Proportions,
    pose_body,
    sample_pose,
    sample_proportions,
    sample_yaw,
)
from trainers.synth.degrade import Degradation
from trainers.synth.draw import POLY, Shape, draw, face_shown, person_shapes
from trainers.synth.looks import Look, register, sample_look
from trainers.synth.rand import Rand, pick
from trainers.synth.textures import MaterialTable, paint

MAX_PEOPLE = CLUTTER - 1


@dataclass
class SynthOptions:
    """Generator options (keyword arguments of generate_scene / generate_video).

    backgrounds: folder of background photos (used for 80% of scenes), or None.
    occluders: probability that foreground objects hide people.
    degrade: camera degradation strength (0 = clean images).
    families: pose families to draw from (None = all, see body.FAMILIES).
    min_height, max_height: person height range in px and in image sizes.
    clutter: draw background clutter (including limb-like decoys).
    """

    backgrounds: str | None = None
    occluders: float = 0.3
    degrade: float = 1.0
    families: tuple[str, ...] | None = None
    min_height: float = 40.0
    max_height: float = 1.25
    clutter: bool = True

    @classmethod
    def from_kwargs(cls, opts: dict) -> SynthOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(opts) - known)
        if unknown:
            raise ValueError(f"unknown synth option(s): {', '.join(unknown)}")
        out = cls(**opts)
        if out.backgrounds is not None:
            list_images(out.backgrounds)  # fails early on a missing or empty folder
        if out.families is not None:
            bad = sorted(set(out.families) - set(FAMILIES))
            if bad or not out.families:
                raise ValueError(f"unknown pose families {bad} (known: {FAMILIES})")
        return out


@dataclass
class Camera:
    """Pinhole camera over a ground plane: focal length f (px), horizon row, principal
    column cx, height above the ground (m)."""

    f: float
    horizon: float
    cx: float
    height: float

    @classmethod
    def sample(cls, rng: Rand, size: int, high_p: float = 0.25) -> Camera:
        """Eye-level or (with probability high_p) a high, surveillance-like camera."""
        fov = np.radians(rng.uniform(45, 75))
        if rng.random() < high_p:
            horizon, height = size * rng.uniform(-0.15, 0.35), rng.uniform(3.0, 7.0)
        else:
            horizon, height = size * rng.uniform(0.1, 0.6), rng.uniform(1.2, 2.2)
        return cls(size / (2 * np.tan(fov / 2)), horizon, size / 2, height)

    def project(self, x: float, depth: float) -> tuple[float, float, float]:
        """Ground point (x lateral m, depth m) -> (u, v) image px and px per metre."""
        s = self.f / depth
        return self.cx + s * x, self.horizon + s * self.height, s

    def depth_for_height(self, height_px: float, height_m: float) -> float:
        return self.f * height_m / height_px


@dataclass
class Person:
    """One person in the world: who (prop, look, track id), how (pose, yaw in degrees)
    and where (lateral x and depth in metres); `seated` adds a stool under them."""

    prop: Proportions
    look: Look
    pose: np.ndarray
    yaw: float
    x: float
    depth: float
    track_id: int
    seated: bool = False


def _stool(body: Body, s: float, u0: float, v0: float) -> Shape:
    """A box from the ground up to a seated person's seat, turned with their hips."""
    pr, g = body.prop, body.pelvis_frame
    top = body.points[PELVIS, 1] - pr.upper_leg_r
    w = pr.hip_half + pr.upper_leg_r + 0.05
    corners = np.array(
        [(x, y, z) for x in (-w, w) for y in (0.0, top) for z in (-0.2, 0.3)]
    )
    p = corners @ g.T
    poly = np.stack([u0 + s * p[:, 0], v0 - s * p[:, 1]], 1)
    return Shape(0.0, 0, POLY, cv2.convexHull(poly.astype(np.float32))[:, 0], 0, 7)


def render(
    people: list[Person],
    camera: Camera,
    background: Background,
    occluders: list[Shape],
    degradation: Degradation | None,
    light: tuple[float, float, float],
    rng: Rand,
) -> Scene:
    """Draw people far to near over the background and read the ground truth back.

    light: (base, dx, dy) brightness ramp over the image; rng draws the sensor noise.
    """
    size = background.image.shape[0]
    if len(people) > MAX_PEOPLE:
        raise ValueError(f"at most {MAX_PEOPLE} people per scene, got {len(people)}")
    canvas = np.zeros((size, size, 4), np.uint8)
    canvas[..., 3] = 128
    table = MaterialTable()
    for pid in (CLUTTER, OCCLUDER):
        register(table, pid, background.materials, background.px_per_m, (0.0, 0.0))
    draw(canvas, background.clutter, CLUTTER)
    order = sorted(range(len(people)), key=lambda i: -people[i].depth)
    kps = np.zeros((len(people), 17, 3), np.float32)
    feet = []
    for rank, i in enumerate(order):
        person, pid = people[i], rank + 1
        body = pose_body(person.prop, person.pose, person.yaw)
        u0, v0, s = camera.project(person.x, person.depth)
        feet.append((u0, v0, s, min(1.0, camera.height / person.depth)))
        if person.seated:  # the stool hides whoever is behind it: an occluder
            draw(canvas, [_stool(body, s, u0, v0)], OCCLUDER)
        anchor = (u0, v0 - s * body.points[PELVIS, 1])
        register(table, pid, person.look.materials, s, anchor)
        draw(canvas, person_shapes(body, person.look, s, u0, v0), pid)
        kps[rank, :, 0] = u0 + s * body.points[:17, 0]
        kps[rank, :, 1] = v0 - s * body.points[:17, 1]
        kps[rank, :, 2] = 1.0
        kps[rank, :5, 2] = face_shown(body)
    draw(canvas, occluders, OCCLUDER)
    image = _shadows(background.image, feet)
    paint(image, canvas, table, light, blur=max(0.6, size / 384))
    if degradation is not None:
        image = degradation.apply(image, rng)
    track_ids = np.array([people[i].track_id for i in order], np.int64)
    return _ground_truth(image, canvas, kps, track_ids)


def _shadows(image: np.ndarray, feet: list[tuple[float, float, float, float]]):
    """The background darkened by a soft contact shadow under each person's feet.

    feet: (u, v, px per m, how far the ground is seen from above: 0 edge-on .. 1).
    """
    mask = np.zeros(image.shape[:2], np.uint8)
    for u, v, s, tilt in feet:
        axes = (max(1, int(0.3 * s)), max(1, int(0.3 * s * tilt)))
        cv2.ellipse(mask, (int(u), int(v)), axes, 0, 0, 360, 110, -1)
    if not mask.any():
        return image.copy()
    mask = cv2.GaussianBlur(mask, (0, 0), 2.0)
    keep = cv2.cvtColor(255 - mask, cv2.COLOR_GRAY2RGB)
    return cv2.multiply(image, keep, scale=1 / 255)


def _ground_truth(
    image: np.ndarray, canvas: np.ndarray, kps: np.ndarray, track_ids: np.ndarray
) -> Scene:
    """Scene from the finished canvas: drop unseen people, renumber, set visibility."""
    h, w = canvas.shape[:2]
    ids = np.ascontiguousarray(canvas[..., 1])
    n = len(kps)
    counts = np.bincount(ids.reshape(-1), minlength=256)[1 : n + 1]
    keep = np.flatnonzero(counts > 0)
    lut = np.zeros(256, np.uint8)
    lut[keep + 1] = np.arange(1, len(keep) + 1)
    instances = cv2.LUT(ids, lut).astype(np.uint16)
    parts = np.ascontiguousarray(canvas[..., 0])
    out = np.zeros((len(keep), 17, 3), np.float32)
    for new, old in enumerate(keep):
        x, y, labelled = kps[old, :, 0], kps[old, :, 1], kps[old, :, 2] > 0
        inside = labelled & (x >= 0) & (x < w) & (y >= 0) & (y < h)
        xi = np.clip(x.astype(np.int64), 0, w - 1)
        yi = np.clip(y.astype(np.int64), 0, h - 1)
        at = ids[yi, xi]
        covered = (at != old + 1) & (at != 0) & (at != CLUTTER)
        vis = np.where(covered, 1.0, 2.0)
        out[new, inside, 0] = x[inside]
        out[new, inside, 1] = y[inside]
        out[new, inside, 2] = vis[inside]
    return Scene(image, parts, instances, out, track_ids[keep].copy())


def sample_person(
    rng: Rand,
    camera: Camera,
    size: int,
    centre: float,
    spread: float,
    opts: SynthOptions,
    track_id: int,
) -> Person:
    """A random person around image column `centre`, height in the allowed range."""
    prop = sample_proportions(rng)
    families = opts.families or FAMILIES
    weights = [FAMILY_WEIGHTS[FAMILIES.index(f)] for f in families]
    family = families[pick(rng, weights)]
    pose = sample_pose(rng, family)
    lo = opts.min_height
    hi = max(lo * 1.01, opts.max_height * size)
    if camera.height > 2.5:  # a high camera: feet (horizon + h_px * H / h) in view
        room = (size - camera.horizon) * prop.height / camera.height
        hi = max(lo * 1.01, min(hi, room))
    height_px = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    depth = camera.depth_for_height(height_px, prop.height)
    u = centre + rng.normal(0, spread * height_px)
    x = (u - camera.cx) * depth / camera.f
    return Person(
        prop,
        sample_look(rng),
        pose,
        sample_yaw(rng),
        x,
        depth,
        track_id,
        seated=family == "sit",
    )


def _crowd_heights(rng: Rand, n: int, size: int, opts: SynthOptions) -> SynthOptions:
    """Options with this scene's tallest person: crowds are mostly smaller people."""
    top = opts.max_height * rng.uniform(0.35, 1.0) / max(1.0, n / 5) ** 0.5
    return replace(opts, max_height=max(opts.min_height * 1.5, top * size) / size)


def generate_scene(
    seed: int, size: int = 384, people: tuple[int, int] = (1, 15), **opts
) -> Scene:
    """One random still scene, a pure function of its arguments.

    people: inclusive range of how many people are placed; people who end up fully
    hidden are dropped, so the Scene may hold fewer.
    """
    o = SynthOptions.from_kwargs(opts)
    lo, hi = _check_people(people)
    rng = Rand(seed)
    n = int(rng.integers(lo, hi + 1))
    camera = Camera.sample(rng, size, high_p=0.25 if n <= 10 else 0.5)
    background = make_background(rng, size, camera.horizon, o.backgrounds)
    if not o.clutter:
        background.clutter = []
    local = _crowd_heights(rng, n, size, o)
    clusters = rng.uniform(0.05, 0.95, int(rng.integers(1, 4))) * size
    spread = rng.uniform(0.15, 0.7)
    crowd = []
    for k in range(n):
        if rng.random() < 0.2:
            centre, sp = rng.uniform(0, size), 0.0
        else:
            centre, sp = clusters[rng.integers(len(clusters))], spread
        crowd.append(sample_person(rng, camera, size, centre, sp, local, k))
    occ = (
        occluder_shapes(rng, size, int(rng.integers(1, 3)))
        if rng.random() < o.occluders
        else []
    )
    degr = Degradation.sample(rng, o.degrade) if o.degrade > 0 else None
    return render(crowd, camera, background, occ, degr, sample_light(rng), rng)


def sample_light(rng: Rand) -> tuple[float, float, float]:
    """A light ramp (base, dx, dy) for paint(): brighter towards one side."""
    return rng.uniform(0.85, 1.1), rng.normal(0, 0.12), rng.normal(0, 0.12)


def _check_people(people) -> tuple[int, int]:
    try:
        lo, hi = (int(people), int(people)) if np.isscalar(people) else map(int, people)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"people must be an int or a (min, max) pair, got {people!r}"
        ) from exc
    if not 0 <= lo <= hi <= MAX_PEOPLE:
        raise ValueError(f"people range must satisfy 0 <= min <= max <= {MAX_PEOPLE}")
    return lo, hi


def scene_seed(seed: int, index: int) -> int:
    """Seed of the index-th scene of a stream (independent streams per base seed)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


class SceneStream:
    """Scenes for on-the-fly training: item i is generate_scene(scene_seed(seed, i)).

    Random access makes it a map-style data set (any worker, any order, same scenes);
    iteration runs over `count` scenes, or forever when count is None.
    """

    def __init__(
        self,
        seed: int,
        size: int = 384,
        people: tuple[int, int] = (1, 15),
        count: int | None = None,
        **opts,
    ):
        SynthOptions.from_kwargs(opts)
        _check_people(people)
        self.seed, self.size, self.people = seed, size, people
        self.count, self.opts = count, opts

    def __len__(self) -> int:
        if self.count is None:
            raise TypeError("an endless SceneStream has no length")
        return self.count

    def __getitem__(self, index: int) -> Scene:
        if self.count is not None and not 0 <= index < self.count:
            raise IndexError(index)
        return generate_scene(
            scene_seed(self.seed, index), self.size, self.people, **self.opts
        )

    def __iter__(self) -> Iterator[Scene]:
        i = 0
        while self.count is None or i < self.count:
            yield self[i]
            i += 1
