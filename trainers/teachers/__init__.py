"""Pretrained teachers (other people's models) behind one small interface.

A teacher turns one RGB image into people: COCO-17 keypoints with scores, and where it
can, instance masks and part probabilities in the project's `fine` taxonomy. The
pseudo-labeller (`trainers.pseudolabel`) fuses teachers; the real evaluation
(`trainers.evaluate --data real`) scores each one beside the student. Teachers read
their files in place (by default from ../shared/models); nothing here downloads
anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass
class TeacherOutput:
    """What a teacher says about one image, in that image's pixel grid.

    Attributes:
        keypoints: P x 17 x 3 float32 (x, y, score) in image pixels, COCO-17 order;
            score 0 = joint not found.
        scores: P float32 person confidences.
        instances: H x W uint16 (0 background, k + 1 = person k), or None when the
            teacher gives no masks.
        part_probs: C x H x W float32 probabilities over the `fine` taxonomy (class 0
            background; sums to 1 per pixel), or None when the teacher gives no parts.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    instances: np.ndarray | None = None
    part_probs: np.ndarray | None = None

    @property
    def num_people(self) -> int:
        return int(self.keypoints.shape[0])


class Teacher(Protocol):
    """Image in, people out: the one interface every teacher implements."""

    name: str

    def __call__(self, image: np.ndarray) -> TeacherOutput:
        """`image`: H x W x 3 uint8 RGB of any size."""
        ...


class TeacherError(ValueError):
    """A teacher's model file is missing, unreadable or not the expected model."""
