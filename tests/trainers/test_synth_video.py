"""Synthetic clips: stable track ids, smooth motion, entering, leaving, crossing."""

import numpy as np

from trainers.synth import generate_video


def _hips(scene, k):
    kp = scene.keypoints[k]
    if kp[11, 2] > 0 and kp[12, 2] > 0 and kp[5, 2] > 0 and kp[6, 2] > 0:
        hip = kp[11:13, :2].mean(0)
        return hip, float(np.linalg.norm(kp[5:7, :2].mean(0) - hip))
    return None


def test_same_seed_same_clip():
    a = list(generate_video(4, 128, 6, (2, 4)))
    b = list(generate_video(4, 128, 6, (2, 4)))
    assert len(a) == 6
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.image, y.image)
        assert np.array_equal(x.instances, y.instances)
        assert np.array_equal(x.track_ids, y.track_ids)


def test_tracks_are_unique_and_move_smoothly():
    frames = list(generate_video(1, 160, 45, (4, 8)))
    moves = 0
    for prev, cur in zip(frames, frames[1:], strict=False):
        assert len(set(cur.track_ids.tolist())) == cur.num_people
        before = {int(t): k for k, t in enumerate(prev.track_ids)}
        for k, t in enumerate(cur.track_ids):
            if int(t) not in before:
                continue
            a, b = _hips(prev, before[int(t)]), _hips(cur, k)
            if a is None or b is None:
                continue
            step = float(np.linalg.norm(a[0] - b[0]))
            assert step <= max(a[1], b[1]) + 2.0  # under a torso length: no jumps
            moves += step > 0.2
    assert moves > 20  # people do move


def test_people_enter_leave_and_hide_behind_each_other():
    entered = left = occluded = 0
    for seed in range(2):
        frames = list(generate_video(seed, 96, 60, (3, 8)))
        first, last = (
            set(frames[0].track_ids.tolist()),
            set(frames[-1].track_ids.tolist()),
        )
        seen = set().union(*(f.track_ids.tolist() for f in frames))
        entered += len(seen - first)
        left += len(seen - last)
        occluded += sum(int((f.keypoints[..., 2] == 1).sum()) for f in frames)
    assert entered > 0 and left > 0 and occluded > 0
