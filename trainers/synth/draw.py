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
    pr = body.prop
    p3 = body.points
    scale, origin = np.array([s, -s]), np.array([u0, v0])

    def proj(pts: np.ndarray) -> np.ndarray:
        return pts[:, :2] * scale + origin

    xy = proj(p3)
    z = s * p3[:, 2]
    out: list[Shape] = []

    def seg(a, b, r, part, mat, zz, sub=0, core=True):
        out.append(Shape(zz, sub, SEG, (*a, *b, r * s), part, mat, core))

    def chain(ids, radii, cover, parts, cloth, bias):
        """Upper and lower limb segment, clothed `cover` segments down from the top."""
        (a, b, c), (r1, r2), bulk = ids, radii, look.bulk
        for k, (p, q, r, part) in enumerate(
            ((a, b, r1, parts[0]), (b, c, r2, parts[1]))
        ):
            zz = 0.5 * (z[p] + z[q]) + bias
            whole = cover >= k + 1
            seg(
                xy[p],
                xy[q],
                r * (bulk if whole else 1),
                part,
                cloth if whole else MAT_SKIN,
                zz,
            )
            part_cover = cover - k
            if 0 < part_cover < 1:
                end = xy[p] + (xy[q] - xy[p]) * part_cover
                seg(xy[p], end, r * bulk, part, cloth, zz, 1)

    arm_bias, leg_bias = 0.02 * s, -0.03 * s
    for side, sh, el, wr, tip in (
        ("left", 5, 7, 9, L_HAND),
        ("right", 6, 8, 10, R_HAND),
    ):
        chain(
            (sh, el, wr),
            (pr.upper_arm_r, pr.lower_arm_r),
            look.sleeve,
            (PART[f"{side}_upper_arm"], PART[f"{side}_lower_arm"]),
            MAT_TOP,
            arm_bias,
        )
        end = xy[wr] + 0.8 * (xy[tip] - xy[wr])
        seg(
            xy[wr],
            end,
            pr.hand_r,
            PART[f"{side}_hand"],
            MAT_SKIN,
            0.5 * (z[wr] + z[tip]) + arm_bias,
        )
    foot_mat = MAT_SKIN if look.barefoot else MAT_SHOES
    for side, hip, kn, an, heel, toe in (
        ("left", 11, 13, 15, L_HEEL, L_TOE),
        ("right", 12, 14, 16, R_HEEL, R_TOE),
    ):
        chain(
            (hip, kn, an),
            (pr.upper_leg_r, pr.lower_leg_r),
            look.legwear,
            (PART[f"{side}_upper_leg"], PART[f"{side}_lower_leg"]),
            MAT_BOTTOM,
            leg_bias,
        )
        seg(
            xy[heel],
            xy[toe],
            pr.foot_r,
            PART[f"{side}_foot"],
            foot_mat,
            0.5 * (z[heel] + z[toe]) + leg_bias,
        )

    # Torso: hull of a box through shoulders (upper-body frame) and hips (pelvis frame).
    t, g, pel = body.torso, body.pelvis_frame, p3[PELVIS]
    d = 0.55 * pr.torso_depth
    tl, sh_w = pr.torso_len, pr.shoulder_half + 0.4 * pr.upper_arm_r
    sh = pr.shoulder_half
    upper = np.array(
        [
            (1.4 * pr.neck_r, tl, 0),
            (0.6 * sh, 0.93 * tl, 0),
            (0.9 * sh_w, 0.86 * tl, 0),
            (sh_w, 0.76 * tl, 0),
            (0.95 * sh, 0.6 * tl, 0),
            (pr.waist_half, 0.35 * tl, 0),
        ]
    )
    hip_w = pr.hip_half + 0.85 * pr.upper_leg_r
    lower = np.array(
        [(hip_w, 0, 0), (pr.hip_half + 0.5 * pr.upper_leg_r, -0.5 * pr.upper_leg_r, 0)]
    )

    def box(local: np.ndarray, frame: np.ndarray, depth: float = d) -> np.ndarray:
        sym = np.concatenate([local, local * [-1, 1, 1]])
        sym = np.concatenate([sym + [0, 0, depth], sym - [0, 0, depth]])
        return pel + sym @ frame.T

    tz = 0.5 * (z[PELVIS] + z[NECK])
    torso_poly = _hull(proj(np.concatenate([box(upper, t), box(lower, g)])))
    out.append(Shape(tz, 0, POLY, torso_poly, PART["torso"], MAT_TOP))
    band_top = look.tucked * tl
    band = np.concatenate(
        [
            box(np.array([(max(pr.waist_half, pr.hip_half), band_top, 0)]), t),
            box(lower, g),
        ]
    )
    out.append(Shape(tz, 1, POLY, _hull(proj(band)), PART["torso"], MAT_BOTTOM))
    if look.belt:
        belt = box(
            np.array(
                [
                    (max(pr.waist_half, pr.hip_half) * 1.02, band_top, 0),
                    (
                        max(pr.waist_half, pr.hip_half) * 1.02,
                        band_top + 0.035 * pr.height,
                        0,
                    ),
                ]
            ),
            t,
            d * 1.02,
        )
        out.append(
            Shape(tz, 2, POLY, _hull(proj(belt)), PART["torso"], MAT_ACCENT, False)
        )
    facing = t[2, 2]  # torso forward . towards-viewer
    if facing > 0.15:
        w = 1.3 * pr.neck_r
        ang = np.linspace(0, np.pi, 7)
        neck_local = np.stack(
            [
                w * np.cos(ang),
                tl - look.neckline * tl * np.sin(ang) - 0.02 * tl,
                np.full(7, 1.05 * d),
            ],
            1,
        )
        out.append(
            Shape(
                tz,
                3,
                POLY,
                _hull(proj(pel + neck_local @ t.T)),
                PART["torso"],
                MAT_SKIN,
            )
        )
        if look.print_size:
            q = look.print_size * pr.height
            pl = np.array(
                [(x, 0.62 * tl + y, 1.06 * d) for x in (-q, q) for y in (-q, q)]
            )
            out.append(
                Shape(
                    tz,
                    4,
                    POLY,
                    _hull(proj(pel + pl @ t.T)),
                    PART["torso"],
                    MAT_ACCENT,
                    False,
                )
            )
    neck_top = p3[NECK] + t @ np.array([0, pr.neck_len + 0.3 * pr.head_r, 0])
    seg(xy[NECK], proj(neck_top[None])[0], pr.neck_r, PART["torso"], MAT_SKIN, tz, 5)

    if look.skirt:
        hem = []
        for hip, kn in ((11, 13), (12, 14)):
            c = p3[hip] + (p3[kn] - p3[hip]) * look.skirt
            r = pr.upper_leg_r + look.skirt_flare
            hem += [
                c + g @ np.array(o)
                for o in ((r, 0, 0), (-r, 0, 0), (0, 0, r), (0, 0, -r))
            ]
        top = box(np.array([(hip_w, 0.05 * tl, 0)]), g)
        poly = _hull(proj(np.concatenate([top, np.array(hem)])))
        mid = proj(np.array([0.5 * (hem[0] + hem[4])]))[0]
        axis = mid - xy[PELVIS]
        normal = np.array([-axis[1], axis[0]])
        if (xy[11] - xy[PELVIS]) @ normal < 0:
            normal = -normal
        zz = 0.5 * (z[13] + z[14]) * look.skirt + 0.02 * s
        for part, sign in (("left_upper_leg", 1), ("right_upper_leg", -1)):
            half = _clip_halfplane(poly, xy[PELVIS], sign * normal)
            if len(half) >= 3:
                out.append(Shape(zz, 0, POLY, half, PART[part], MAT_BOTTOM))

    # Head: hair ball, the visible face cap, a fringe; long hair hangs behind the head.
    hc, hr, hf = p3[HEAD], pr.head_r, body.head
    hz = z[HEAD] + 0.5 * hr * s
    if look.long_hair:
        back = hc - hf[:, 2] * 0.8 * hr
        w = 0.85 * hr + 0.15 * look.long_hair
        locs = [(x, 0.2 * hr, -0.3 * hr) for x in (-0.95 * hr, 0.95 * hr)]
        pts = [hc + hf @ np.array(p) for p in locs]
        pts += [
            hc + t @ np.array((x, -0.9 * hr - look.long_hair, -0.6 * hr))
            for x in (-w, w)
        ]
        out.append(
            Shape(
                float(s * back[2]),
                0,
                POLY,
                _hull(proj(np.array(pts))),
                PART["hair"],
                MAT_HAIR,
            )
        )
    out.append(Shape(hz, 0, CIRCLE, (*xy[HEAD], hr * s), PART["hair"], MAT_HAIR))
    face = cap_outline(hc, hr, hf[:, 2], np.radians(look.face))
    if face is not None:
        out.append(Shape(hz, 1, POLY, _hull(proj(face)), PART["face"], MAT_SKIN))
        fringe = cap_outline(hc, hr, hf[:, 1], np.radians(look.fringe))
        if fringe is not None:
            out.append(Shape(hz, 2, POLY, _hull(proj(fringe)), PART["hair"], MAT_HAIR))
        if hr * s >= 4:
            _face_details(out, body, xy, proj, hz, s)
    return out


def face_shown(body: Body) -> np.ndarray:
    """Which of nose, eyes, ears face the camera enough to be drawn and labelled."""
    n = body.points[:5] - body.points[HEAD]
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    return n[:, 2] > FACE_FACING


def _face_details(out, body: Body, xy, proj, hz: float, s: float) -> None:
    """Eyes, brows and mouth on a face big enough to show them."""
    hc, hr, hf = body.points[HEAD], body.prop.head_r, body.head
    shown = face_shown(body)
    for k, eye in ((1, 1), (2, -1)):
        if shown[k]:
            out.append(
                Shape(
                    hz,
                    4,
                    CIRCLE,
                    (*xy[k], max(0.6, 0.13 * hr * s)),
                    PART["face"],
                    MAT_DARK,
                    False,
                )
            )
            brow = [hc + hf @ (np.array([eye * x, 0.38, 0.9]) * hr) for x in (0.2, 0.5)]
            b = proj(np.array(brow))
            out.append(
                Shape(
                    hz,
                    4,
                    SEG,
                    (*b[0], *b[1], max(0.5, 0.06 * hr * s)),
                    PART["face"],
                    MAT_HAIR,
                    False,
                )
            )
    mouth = [hc + hf @ (np.array([x, -0.55, 0.83]) * hr) for x in (-0.22, 0.22)]
    if all(m[2] - hc[2] > 0.3 * hr for m in mouth):
        m = proj(np.array(mouth))
        out.append(
            Shape(
                hz,
                4,
                SEG,
                (*m[0], *m[1], max(0.5, 0.07 * hr * s)),
                PART["face"],
                MAT_LIPS,
                False,
            )
        )


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
