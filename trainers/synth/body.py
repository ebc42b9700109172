"""Articulated people on the COCO-17 skeleton: proportions, joint-angle poses, FK.

A body lives in metres in its own frame (x = the person's left, y = up, z = forward), so
a pose means the same thing seen from any side. The body yaw then turns it towards the
camera, whose frame has x = image right, y = up and z = towards the viewer. Front, back
and profile views, their left/right and which limb hides which all follow from that
geometry instead of per-view rules: in a front view (yaw 0) the person's left is on the
image right, in a back view (yaw 180) on the image left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trainers.synth.rand import Rand, choose

# Pose vector layout (degrees). Limbs use a sagittal swing f (+ forward) and a lateral
# swing a (+ away from the body), so f = a = 0 hangs straight down.
POSE_KEYS = (
    "torso_pitch",
    "torso_roll",
    "torso_twist",
    "head_pitch",
    "head_yaw",
    "head_roll",
    "l_arm_f",
    "l_arm_a",
    "l_arm_twist",
    "l_elbow",
    "r_arm_f",
    "r_arm_a",
    "r_arm_twist",
    "r_elbow",
    "l_leg_f",
    "l_leg_a",
    "l_knee",
    "l_ankle",
    "r_leg_f",
    "r_leg_a",
    "r_knee",
    "r_ankle",
)
P = {name: i for i, name in enumerate(POSE_KEYS)}
# Joint-angle limits (degrees), same order as POSE_KEYS.
LIMITS = np.array(
    [
        (-20, 100),
        (-25, 25),
        (-40, 40),
        (-40, 50),
        (-70, 70),
        (-25, 25),
        (-60, 180),
        (-30, 180),
        (-80, 80),
        (0, 150),
        (-60, 180),
        (-30, 180),
        (-80, 80),
        (0, 150),
        (-35, 125),
        (-15, 50),
        (0, 150),
        (-30, 40),
        (-35, 125),
        (-15, 50),
        (0, 150),
        (-30, 40),
    ],
    np.float64,
)

FAMILIES = ("stand", "walk", "run", "arms_raised", "sit", "bend", "squat", "gesture")
FAMILY_WEIGHTS = (0.18, 0.2, 0.1, 0.14, 0.1, 0.1, 0.06, 0.12)

# Extra points after the 17 COCO keypoints (rows of Body.points).
PELVIS, NECK, HEAD, L_HAND, R_HAND, L_HEEL, R_HEEL, L_TOE, R_TOE = range(17, 26)
NUM_POINTS = 26


@dataclass
class Proportions:
    """Segment lengths and radii in metres; radii make a limb's drawn thickness."""

    height: float
    head_r: float
    neck_len: float
    torso_len: float
    shoulder_half: float
    waist_half: float
    hip_half: float
    torso_depth: float
    upper_arm: float
    lower_arm: float
    hand_len: float
    upper_leg: float
    lower_leg: float
    foot_len: float
    upper_arm_r: float
    lower_arm_r: float
    hand_r: float
    upper_leg_r: float
    lower_leg_r: float
    foot_r: float
    neck_r: float


def sample_proportions(rng: Rand) -> Proportions:
    """Adults and children of varied build; ratios follow anthropometric tables +-8%."""
    child = rng.random() < 0.12
    h = (
        rng.uniform(1.0, 1.45)
        if child
        else float(np.clip(rng.normal(1.72, 0.09), 1.5, 1.98))
    )
    head = (0.078 if child else 0.064) * rng.uniform(0.92, 1.1)
    build = rng.uniform(0.8, 1.35)  # thin .. heavy
    shoulders = rng.uniform(0.085, 0.11)
    hips = rng.uniform(0.045, 0.062)

    def j(x: float) -> float:
        return x * h * rng.uniform(0.94, 1.06)

    leg = 0.92 if child else 1.0
    return Proportions(
        height=h,
        head_r=head * h,
        neck_len=j(0.045),
        torso_len=j(0.29),
        shoulder_half=shoulders * h,
        waist_half=j(0.075) * build,
        hip_half=hips * h,
        torso_depth=j(0.11) * build,
        upper_arm=j(0.18),
        lower_arm=j(0.15),
        hand_len=j(0.1),
        upper_leg=j(0.245) * leg,
        lower_leg=j(0.245) * leg,
        foot_len=j(0.14),
        upper_arm_r=j(0.028) * build,
        lower_arm_r=j(0.021) * build,
        hand_r=j(0.022),
        upper_leg_r=j(0.05) * build,
        lower_leg_r=j(0.034) * build,
        foot_r=j(0.024),
        neck_r=j(0.027) * (0.8 + 0.2 * build),
    )


def clip_pose(pose: np.ndarray) -> np.ndarray:
    """Pose clipped to the joint limits (an arm swung back cannot also go high)."""
    out = np.clip(pose, LIMITS[:, 0], LIMITS[:, 1])
    for f in (P["l_arm_f"], P["r_arm_f"]):
        if out[f] < -30:  # arm swung backwards: little lateral swing left
            out[f + 1] = min(out[f + 1], 60.0)
    return out


def gait_pose(phase: float, amp: float = 1.0, run: float = 0.0) -> np.ndarray:
    """Walking (run=0) to running (run=1) at gait phase `phase` (radians).

    The left hip swings forward as sin(phase); the knee flexes during the swing; arms
    swing opposite to the leg on their side.
    """
    pose = np.zeros(len(POSE_KEYS))
    hip = (22 + 18 * run) * amp
    knee_swing = (40 + 55 * run) * amp
    for side, ph in (("l", phase), ("r", phase + np.pi)):
        s, c = np.sin(ph), np.cos(ph)
        pose[P[f"{side}_leg_f"]] = hip * s + 4
        pose[P[f"{side}_knee"]] = 6 + knee_swing * max(0.0, c) ** 2 + 8 * run
        pose[P[f"{side}_leg_a"]] = 3
        pose[P[f"{side}_ankle"]] = 10 * c
        pose[P[f"{side}_arm_f"]] = -(18 + 22 * run) * amp * s
        pose[P[f"{side}_arm_a"]] = 8 + 4 * run
        pose[P[f"{side}_elbow"]] = 15 + 70 * run + 12 * max(0.0, s)
    pose[P["torso_pitch"]] = 3 + 12 * run
    pose[P["torso_twist"]] = -6 * np.sin(phase) * amp
    return pose


def _arm_raise(rng: Rand) -> tuple[float, float, float]:
    """One raised arm: (f, a, elbow) for straight up, out, forward, or a wave."""
    kind = rng.integers(4)
    if kind == 0:
        return rng.uniform(150, 180), rng.uniform(-10, 20), rng.uniform(0, 30)
    if kind == 1:
        return rng.uniform(-15, 25), rng.uniform(70, 110), rng.uniform(0, 40)
    if kind == 2:
        return rng.uniform(60, 110), rng.uniform(-10, 30), rng.uniform(0, 60)
    return rng.uniform(0, 40), rng.uniform(90, 150), rng.uniform(60, 120)


def sample_pose(rng: Rand, family: str) -> np.ndarray:
    """A pose vector (degrees, clipped to LIMITS) from one family."""
    pose = np.zeros(len(POSE_KEYS))
    n = rng.normal
    pose[P["head_yaw"]] = n(0, 18)
    pose[P["head_pitch"]] = n(0, 10)
    pose[P["head_roll"]] = n(0, 6)
    pose[P["torso_roll"]] = n(0, 4)
    for side in "lr":
        pose[P[f"{side}_arm_f"]] = n(0, 10)
        pose[P[f"{side}_arm_a"]] = rng.uniform(4, 18)
        pose[P[f"{side}_arm_twist"]] = n(0, 20)
        pose[P[f"{side}_elbow"]] = rng.uniform(0, 30)
        pose[P[f"{side}_leg_f"]] = n(0, 4)
        pose[P[f"{side}_leg_a"]] = rng.uniform(0, 9)
        pose[P[f"{side}_knee"]] = rng.uniform(0, 10)
    if family in ("walk", "run"):
        run = 0.0 if family == "walk" else rng.uniform(0.6, 1.0)
        pose[6:] = gait_pose(rng.uniform(0, 2 * np.pi), rng.uniform(0.6, 1.2), run)[6:]
        pose[P["torso_pitch"]] = 3 + 12 * run
    elif family == "arms_raised":
        sides = ["l", "r"] if rng.random() < 0.5 else [choose(rng, "lr")]
        for side in sides:
            f, a, e = _arm_raise(rng)
            pose[P[f"{side}_arm_f"]], pose[P[f"{side}_arm_a"]] = f, a
            pose[P[f"{side}_elbow"]] = e
        pose[P["head_pitch"]] = n(-10, 10)
    elif family == "sit":
        for side in "lr":
            pose[P[f"{side}_leg_f"]] = rng.uniform(75, 105)
            pose[P[f"{side}_knee"]] = rng.uniform(70, 110)
            pose[P[f"{side}_leg_a"]] = rng.uniform(0, 20)
            pose[P[f"{side}_arm_f"]] = rng.uniform(10, 60)
            pose[P[f"{side}_elbow"]] = rng.uniform(30, 100)
        pose[P["torso_pitch"]] = rng.uniform(-10, 20)
    elif family in ("bend", "squat"):
        pitch = rng.uniform(35, 95) if family == "bend" else rng.uniform(15, 45)
        pose[P["torso_pitch"]] = pitch
        pose[P["head_pitch"]] = n(-pitch * 0.4, 10)
        for side in "lr":
            pose[P[f"{side}_arm_f"]] = pitch + n(0, 20)
            if family == "squat":
                pose[P[f"{side}_leg_f"]] = rng.uniform(85, 120)
                pose[P[f"{side}_knee"]] = rng.uniform(110, 145)
                pose[P[f"{side}_leg_a"]] = rng.uniform(5, 30)
            else:
                pose[P[f"{side}_knee"]] = rng.uniform(0, 30)
                pose[P[f"{side}_leg_f"]] = pose[P[f"{side}_knee"]] * 0.5 + n(0, 5)
    elif family == "gesture":
        for side in "lr":
            pose[P[f"{side}_arm_f"]] = rng.uniform(-40, 120)
            pose[P[f"{side}_arm_a"]] = rng.uniform(-25, 100)
            pose[P[f"{side}_elbow"]] = rng.uniform(0, 140)
        pose[P["torso_twist"]] = n(0, 15)
        leg = choose(rng, "lr")
        pose[P[f"{leg}_leg_f"]] = rng.uniform(-20, 40)
        pose[P[f"{leg}_knee"]] = rng.uniform(0, 60)
    return clip_pose(pose)


def sample_yaw(rng: Rand) -> float:
    """Body yaw in degrees: front views most common, back and profile views frequent."""
    u = rng.random()
    if u < 0.4:
        return float(rng.normal(0, 25))
    if u < 0.65:
        return float(rng.normal(180, 25))
    return float(rng.uniform(-180, 180))


def _rx(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


_DOWN = np.array([0.0, -1.0, 0.0])


def cross3(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cross product of two 3-vectors (np.cross costs ~20x more on tiny inputs)."""
    return np.array(
        [
            a[1] * b[2] - a[2] * b[1],
            a[2] * b[0] - a[0] * b[2],
            a[0] * b[1] - a[1] * b[0],
        ]
    )


def _limb_frame(f: float, a: float, twist: float, side: float) -> np.ndarray:
    """Rotation taking a limb hanging straight down to swing (f, a), then twisted.

    The shortest rotation keeps the joint's bending direction natural: an arm raised
    sideways still bends forward, an arm raised forward bends upwards.
    """
    ca = np.cos(a)
    d = np.array([side * np.sin(a), -ca * np.cos(f), ca * np.sin(f)])
    c = float(_DOWN @ d)
    if c < -0.9999:  # straight up: turn about the body's forward axis
        rot = _rz(np.pi)
    else:
        v = cross3(_DOWN, d)
        k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
        rot = np.eye(3) + k + k @ k / (1 + c)
    return rot @ _ry(twist)


@dataclass
class Body:
    """A posed body in camera-aligned metres, standing on the ground plane y = 0.

    points: NUM_POINTS x 3 (17 COCO keypoints, then pelvis, neck base, head centre,
    hand tips, heels, toes); x relative to the point under the pelvis.
    torso: 3 x 3 upper-body frame; head: 3 x 3 head frame (columns: left, up, forward).
    pelvis_frame: 3 x 3 frame of the hips (the body yaw).
    """

    points: np.ndarray
    torso: np.ndarray
    head: np.ndarray
    pelvis_frame: np.ndarray
    prop: Proportions


def pose_body(prop: Proportions, pose: np.ndarray, yaw: float) -> Body:
    """Forward kinematics: proportions + pose (degrees) + yaw (degrees) -> Body."""
    r = np.radians(pose)
    g = _ry(np.radians(yaw))
    torso = (
        g
        @ _rx(r[P["torso_pitch"]])
        @ _rz(r[P["torso_roll"]])
        @ _ry(r[P["torso_twist"]])
    )
    head = (
        torso @ _ry(r[P["head_yaw"]]) @ _rx(r[P["head_pitch"]]) @ _rz(r[P["head_roll"]])
    )
    pts = np.zeros((NUM_POINTS, 3))
    neck = torso @ np.array([0, prop.torso_len, 0])
    pts[NECK] = neck
    pts[HEAD] = (
        neck
        + torso @ np.array([0, prop.neck_len, 0])
        + head @ np.array([0, 0.8 * prop.head_r, 0.1 * prop.head_r])
    )
    hr = prop.head_r
    face = {
        0: (0, -0.3, 0.95),
        1: (0.35, 0.1, 0.93),
        2: (-0.35, 0.1, 0.93),
        3: (0.97, 0.05, -0.1),
        4: (-0.97, 0.05, -0.1),
    }
    for k, v in face.items():
        u = np.array(v) / np.linalg.norm(v)
        pts[k] = pts[HEAD] + head @ (u * 0.9 * hr)
    drop = 0.18 * prop.torso_len
    for side, sh, el, wr, tip, off in (
        (1, 5, 7, 9, L_HAND, 0),
        (-1, 6, 8, 10, R_HAND, 4),
    ):
        pts[sh] = torso @ np.array(
            [side * prop.shoulder_half, prop.torso_len - drop, 0]
        )
        f, a = r[6 + off], r[7 + off]
        frame = torso @ _limb_frame(f, a, side * r[8 + off], side)
        pts[el] = pts[sh] + frame @ (_DOWN * prop.upper_arm)
        fore = frame @ _rx(-r[9 + off])
        pts[wr] = pts[el] + fore @ (_DOWN * prop.lower_arm)
        pts[tip] = pts[wr] + fore @ (_DOWN * prop.hand_len)
    for side, hip, kn, an, heel, toe, off in (
        (1, 11, 13, 15, L_HEEL, L_TOE, 0),
        (-1, 12, 14, 16, R_HEEL, R_TOE, 4),
    ):
        pts[hip] = g @ np.array([side * prop.hip_half, 0, 0])
        frame = g @ _limb_frame(r[14 + off], r[15 + off], 0.0, side)
        pts[kn] = pts[hip] + frame @ (_DOWN * prop.upper_leg)
        shin = frame @ _rx(r[16 + off])
        pts[an] = pts[kn] + shin @ (_DOWN * prop.lower_leg)
        foot = shin @ _rx(-r[17 + off])
        pts[heel] = pts[an] + foot @ np.array(
            [0, -0.6 * prop.foot_r, -0.25 * prop.foot_len]
        )
        pts[toe] = pts[an] + foot @ np.array(
            [0, -0.6 * prop.foot_r, 0.75 * prop.foot_len]
        )
    lowest = min(pts[[L_HEEL, R_HEEL, L_TOE, R_TOE], 1]) - prop.foot_r
    pts[:, 1] -= lowest
    return Body(points=pts, torso=torso, head=head, pelvis_frame=g, prop=prop)
