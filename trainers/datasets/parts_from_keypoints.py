"""Fine body parts from keypoints: each person pixel goes to its nearest body segment.

COCO has person masks and keypoints but no part labels. Every mask pixel is given the
fine part (configs/parts.yaml) of the nearest body capsule built from the person's
labelled keypoints: limbs (shoulder-elbow, elbow-wrist, hip-knee, knee-ankle), hands
and feet (the forearm and the shin continued past the wrist and ankle), the torso (the
shoulder-hip polygon) and the head (a disk around the face keypoints, between the neck
and the top of the head where a data set has those, above the shoulders when the face
is unlabelled). A labelled joint whose parent is not (a wrist without its elbow) is a
disk of the limb ending there. The same capsules, drawn, are the masks of people a data
set gives only keypoints for (CrowdPose, PoseTrack).

Distances are measured to a capsule's surface (distance to its axis minus its radius),
and ties go to the first capsule in `_ORDER`: where an arm lies over the torso, the arm
wins. Hair and face split the head: face near the visible eyes and nose, hair
elsewhere; all hair when only the ears are visible (a back view); ignore when no face
keypoint says which way the head points.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from configs import body, taxonomy
from configs.constants import IGNORE

# part -> radius as a fraction of its segment's length (configs.body()["part_segments"])
_LIMB_RADIUS = {
    "left_lower_arm": 0.15, "right_lower_arm": 0.15,
    "left_upper_arm": 0.18, "right_upper_arm": 0.18,
    "left_lower_leg": 0.15, "right_lower_leg": 0.15,
    "left_upper_leg": 0.2, "right_upper_leg": 0.2,
}  # fmt: skip
# (part, the segment it continues, length past that segment's end as a fraction of it,
# radius as a fraction of that length): a hand is about half a forearm long, a foot
# reaches a quarter shin below the ankle.
_ENDS = [
    ("left_hand", "left_lower_arm", 0.5, 0.6),
    ("right_hand", "right_lower_arm", 0.5, 0.6),
    ("left_foot", "left_lower_leg", 0.25, 0.6),
    ("right_foot", "right_lower_leg", 0.25, 0.6),
]
# Tie-break order (first wins): extremities over limbs over head over torso.
_ORDER = [
    "left_hand", "right_hand", "left_foot", "right_foot",
    "left_lower_arm", "right_lower_arm", "left_upper_arm", "right_upper_arm",
    "left_lower_leg", "right_lower_leg", "left_upper_leg", "right_upper_leg",
    "head", "torso",
]  # fmt: skip
_FACE = ("nose", "left_eye", "right_eye")
_HEAD = _FACE + ("left_ear", "right_ear")
_TORSO = ("left_shoulder", "right_shoulder", "right_hip", "left_hip")
TORSO_RADIUS = 0.12  # of the shoulder width: the body reaches past its joint line
HEAD_FROM_FACE = 0.7  # head radius / largest distance between face keypoints
HEAD_FROM_SHOULDERS = 0.28  # head radius / shoulder width (lower bound)
HEAD_ABOVE_SHOULDERS = 0.6  # head centre above the shoulder line / shoulder width
FACE_RADIUS = 0.75  # face disk / head radius
SHIFT = 4  # fractional bits of OpenCV drawing coordinates
MAX_CELLS = 1 << 18  # larger people get a coarser distance grid (2 x 2 pixels, ...)


@cache
def _kp() -> dict[str, int]:
    return {n: i for i, n in enumerate(body()["keypoints"])}


@cache
def fine_id(name: str) -> int:
    return taxonomy("fine")["classes"].index(name)


@dataclass
class Capsules:
    """Segments a -> b with radii, each labelled with a part name (head: 'head')."""

    a: np.ndarray  # S x 2
    b: np.ndarray  # S x 2
    radius: np.ndarray  # S
    names: list[str]
    torso: np.ndarray | None  # polygon, V x 2, or None
    torso_radius: float
    head: tuple[np.ndarray, float, np.ndarray] | None  # centre, radius, up (unit)

    @property
    def empty(self) -> bool:
        return not self.names and self.torso is None and self.head is None


def _labelled(kp: np.ndarray, name: str) -> np.ndarray | None:
    return _labelled_at(kp, _kp()[name])


def _labelled_at(kp: np.ndarray, index: int) -> np.ndarray | None:
    row = kp[index]
    return row[:2].astype(np.float64) if row[2] > 0 else None


def _segments() -> list[tuple[int, int, str, float]]:
    """(from, to, part, radius fraction) of every limb part, from the body table."""
    ends = body()["part_segments"]
    return [(*ends[part], part, frac) for part, frac in _LIMB_RADIUS.items()]


def _up(kp: np.ndarray, centre: np.ndarray) -> np.ndarray:
    shoulders = [
        p
        for p in (_labelled(kp, "left_shoulder"), _labelled(kp, "right_shoulder"))
        if p is not None
    ]
    if shoulders:
        v = centre - np.mean(shoulders, axis=0)
        n = np.linalg.norm(v)
        if n > 1e-6:
            return v / n
    return np.array([0.0, -1.0])


def _shoulder_width(kp: np.ndarray) -> float | None:
    ls, rs = _labelled(kp, "left_shoulder"), _labelled(kp, "right_shoulder")
    if ls is None or rs is None:
        return None
    return float(np.linalg.norm(ls - rs))


def _head(kp: np.ndarray, extras: dict[str, np.ndarray], limb_scale: float | None):
    """Head disk (centre, radius, up) from the neck + top of head, else from the face
    keypoints; None when neither is labelled."""
    top, neck = extras.get("head_top"), extras.get("neck")
    if top is not None and neck is not None and np.linalg.norm(top - neck) > 1e-6:
        centre = (np.asarray(top, float) + np.asarray(neck, float)) / 2
        up = (top - neck) / np.linalg.norm(top - neck)
        return centre, 0.5 * float(np.linalg.norm(top - neck)), up
    pts = [p for p in (_labelled(kp, n) for n in _HEAD) if p is not None]
    if not pts:
        return _head_above_shoulders(kp)
    pts = np.array(pts)
    spread = max((float(np.linalg.norm(p - q)) for p in pts for q in pts), default=0.0)
    radius = HEAD_FROM_FACE * spread
    width = _shoulder_width(kp)
    if width is not None:
        radius = max(radius, HEAD_FROM_SHOULDERS * width)
    elif limb_scale is not None:
        radius = max(radius, 0.4 * limb_scale)
    if radius <= 0:
        return None
    centre = pts.mean(axis=0)
    up = _up(kp, centre)
    return centre + 0.2 * radius * up, radius, up  # face keypoints sit below the centre


def _head_above_shoulders(kp: np.ndarray):
    """Head disk where the torso points: for people whose face is unlabelled though
    their head is in the mask (it then is ignore, not torso). None without shoulders
    and hips."""
    corners = [_labelled(kp, n) for n in _TORSO]
    if any(c is None for c in corners):
        return None
    ls, rs, rh, lh = corners
    neck, pelvis = (ls + rs) / 2, (lh + rh) / 2
    if np.linalg.norm(neck - pelvis) < 1e-6:
        return None
    up = (neck - pelvis) / np.linalg.norm(neck - pelvis)
    width = float(np.linalg.norm(ls - rs))
    return neck + HEAD_ABOVE_SHOULDERS * width * up, HEAD_FROM_SHOULDERS * width, up


def capsules(kp: np.ndarray, extras: dict[str, np.ndarray] | None = None) -> Capsules:
    """The body capsules of one person's labelled keypoints (17 x 3 COCO-17)."""
    extras = extras or {}
    segs: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
    lengths = []
    for a, b, part, frac in _segments():
        pa, pb = _labelled_at(kp, a), _labelled_at(kp, b)
        if pa is not None and pb is not None and np.linalg.norm(pb - pa) > 1e-6:
            length = float(np.linalg.norm(pb - pa))
            segs[part] = (pa, pb, frac * length)
            lengths.append(length)
    for part, along, reach, frac in _ENDS:
        a, b = body()["part_segments"][along]
        pa, pb = _labelled_at(kp, a), _labelled_at(kp, b)
        if pa is not None and pb is not None and np.linalg.norm(pb - pa) > 1e-6:
            end = pb + reach * (pb - pa)
            segs[part] = (pb, end, frac * reach * float(np.linalg.norm(pb - pa)))
    limb_scale = float(np.median(lengths)) if lengths else _shoulder_width(kp)
    if limb_scale:
        # a labelled joint whose parent is not (an elbow without its shoulder...) is
        # a disk of the limb that ends there
        for _, b, part, frac in _segments():
            pb = _labelled_at(kp, b)
            if part not in segs and pb is not None:
                segs[part] = (pb, pb, frac * limb_scale)

    corners = [_labelled(kp, n) for n in _TORSO]
    present = [c for c in corners if c is not None]
    torso = np.array(present) if len(present) >= 2 else None
    width = _shoulder_width(kp)
    if width is None and torso is not None:  # about half the torso's length
        width = 0.5 * float(np.linalg.norm(torso.max(0) - torso.min(0)))
    torso_radius = TORSO_RADIUS * (width or 0.0)

    head = _head(kp, extras, limb_scale)
    names = [n for n in _ORDER if n in segs]
    a = np.array([segs[n][0] for n in names]).reshape(-1, 2)
    b = np.array([segs[n][1] for n in names]).reshape(-1, 2)
    radius = np.array([segs[n][2] for n in names], np.float64)
    return Capsules(a, b, radius, names, torso, torso_radius, head)


@dataclass
class Grid:
    """Cells of `step` x `step` image pixels; cell (0, 0) starts at image `origin`."""

    origin: np.ndarray  # (x0, y0), integers
    step: int
    shape: tuple[int, int]  # rows, columns

    def point(self, p: np.ndarray) -> tuple[int, int]:
        """Continuous image point -> OpenCV fixed-point cell coordinates (cell centres
        at +0.5, `SHIFT` fractional bits)."""
        q = (np.asarray(p, float) - self.origin) / self.step - 0.5
        q = np.round(q * (1 << SHIFT)).astype(int)
        return int(q[0]), int(q[1])

    def cells(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, columns) of the cells holding image pixels (xs, ys)."""
        x0, y0 = (int(v) for v in self.origin)
        return (ys - y0) // self.step, (xs - x0) // self.step


def _axis_distance(canvas: np.ndarray) -> np.ndarray:
    """Distance of every cell to the zero cells drawn on `canvas` (inf: none)."""
    if canvas.all():
        return np.full(canvas.shape, np.inf, np.float32)
    # the 5 x 5 mask: within 2 % of the exact distance at a third of its cost
    return cv2.distanceTransform(canvas, cv2.DIST_L2, cv2.DIST_MASK_5)


def _fields(caps: Capsules, grid: Grid):
    """(column name, radius, distance to the capsule's axis in image pixels) for every
    capsule: one distance transform per capsule, on a grid coarse enough to stay fast
    on the million-pixel people of HD video."""
    for name, a, b, r in zip(caps.names, caps.a, caps.b, caps.radius, strict=True):
        canvas = np.ones(grid.shape, np.uint8)
        cv2.line(canvas, grid.point(a), grid.point(b), 0, 1, cv2.LINE_8, SHIFT)
        yield name, float(r), _axis_distance(canvas) * grid.step
    if caps.head is not None:
        centre, radius, _ = caps.head
        canvas = np.ones(grid.shape, np.uint8)
        c = grid.point(centre)
        cv2.line(canvas, c, c, 0, 1, cv2.LINE_8, SHIFT)
        yield "head", radius, _axis_distance(canvas) * grid.step
    if caps.torso is not None:
        canvas = np.ones(grid.shape, np.uint8)
        poly = np.array([grid.point(p) for p in caps.torso], np.int32)
        if len(poly) >= 3:
            cv2.fillPoly(canvas, [poly], 0, cv2.LINE_8, SHIFT)
        cv2.polylines(canvas, [poly], True, 0, 1, cv2.LINE_8, SHIFT)
        yield "torso", caps.torso_radius, _axis_distance(canvas) * grid.step


def _nearest(
    caps: Capsules, grid: Grid
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Per cell: index of the nearest capsule (names), its surface distance, and the
    distance to the surface of the capsules with doubled radii (the band). Ties go to
    the earlier capsule, so a limb inside its radius beats the torso beneath it."""
    names: list[str] = []
    best = np.full(grid.shape, np.inf, np.float32)
    wide = np.full(grid.shape, np.inf, np.float32)
    index = np.zeros(grid.shape, np.int16)
    for i, (name, radius, axis) in enumerate(_fields(caps, grid)):
        names.append(name)
        d = np.maximum(axis - radius, 0.0)
        closer = d < best
        best[closer] = d[closer]
        index[closer] = i
        np.minimum(wide, np.maximum(axis - 2 * radius, 0.0), out=wide)
    return names, index, best, wide


def _grid(
    caps: Capsules, box: tuple[int, int, int, int], limit: tuple[int, int]
) -> Grid:
    """A grid covering `box` and every capsule (their radii twice), kept within one
    image size of the image (`limit` = (height, width)), of at most `MAX_CELLS`."""
    pts = [caps.a, caps.b, np.array(box, float).reshape(2, 2)]
    pad = 2 * max([*caps.radius, caps.torso_radius, 0.0])
    if caps.torso is not None:
        pts.append(caps.torso)
    if caps.head is not None:
        pts.append(caps.head[0][None])
        pad = max(pad, 2 * caps.head[1])
    allp = np.concatenate([p.reshape(-1, 2) for p in pts])
    h, w = limit
    lo = np.maximum(np.floor(allp.min(0) - pad - 1), (-w, -h)).astype(int)
    hi = np.minimum(np.ceil(allp.max(0) + pad + 1), (2 * w, 2 * h)).astype(int)
    size = hi - lo
    step = max(1, int(np.ceil(np.sqrt(size[0] * size[1] / MAX_CELLS))))
    shape = (int(-(-size[1] // step)), int(-(-size[0] // step)))
    return Grid(lo.astype(float), step, shape)


def split_head(p: np.ndarray, kp: np.ndarray, caps: Capsules) -> np.ndarray:
    """Fine ids (hair / face / ignore) of head pixels p (N x 2)."""
    if caps.head is None:
        return np.full(len(p), IGNORE, np.uint8)
    _, radius, up = caps.head
    visible = [kp[_kp()[n], :2].astype(float) for n in _FACE if kp[_kp()[n], 2] == 2]
    if visible:
        face = np.mean(visible, axis=0) - 0.15 * radius * up  # towards the mouth
        near = np.linalg.norm(p - face, axis=1) <= FACE_RADIUS * radius
        return np.where(near, fine_id("face"), fine_id("hair")).astype(np.uint8)
    ears = [n for n in ("left_ear", "right_ear") if kp[_kp()[n], 2] == 2]
    value = fine_id("hair") if ears else IGNORE
    return np.full(len(p), value, np.uint8)


def _labels(
    xs: np.ndarray,
    ys: np.ndarray,
    kp: np.ndarray,
    caps: Capsules,
    names: list[str],
    nearest: np.ndarray,
) -> np.ndarray:
    """Fine ids of image pixels (xs, ys) whose nearest capsules are `nearest`."""
    ids = np.array([fine_id(n) if n != "head" else IGNORE for n in names], np.uint8)
    labels = ids[nearest]
    if "head" in names:
        on_head = nearest == names.index("head")
        p = np.stack([xs[on_head] + 0.5, ys[on_head] + 0.5], axis=1)
        labels[on_head] = split_head(p, kp, caps)
    return labels


def derive_parts(
    mask: np.ndarray,
    keypoints: np.ndarray,
    extras: dict[str, np.ndarray] | None = None,
    reach: float | None = None,
) -> np.ndarray:
    """H x W uint8 fine part ids for the pixels of one person's `mask` (0 outside).

    Args:
        mask: H x W bool person mask.
        keypoints: 17 x 3 COCO-17 keypoints of that person (v > 0 labelled).
        extras: optional labelled non-COCO points by name (head_top, neck).
        reach: pixels farther than `reach * sqrt(mask area)` from every capsule are
            ignore (a body part whose keypoints are unlabelled); None keeps them all.
    Returns:
        Part ids; 255 where nothing decides (no keypoints, head of unknown facing).
    """
    out = np.zeros(mask.shape, np.uint8)
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return out
    caps = capsules(keypoints, extras)
    if caps.empty:
        out[ys, xs] = IGNORE
        return out
    grid = _grid(caps, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), mask.shape)
    names, index, best, _ = _nearest(caps, grid)
    cells = grid.cells(xs, ys)
    labels = _labels(xs, ys, keypoints, caps, names, index[cells])
    if reach is not None:
        labels[best[cells] > reach * np.sqrt(len(xs))] = IGNORE
    out[ys, xs] = labels
    return out


def skeleton_person(
    keypoints: np.ndarray, extras: dict[str, np.ndarray] | None, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mask, band, parts) of a person annotated with keypoints only: the body capsules
    drawn, the band around them (radii doubled) where a real body may or may not be,
    and the fine parts of the mask. H x W; empty when the keypoints form no limb or
    torso."""
    mask = np.zeros(shape, bool)
    band = np.zeros(shape, bool)
    parts = np.zeros(shape, np.uint8)
    caps = capsules(keypoints, extras)
    if not caps.names and caps.torso is None:  # a lone head is no body
        return mask, band, parts
    start = caps.a[0] if caps.names else caps.torso[0]
    grid = _grid(caps, (*start, *start), shape)
    names, index, best, wide = _nearest(caps, grid)
    x0, y0 = (int(v) for v in grid.origin)
    ix0, iy0 = max(x0, 0), max(y0, 0)
    ix1 = min(x0 + grid.shape[1] * grid.step, shape[1])
    iy1 = min(y0 + grid.shape[0] * grid.step, shape[0])
    if ix1 <= ix0 or iy1 <= iy0:
        return mask, band, parts
    yy, xx = np.mgrid[iy0:iy1, ix0:ix1]
    cells = grid.cells(xx, yy)
    inner = best[cells] <= 0
    mask[iy0:iy1, ix0:ix1] = inner
    band[iy0:iy1, ix0:ix1] = (wide[cells] <= 0) & ~inner
    ys, xs = np.nonzero(mask)
    parts[ys, xs] = _labels(xs, ys, keypoints, caps, names, index[grid.cells(xs, ys)])
    return mask, band, parts
