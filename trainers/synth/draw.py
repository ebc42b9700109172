"""A posed, dressed body -> depth-sorted 2D shapes -> ids in the scene canvas.

Every shape carries its part id, so the part map is drawn by the same call that draws
the pixels it labels: the ground truth is the drawing. The canvas has 4 uint8 channels
(part, person id, material, shade) and one OpenCV call writes all four. Shapes are
sorted by camera depth within the person (far arm behind the torso, raised arm in front
of the face); people are sorted by distance by the caller (painter's algorithm).
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from configs import body as body_table
from configs import taxonomy
from trainers.synth.body import (
    HEAD,
    L_HAND,
    L_HEEL,
    L_TOE,
    NECK,
    PELVIS,
    R_HAND,
    R_HEEL,
    R_TOE,
    Body,
    cross3,
)
from trainers.synth.looks import (
    MAT_ACCENT,
    MAT_BOTTOM,
    MAT_DARK,
    MAT_HAIR,
    MAT_LIPS,
    MAT_SHOES,
    MAT_SKIN,
    MAT_TOP,
    Look,
)

PART = {name: i for i, name in enumerate(taxonomy("fine")["classes"])}
SIDES = ("left", "right")
SEG, CIRCLE, POLY = range(3)
SHADE_EDGE, SHADE_MID = 150, 232  # canvas shade of a shape's rim and core (200 = flat)
SHIFT = 4  # OpenCV fixed-point bits: shapes are placed at 1/16 px
# Self-visibility thresholds: a face keypoint is labelled when its surface normal faces
# the camera at least this much (eyes and nose drawn on the face; else v = 0).
FACE_FACING = np.array([0.15, 0.3, 0.3, -0.35, -0.35])

_T = np.linspace(0, 2 * np.pi, 24, endpoint=False)
_RIM = np.stack([np.cos(_T), np.sin(_T)], 1)
_T2 = np.linspace(0, 2 * np.pi, 48, endpoint=False)
_SIL = np.stack([np.cos(_T2), np.sin(_T2), np.zeros_like(_T2)], 1)


class Shape(NamedTuple):
    """One filled primitive in image coordinates (continuous px).

    z: depth towards the viewer (px); sub: order inside a group of equal z; geom:
    SEG (x1, y1, x2, y2, radius), CIRCLE (x, y, radius) or POLY (N x 2 array);
    core: also draw a brighter core (roundness) when big enough.
    """

    z: float
    sub: int
    kind: int
    geom: object
    part: int
    mat: int
    core: bool = True


def cap_outline(centre: np.ndarray, r: float, axis: np.ndarray, half_angle: float):
    """Outline (N x 3) of the camera-visible part of a spherical cap, or None.

    The cap is the set of sphere points within `half_angle` (rad) of `axis`: its visible
    rim points plus the sphere's silhouette points inside it bound its projection.
    """
    ca, sa = np.cos(half_angle), np.sin(half_angle)
    helper = np.array([0.0, 0.0, 1.0]) if abs(axis[2]) < 0.9 else np.array([1.0, 0, 0])
    u = cross3(axis, helper)
    u /= np.sqrt(u @ u)
    v = cross3(axis, u)
    normals = ca * axis + sa * (_RIM[:, :1] * u + _RIM[:, 1:] * v)
    rim = normals[normals[:, 2] >= 0]
    sil = _SIL[_SIL @ axis >= ca]
    pts = np.concatenate([rim, sil])
    if len(pts) < 3:
        return None
    return centre + r * pts


def _hull(xy: np.ndarray) -> np.ndarray:
    return cv2.convexHull(xy.astype(np.float32))[:, 0, :]


def _clip_halfplane(poly: np.ndarray, p: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Convex polygon clipped to {x : (x - p) . n >= 0} (Sutherland-Hodgman)."""
    d = (poly - p) @ n
    out = []
    for i in range(len(poly)):
        j = (i + 1) % len(poly)
        if d[i] >= 0:
            out.append(poly[i])
        if (d[i] >= 0) != (d[j] >= 0):
            t = d[i] / (d[i] - d[j])
            out.append(poly[i] + t * (poly[j] - poly[i]))
    return np.array(out).reshape(-1, 2)


def person_shapes(
    body: Body, look: Look, s: float, u0: float, v0: float
) -> list[Shape]:
    """The shapes of one person whose ground point projects to (u0, v0) at s px/m."""
    b = _Builder(body, look, s, u0, v0)
    b.limbs()
    b.torso()
    if look.skirt:
        b.skirt()
    b.head()
    return b.out


class _Builder:
    """One person's drawing context: projected points (px), depths and the shapes."""

    def __init__(self, body: Body, look: Look, s: float, u0: float, v0: float):
        self.body, self.look, self.pr, self.s = body, look, body.prop, s
        self.scale, self.origin = np.array([s, -s]), np.array([u0, v0])
        self.xy = self.proj(body.points)
        self.z = s * body.points[:, 2]
        self.out: list[Shape] = []

    def proj(self, pts: np.ndarray) -> np.ndarray:
        """Body points (m, N x 3) -> image points (px, N x 2)."""
        return pts[:, :2] * self.scale + self.origin

    def seg(self, a, b, r: float, part: str, mat: int, z: float, sub=0, core=True):
        """A capsule from image point a to b, radius r in metres."""
        geom = (*a, *b, r * self.s)
        self.out.append(Shape(z, sub, SEG, geom, PART[part], mat, core))

    def poly(self, pts3: np.ndarray, part: str, mat: int, z: float, sub=0, core=True):
        """The convex hull of body points (m) as one polygon."""
        hull = _hull(self.proj(pts3))
        self.out.append(Shape(z, sub, POLY, hull, PART[part], mat, core))

    def chain(self, ids, radii, cover: float, parts, cloth: int, bias: float):
        """Upper and lower limb segment, clothed `cover` segments down from the top."""
        xy, z, bulk = self.xy, self.z, self.look.bulk
        for k, (p, q) in enumerate(zip(ids[:-1], ids[1:], strict=True)):
            zz = 0.5 * (z[p] + z[q]) + bias
            whole = cover >= k + 1
            r = radii[k] * (bulk if whole else 1)
            self.seg(xy[p], xy[q], r, parts[k], cloth if whole else MAT_SKIN, zz)
            partial = cover - k
            if 0 < partial < 1:
                end = xy[p] + (xy[q] - xy[p]) * partial
                self.seg(xy[p], end, radii[k] * bulk, parts[k], cloth, zz, 1)

    def limbs(self) -> None:
        """Arms with sleeves and hands (drawn over a torso at equal depth), legs with
        trousers and feet (under it)."""
        pr, xy, z, look = self.pr, self.xy, self.z, self.look
        arm_bias, leg_bias = 0.02 * self.s, -0.03 * self.s
        seg = body_table()["part_segments"]
        for side, tip in (("left", L_HAND), ("right", R_HAND)):
            parts = (f"{side}_upper_arm", f"{side}_lower_arm")
            (sh, el), wr = seg[parts[0]], seg[parts[1]][1]
            radii = (pr.upper_arm_r, pr.lower_arm_r)
            self.chain((sh, el, wr), radii, look.sleeve, parts, MAT_TOP, arm_bias)
            end = xy[wr] + 0.8 * (xy[tip] - xy[wr])
            zz = 0.5 * (z[wr] + z[tip]) + arm_bias
            self.seg(xy[wr], end, pr.hand_r, f"{side}_hand", MAT_SKIN, zz)
        foot_mat = MAT_SKIN if look.barefoot else MAT_SHOES
        for side, heel, toe in (("left", L_HEEL, L_TOE), ("right", R_HEEL, R_TOE)):
            parts = (f"{side}_upper_leg", f"{side}_lower_leg")
            (hip, kn), an = seg[parts[0]], seg[parts[1]][1]
            radii = (pr.upper_leg_r, pr.lower_leg_r)
            self.chain((hip, kn, an), radii, look.legwear, parts, MAT_BOTTOM, leg_bias)
            zz = 0.5 * (z[heel] + z[toe]) + leg_bias
            self.seg(xy[heel], xy[toe], pr.foot_r, f"{side}_foot", foot_mat, zz)

    def box(self, local: np.ndarray, frame: np.ndarray, depth: float) -> np.ndarray:
        """Points (x, y) mirrored left/right and pushed +-depth, in a body frame."""
        sym = np.concatenate([local, local * [-1, 1, 1]])
        sym = np.concatenate([sym + [0, 0, depth], sym - [0, 0, depth]])
        return self.body.points[PELVIS] + sym @ frame.T

    def torso(self) -> None:
        """Hull of a box through shoulders (upper-body frame) and hips (pelvis frame),
        the trousers' waistband, a belt, the front's neckline and print, the neck."""
        pr, look, t, g = self.pr, self.look, self.body.torso, self.body.pelvis_frame
        d, tl, sh = 0.55 * pr.torso_depth, pr.torso_len, pr.shoulder_half
        sh_w = sh + 0.4 * pr.upper_arm_r
        upper = np.array([
            (1.4 * pr.neck_r, tl, 0), (0.6 * sh, 0.93 * tl, 0),
            (0.9 * sh_w, 0.86 * tl, 0), (sh_w, 0.76 * tl, 0),
            (0.95 * sh, 0.6 * tl, 0), (pr.waist_half, 0.35 * tl, 0),
        ])  # fmt: skip
        hips = np.array([
            (pr.hip_half + 0.85 * pr.upper_leg_r, 0, 0),
            (pr.hip_half + 0.5 * pr.upper_leg_r, -0.5 * pr.upper_leg_r, 0),
        ])  # fmt: skip
        tz = 0.5 * (self.z[PELVIS] + self.z[NECK])
        self.poly(np.concatenate([self.box(upper, t, d), self.box(hips, g, d)]),
                  "torso", MAT_TOP, tz)  # fmt: skip
        waist = max(pr.waist_half, pr.hip_half)
        band_top = look.tucked * tl
        band = [self.box(np.array([(waist, band_top, 0)]), t, d), self.box(hips, g, d)]
        self.poly(np.concatenate(band), "torso", MAT_BOTTOM, tz, 1)
        if look.belt:
            belt = np.array(
                [(1.02 * waist, band_top + dy, 0) for dy in (0, 0.035 * pr.height)]
            )
            self.poly(self.box(belt, t, 1.02 * d), "torso", MAT_ACCENT, tz, 2, False)
        if t[2, 2] > 0.15:  # the chest faces the camera
            ang = np.linspace(0, np.pi, 7)
            neckline = np.stack([
                1.3 * pr.neck_r * np.cos(ang),
                tl - look.neckline * tl * np.sin(ang) - 0.02 * tl,
                np.full(7, 1.05 * d),
            ], 1)  # fmt: skip
            pel = self.body.points[PELVIS]
            self.poly(pel + neckline @ t.T, "torso", MAT_SKIN, tz, 3)
            if look.print_size:
                q = look.print_size * pr.height
                corners = [
                    (x, 0.62 * tl + y, 1.06 * d) for x in (-q, q) for y in (-q, q)
                ]
                self.poly(
                    pel + np.array(corners) @ t.T, "torso", MAT_ACCENT, tz, 4, False
                )
        neck = self.body.points[NECK]
        top = neck + t @ np.array([0, pr.neck_len + 0.3 * pr.head_r, 0])
        self.seg(
            self.xy[NECK], self.proj(top[None])[0], pr.neck_r, "torso", MAT_SKIN, tz, 5
        )

    def skirt(self) -> None:
        """A skirt from the hips to `look.skirt` down the thighs, split between the
        left and right upper leg along the line from the pelvis between the knees."""
        pr, look, g, p3, xy = (
            self.pr,
            self.look,
            self.body.pelvis_frame,
            self.body.points,
            self.xy,
        )
        r = pr.upper_leg_r + look.skirt_flare
        rim = [(r, 0, 0), (-r, 0, 0), (0, 0, r), (0, 0, -r)]
        hem = []
        thighs = [body_table()["part_segments"][f"{side}_upper_leg"] for side in SIDES]
        for hip, kn in thighs:
            c = p3[hip] + (p3[kn] - p3[hip]) * look.skirt
            hem += [c + g @ np.array(o) for o in rim]
        waist = np.array(
            [(pr.hip_half + 0.85 * pr.upper_leg_r, 0.05 * pr.torso_len, 0)]
        )
        top = self.box(waist, g, 0.55 * pr.torso_depth)
        poly = _hull(self.proj(np.concatenate([top, np.array(hem)])))
        axis = self.proj(np.array([0.5 * (hem[0] + hem[4])]))[0] - xy[PELVIS]
        normal = np.array([-axis[1], axis[0]])
        (left_hip, left_knee), (_, right_knee) = thighs
        if (xy[left_hip] - xy[PELVIS]) @ normal < 0:
            normal = -normal
        zz = 0.5 * (self.z[left_knee] + self.z[right_knee]) * look.skirt + 0.02 * self.s
        for part, sign in (("left_upper_leg", 1), ("right_upper_leg", -1)):
            half = _clip_halfplane(poly, xy[PELVIS], sign * normal)
            if len(half) >= 3:
                self.out.append(Shape(zz, 0, POLY, half, PART[part], MAT_BOTTOM))

    def head(self) -> None:
        """Hair ball, the visible face cap, a fringe; long hair hangs behind it."""
        look, s, t = self.look, self.s, self.body.torso
        hc, hr, hf = self.body.points[HEAD], self.pr.head_r, self.body.head
        hz = self.z[HEAD] + 0.5 * hr * s
        if look.long_hair:
            back = hc - hf[:, 2] * 0.8 * hr
            w = 0.85 * hr + 0.15 * look.long_hair
            pts = [
                hc + hf @ np.array((x, 0.2 * hr, -0.3 * hr))
                for x in (-0.95 * hr, 0.95 * hr)
            ]
            pts += [
                hc + t @ np.array((x, -0.9 * hr - look.long_hair, -0.6 * hr))
                for x in (-w, w)
            ]
            self.poly(np.array(pts), "hair", MAT_HAIR, float(s * back[2]))
        self.out.append(
            Shape(hz, 0, CIRCLE, (*self.xy[HEAD], hr * s), PART["hair"], MAT_HAIR)
        )
        face = cap_outline(hc, hr, hf[:, 2], np.radians(look.face))
        if face is None:
            return
        self.poly(face, "face", MAT_SKIN, hz, 1)
        fringe = cap_outline(hc, hr, hf[:, 1], np.radians(look.fringe))
        if fringe is not None:
            self.poly(fringe, "hair", MAT_HAIR, hz, 2)
        if hr * s >= 4:
            self.face_details(hz)

    def face_details(self, hz: float) -> None:
        """Eyes, brows and mouth on a face big enough to show them."""
        hc, hr, hf, s = self.body.points[HEAD], self.pr.head_r, self.body.head, self.s
        shown = face_shown(self.body)
        for k, side in ((1, 1), (2, -1)):
            if shown[k]:
                eye = (*self.xy[k], max(0.6, 0.13 * hr * s))
                self.out.append(
                    Shape(hz, 4, CIRCLE, eye, PART["face"], MAT_DARK, False)
                )
                brow = [
                    hc + hf @ (np.array([side * x, 0.38, 0.9]) * hr) for x in (0.2, 0.5)
                ]
                a, b = self.proj(np.array(brow))
                self.seg(a, b, 0.06 * hr, "face", MAT_HAIR, hz, 4, False)
        mouth = [hc + hf @ (np.array([x, -0.55, 0.83]) * hr) for x in (-0.22, 0.22)]
        if all(m[2] - hc[2] > 0.3 * hr for m in mouth):
            a, b = self.proj(np.array(mouth))
            self.seg(a, b, 0.07 * hr, "face", MAT_LIPS, hz, 4, False)


def face_shown(body: Body) -> np.ndarray:
    """Which of nose, eyes, ears face the camera enough to be drawn and labelled."""
    n = body.points[:5] - body.points[HEAD]
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    return n[:, 2] > FACE_FACING


def draw(canvas: np.ndarray, shapes: list[Shape], pid: int) -> None:
    """Draw shapes far to near into the H x W x 4 canvas (part, pid, mat, shade)."""
    one = 1 << SHIFT
    for sh in sorted(shapes, key=lambda q: (q.z, q.sub)):
        rim = (sh.part, pid, sh.mat, SHADE_EDGE if sh.core else 200)
        core = (sh.part, pid, sh.mat, SHADE_MID)
        if sh.kind == SEG:
            x1, y1, x2, y2, r = sh.geom
            a = (int((x1 - 0.5) * one), int((y1 - 0.5) * one))
            b = (int((x2 - 0.5) * one), int((y2 - 0.5) * one))
            cv2.line(canvas, a, b, rim, max(1, round(2 * r)), cv2.LINE_8, SHIFT)
            if sh.core and r >= 2:
                cv2.line(canvas, a, b, core, max(1, round(r)), cv2.LINE_8, SHIFT)
        elif sh.kind == CIRCLE:
            x, y, r = sh.geom
            c = (int((x - 0.5) * one), int((y - 0.5) * one))
            cv2.circle(canvas, c, max(1, int(r * one)), rim, -1, cv2.LINE_8, SHIFT)
            if sh.core and r >= 3:
                c2 = (int((x - 0.5 - 0.15 * r) * one), int((y - 0.5 - 0.15 * r) * one))
                cv2.circle(canvas, c2, int(0.55 * r * one), core, -1, cv2.LINE_8, SHIFT)
        else:
            pts = np.asarray(sh.geom)
            cv2.fillConvexPoly(
                canvas, ((pts - 0.5) * one).astype(np.int32), rim, cv2.LINE_8, SHIFT
            )
            if sh.core and len(pts) >= 3:
                mid = pts.mean(0)
                inner = mid + 0.55 * (pts - mid)
                cv2.fillConvexPoly(
                    canvas,
                    ((inner - 0.5) * one).astype(np.int32),
                    core,
                    cv2.LINE_8,
                    SHIFT,
                )
