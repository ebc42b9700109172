"""Skeleton drawing: limbs join seen joints, never a hollow (occluded, guessed) one."""

import numpy as np

from configs import body
from configs.drawing import draw_skeleton


def test_limbs_join_seen_joints_but_not_hollow_ones():
    """Two joints joined by a limb, far apart: with both solid the limb's middle is
    painted; with one hollow only the two joint marks are."""
    kps = np.zeros((17, 3), np.float32)
    i, j = body()["limbs"][0]
    kps[i, :2], kps[j, :2] = (10.0, 50.0), (90.0, 50.0)
    seen = np.zeros(17, bool)
    seen[[i, j]] = True
    middle = []
    for hollow in (None, np.arange(17) == j):
        out = np.zeros((100, 100, 3), np.uint8)
        draw_skeleton(out, kps, (0, 255, 0), seen, 2, hollow=hollow)
        middle.append(int(out[50, 50, 1]))
        assert out[50, 10].any() and out[50, 90].any()  # both joints drawn
    assert middle == [255, 0]
