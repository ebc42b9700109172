"""Tiny teachers implementing trainers.teachers.Teacher, so pseudo-labelling and the
real evaluation are tested in milliseconds: people are boxes given as fractions of the
image, with a standing skeleton inside each box."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from configs import body, taxonomy
from trainers.teachers import TeacherOutput

FINE = taxonomy("fine")["classes"]
KP = {n: i for i, n in enumerate(body()["keypoints"])}
# (x, y) of each COCO-17 joint as fractions of a standing person's box.
SKELETON = np.array([
    [0.5, 0.08], [0.55, 0.06], [0.45, 0.06], [0.6, 0.08], [0.4, 0.08],
    [0.75, 0.22], [0.25, 0.22], [0.85, 0.4], [0.15, 0.4], [0.85, 0.55],
    [0.15, 0.55], [0.65, 0.55], [0.35, 0.55], [0.65, 0.75], [0.35, 0.75],
    [0.65, 0.95], [0.35, 0.95],
], np.float32)  # fmt: skip


@dataclass
class Person:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 as fractions of the image
    score: float = 0.9
    joint_scores: dict[str, float] = field(default_factory=dict)


def _pixels(box: tuple[float, ...], h: int, w: int) -> tuple[int, int, int, int]:
    return int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h)


def keypoints(people: list[Person], h: int, w: int) -> np.ndarray:
    out = np.zeros((len(people), 17, 3), np.float32)
    for k, p in enumerate(people):
        x0, y0, x1, y1 = _pixels(p.box, h, w)
        out[k, :, 0] = x0 + SKELETON[:, 0] * (x1 - x0)
        out[k, :, 1] = y0 + SKELETON[:, 1] * (y1 - y0)
        out[k, :, 2] = 0.9
        for name, s in p.joint_scores.items():
            out[k, KP[name], 2] = s
    return out


@dataclass
class FakePose:
    """Keypoints only (a MoveNet stand-in)."""

    people: list[Person]
    name: str = "fake_pose"

    def __call__(self, image: np.ndarray) -> TeacherOutput:
        h, w = image.shape[:2]
        scores = np.array([p.score for p in self.people], np.float32)
        return TeacherOutput(keypoints(self.people, h, w), scores)


@dataclass
class FakeParse:
    """Keypoints, box-shaped instance masks and parts: face in a box's top 15 %,
    torso below (a BodyPix stand-in)."""

    people: list[Person]
    name: str = "fake_parse"

    def __call__(self, image: np.ndarray) -> TeacherOutput:
        h, w = image.shape[:2]
        instances = np.zeros((h, w), np.uint16)
        probs = np.full((len(FINE), h, w), 0.01, np.float32)
        probs[0] = 0.85
        for k, p in enumerate(self.people):
            x0, y0, x1, y1 = _pixels(p.box, h, w)
            instances[y0:y1, x0:x1] = k + 1
            head = y0 + int(0.15 * (y1 - y0))
            probs[:, y0:y1, x0:x1] = 0.01
            probs[FINE.index("face"), y0:head, x0:x1] = 0.85
            probs[FINE.index("torso"), head:y1, x0:x1] = 0.85
        scores = np.array([p.score for p in self.people], np.float32)
        return TeacherOutput(keypoints(self.people, h, w), scores, instances, probs)
