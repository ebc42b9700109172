"""Person duplicates on hand-made people: nets.similarity.duplicates (numpy and torch),
the graph engine's drop_duplicates and the native engine's _drop_duplicates agree."""

import numpy as np
import pytest
import torch

from configs import body
from nets.decode import drop_duplicates
from nets.native import _drop_duplicates
from nets.similarity import KP_MIN_SCORE, OKS_TIE, duplicates, oks, pose_areas

ANKLES = [body()["keypoints"].index(n) for n in ("left_ankle", "right_ankle")]


def standing(x: float, height: float = 160.0) -> np.ndarray:
    """A 17 x 3 person, every joint scored 0.9, joints spread over a box `height` tall
    and height / 3 wide whose left edge is at x."""
    rng = np.random.default_rng(0)
    person = np.zeros((17, 3), np.float32)
    person[:, 0] = x + rng.uniform(0, height / 3, 17)
    person[:, 1] = 20 + np.linspace(0, height, 17)
    person[:, 2] = 0.9
    return person


def people() -> tuple[np.ndarray, np.ndarray]:
    """Slots best first: a body; the body again 3 px off; a second body 60 px away;
    a two-ankle fragment 2 px off the first body's ankles; an invalid copy of the
    second body; an empty slot."""
    body_a, body_b = standing(40.0), standing(100.0)
    again = body_a.copy()
    again[:, :2] += 3.0
    feet = np.zeros_like(body_a)
    feet[ANKLES] = body_a[ANKLES] + [2.0, 0.0, 0.0]
    kps = np.stack([body_a, again, body_b, feet, body_b, np.zeros_like(body_a)])
    return kps, np.array([True, True, True, True, False, False])


def test_duplicates_drop_copies_and_fragments_but_keep_close_people():
    kps, valid = people()
    got = duplicates(kps, valid, 0.5)
    np.testing.assert_array_equal(got, [False, True, False, True, False, False])
    # numpy (native engine) and torch (graph engine), batched, say the same
    batch = torch.from_numpy(np.stack([kps, kps[::-1].copy()]))
    both = duplicates(
        batch, torch.from_numpy(np.stack([valid, valid[::-1].copy()])), 0.5
    )
    np.testing.assert_array_equal(both[0].numpy(), got)
    # Ranked the other way round, the fragment comes before the body it shares
    # joints with and drops it and its copy: rank decides (slots come by score, and
    # a fragment's two joints score below a body's seventeen).
    np.testing.assert_array_equal(both[1].numpy(), [0, 0, 0, 0, 1, 1])


def test_both_engines_clear_the_same_dropped_slots():
    kps, valid = people()
    scores = np.linspace(0.9, 0.4, len(kps)).astype(np.float32) * valid
    graph = drop_duplicates(*(torch.from_numpy(a) for a in (kps, scores, valid)), 0.5)
    native = (kps.copy(), scores.copy(), valid.copy())
    sigmas = np.asarray(body()["oks_sigmas"], np.float32)
    _drop_duplicates(*native, sigmas, 0.5, KP_MIN_SCORE)
    for a, b in zip(graph, native, strict=True):
        np.testing.assert_array_equal(a.numpy(), b)
    k, s, v = native
    np.testing.assert_array_equal(v, [True, False, True, False, False, False])
    assert not k[~v].any() and not s[~v].any()
    np.testing.assert_array_equal(k[v], kps[v])
    kept = drop_duplicates(*(torch.from_numpy(a) for a in (kps, scores, valid)), None)
    np.testing.assert_array_equal(kept[2].numpy(), valid)


def test_a_fragment_at_the_threshold_is_kept_by_both_engines():
    """A two-ankle fragment with one ankle on a body's and the other far off has OKS
    0.5 plus float noise with it: at a 0.5 threshold both engines keep it (their
    sums fell on either side of 0.5 on a real frame before `OKS_TIE`)."""
    body_a = standing(40.0)
    feet = np.zeros_like(body_a)
    feet[ANKLES] = body_a[ANKLES]
    feet[ANKLES[1], 0] += 150.0
    kps = np.stack([body_a, feet])
    valid = np.array([True, True])
    scale = pose_areas(kps).max()
    assert abs(oks(feet[None], body_a[None], np.array([scale]))[0, 0] - 0.5) < OKS_TIE
    assert not duplicates(kps, valid, 0.5).any()
    scores = np.array([0.9, 0.1], np.float32)
    graph = drop_duplicates(*(torch.from_numpy(a) for a in (kps, scores, valid)), 0.5)
    native = (kps.copy(), scores.copy(), valid.copy())
    sigmas = np.asarray(body()["oks_sigmas"], np.float32)
    _drop_duplicates(*native, sigmas, 0.5 + OKS_TIE, KP_MIN_SCORE)
    np.testing.assert_array_equal(graph[2].numpy(), [True, True])
    np.testing.assert_array_equal(native[2], [True, True])
    # and without the margin the native engine's float32 sum may call it a duplicate:
    # the margin, not luck, keeps the engines together
    assert duplicates(kps, valid, 0.5 - 2 * OKS_TIE)[1]


@pytest.mark.parametrize("xp", [np.asarray, torch.as_tensor])
def test_oks_and_pose_areas_take_numpy_or_torch(xp):
    kps, _ = people()
    areas = pose_areas(xp(kps))
    assert float(areas[0]) == pytest.approx(
        np.ptp(kps[0, :, 0]) * np.ptp(kps[0, :, 1]), rel=1e-5
    )
    assert float(areas[-1]) == 1.0  # no joint: the floor
    sim = np.asarray(oks(xp(kps[:3]), xp(kps[:3]), areas[:3]))
    assert sim[0, 0] == pytest.approx(1.0)
    assert sim[0, 1] > 0.5 > sim[0, 2]
