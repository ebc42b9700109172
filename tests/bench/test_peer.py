"""The MediaPipe peer worker, for real, when its virtual environment exists.

Building .venv-peer needs PyPI and about a minute (bash bench/peer_env.sh), so these
tests skip where it has not been built.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.peer import PEER_PYTHON, MediaPipePeer
from trainers.synth import generate_scene

pytestmark = pytest.mark.skipif(
    not PEER_PYTHON.exists(), reason=".venv-peer not built (bash bench/peer_env.sh)"
)


def test_landmarks_run_once_per_given_box() -> None:
    scene = generate_scene(3, 256, people=(2, 2))
    boxes = scene.boxes()
    with MediaPipePeer(build=False) as peer:
        blank = peer.process(np.zeros((128, 160, 3), np.uint8))
        boxed = peer.process(scene.image, boxes)
    assert blank.detected == 0 and blank.people == 0
    assert blank.keypoints.shape == (0, 17, 3)
    assert 0 < boxed.detect_ms <= boxed.ms
    # The landmark model ran on each box; it reports only the poses it believes in.
    assert boxed.people <= len(boxes)
    if boxed.people:
        xy = boxed.keypoints[..., :2]
        assert np.isfinite(xy).all() and (xy > -256).all() and (xy < 512).all()
