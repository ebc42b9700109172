"""Predictions drawn by the synthetic world's preview (trainers.plots)."""

import numpy as np

from configs.records import Prediction
from nets.similarity import KP_MIN_SCORE
from trainers.plots import as_scene


def test_guessed_joints_are_drawn_as_occluded():
    """Joints scored above KP_MIN_SCORE are visible (2), the decode's completion
    guesses (0 < score <= KP_MIN_SCORE) occluded rings (1), absent ones unlabelled."""
    kps = np.zeros((1, 17, 3), np.float32)
    kps[0, :4, 2] = (0.9, KP_MIN_SCORE, 0.01, 0.0)
    pred = Prediction(
        np.zeros((4, 4), np.uint8),
        np.zeros((4, 4), np.uint16),
        kps,
        np.ones(1, np.float32),
    )
    scene = as_scene(pred, np.zeros((4, 4, 3), np.uint8), "fine")
    np.testing.assert_array_equal(scene.keypoints[0, :4, 2], (2.0, 1.0, 1.0, 0.0))
