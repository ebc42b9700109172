"""Synthetic bodies: joint limits, COCO left/right, front and back views."""

import numpy as np
import pytest

from configs import body as body_table
from trainers.synth.background import Background
from trainers.synth.body import (
    FAMILIES,
    LIMITS,
    pose_body,
    sample_pose,
    sample_proportions,
)
from trainers.synth.compose import Camera, Person, render
from trainers.synth.draw import PART
from trainers.synth.looks import sample_look
from trainers.synth.rand import Rand

KP = {n: i for i, n in enumerate(body_table()["keypoints"])}


@pytest.mark.parametrize("family", FAMILIES)
def test_poses_respect_joint_limits(family):
    rng = Rand(0)
    for _ in range(50):
        pose = sample_pose(rng, family)
        assert np.all(pose >= LIMITS[:, 0]) and np.all(pose <= LIMITS[:, 1])


def test_body_stands_on_the_ground_with_plausible_height():
    rng = Rand(1)
    prop = sample_proportions(rng)
    b = pose_body(prop, sample_pose(rng, "stand"), 0.0)
    assert b.points[:, 1].min() >= 0
    top = b.points[:17, 1].max()  # eyes/ears: below the crown, above 80% of height
    assert 0.8 * prop.height < top < prop.height


def _single(yaw: float, seed: int = 0):
    """One standing person filling a plain 192 px image, seen at body yaw `yaw`."""
    rng = Rand(seed)
    size = 192
    prop = sample_proportions(rng)
    px_per_m = 0.8 * size / prop.height  # feet at 90% of the image height
    cam = Camera(f=size, horizon=0.9 * size - px_per_m, cx=size / 2, height=1.0)
    look = sample_look(rng)
    look.long_hair = 0.0
    pose = sample_pose(rng, "stand")
    pose[:] = 0  # straight, arms down: nothing crosses
    pose[[7, 11]] = 12  # arms a little away from the body
    depth = cam.depth_for_height(size * 0.8, prop.height)
    bg = Background(np.zeros((size, size, 3), np.uint8), [], [], 1.0)
    person = Person(prop, look, pose, yaw, 0.0, depth, 0)
    return render([person], cam, bg, [], None, (1.0, 0.0, 0.0), rng)


def _mean_x(scene, part: str) -> float:
    return float(np.nonzero(scene.parts == PART[part])[1].mean())


def test_front_view_puts_the_persons_left_on_the_image_right():
    s = _single(0.0)
    kp = s.keypoints[0]
    for side in ("shoulder", "wrist", "hip", "ankle", "eye"):
        assert kp[KP[f"left_{side}"], 0] > kp[KP[f"right_{side}"], 0]
    assert _mean_x(s, "left_upper_arm") > _mean_x(s, "right_upper_arm")
    assert _mean_x(s, "left_foot") > _mean_x(s, "right_foot")
    assert (s.parts == PART["face"]).sum() > 100
    assert np.all(kp[:3, 2] == 2)  # nose and eyes seen


def test_back_view_mirrors_sides_and_shows_hair_but_no_face():
    s = _single(180.0)
    kp = s.keypoints[0]
    for side in ("shoulder", "wrist", "hip", "ankle"):
        assert kp[KP[f"left_{side}"], 0] < kp[KP[f"right_{side}"], 0]
    assert _mean_x(s, "left_upper_arm") < _mean_x(s, "right_upper_arm")
    assert (s.parts == PART["face"]).sum() == 0
    assert (s.parts == PART["hair"]).sum() > 100
    assert np.all(kp[:3] == 0)  # nose and eyes are not labelled from behind
    assert np.all(kp[3:5, 2] == 2)  # ears are


def test_keypoints_lie_on_their_parts_in_a_clear_view():
    s = _single(0.0, seed=3)
    allowed = {
        "nose": {"face"},
        "left_eye": {"face"},
        "left_wrist": {"left_lower_arm", "left_hand"},
        "right_elbow": {"right_upper_arm", "right_lower_arm"},
        "left_knee": {"left_upper_leg", "left_lower_leg"},
        "right_ankle": {"right_lower_leg", "right_foot"},
        "left_hip": {"torso", "left_upper_leg"},
        "right_shoulder": {"torso", "right_upper_arm"},
    }
    names = {v: k for k, v in PART.items()}
    for kp_name, parts in allowed.items():
        x, y, v = s.keypoints[0, KP[kp_name]]
        assert v == 2
        assert names[int(s.parts[int(y), int(x)])] in parts, kp_name
