"""Still synthetic scenes: determinism, map consistency, visibility, crowds."""

import cv2
import numpy as np
import pytest

from configs import taxonomy
from trainers.synth import SceneStream, generate_scene
from trainers.synth.body import FAMILIES

NUM_PARTS = len(taxonomy("fine")["classes"])
NO_SEATS = tuple(f for f in FAMILIES if f != "sit")  # stools are occluders too


def _same(a, b) -> bool:
    return all(
        np.array_equal(getattr(a, k), getattr(b, k))
        for k in ("image", "parts", "instances", "keypoints", "track_ids")
    )


def test_same_seed_same_scene_other_seed_other_scene():
    a, b = generate_scene(11, 192, (2, 6)), generate_scene(11, 192, (2, 6))
    assert _same(a, b)
    assert not np.array_equal(a.image, generate_scene(12, 192, (2, 6)).image)


def test_shapes_and_dtypes():
    s = generate_scene(3, 160, (3, 5))
    p = s.num_people
    assert s.image.shape == (160, 160, 3) and s.image.dtype == np.uint8
    assert s.parts.shape == (160, 160) and s.parts.dtype == np.uint8
    assert s.instances.shape == (160, 160) and s.instances.dtype == np.uint16
    assert s.keypoints.shape == (p, 17, 3) and s.keypoints.dtype == np.float32
    assert s.track_ids.shape == (p,) and s.track_ids.dtype == np.int64
    assert s.taxonomy == "fine"


@pytest.mark.parametrize("seed", range(6))
def test_parts_and_instances_cover_the_same_pixels(seed):
    s = generate_scene(seed, 192, (1, 15))
    assert np.array_equal(s.instances > 0, s.parts > 0)
    assert s.parts.max() < NUM_PARTS
    # every person in the scene has pixels, ids are exactly 1..P
    assert set(np.unique(s.instances)) - {0} == set(range(1, s.num_people + 1))
    assert len(set(s.track_ids.tolist())) == s.num_people


def _visibility_cases(seeds, **opts):
    for seed in seeds:
        s = generate_scene(seed, 256, (4, 15), **opts)
        for k, kp in enumerate(s.keypoints):
            for x, y, v in kp:
                yield s, k + 1, x, y, v


def test_occluded_keypoints_lie_on_someone_else_and_visible_ones_on_their_person():
    counts = {1: 0, 2: 0}
    for s, own, x, y, v in _visibility_cases(
        range(8), occluders=0.0, families=NO_SEATS
    ):
        if v == 0:
            assert x == 0 and y == 0
            continue
        at = s.instances[int(y), int(x)]
        counts[int(v)] += 1
        if v == 1:
            assert at not in (0, own)
        else:
            near = s.instances[
                max(int(y) - 1, 0) : int(y) + 2, max(int(x) - 1, 0) : int(x) + 2
            ]
            assert (near == own).any()
    assert counts[1] > 50 and counts[2] > 200  # occlusion is common, not rare


def test_objects_occlude_too():
    v1 = 0
    for s, own, x, y, v in _visibility_cases(range(8), occluders=1.0):
        if v == 1:
            assert s.instances[int(y), int(x)] != own
            v1 += 1
    assert v1 > 0


def test_off_image_keypoints_are_unlabelled():
    cut = 0
    for seed in range(10):
        s = generate_scene(seed, 128, (2, 8), max_height=2.0)
        kp = s.keypoints
        lab = kp[..., 2] > 0
        assert np.all((kp[lab, 0] >= 0) & (kp[lab, 0] < 128))
        assert np.all((kp[lab, 1] >= 0) & (kp[lab, 1] < 128))
        assert np.all(kp[~lab] == 0)
        cut += int((~lab).sum())
    assert cut > 0


def test_crowd_of_thirty():
    s = generate_scene(5, 256, (30, 30))
    assert 15 <= s.num_people <= 30  # a few may be fully hidden and are dropped
    assert (s.keypoints[..., 2] == 1).any(axis=1).mean() > 0.3


def test_empty_scene_has_clutter_but_no_people():
    s = generate_scene(2, 128, (0, 0))
    assert s.num_people == 0 and s.keypoints.shape == (0, 17, 3)
    assert not s.instances.any() and not s.parts.any()


def test_stream_is_indexable_and_repeatable():
    stream = SceneStream(7, 128, (1, 3), count=3)
    scenes = list(stream)
    assert len(scenes) == len(stream) == 3
    assert _same(scenes[1], stream[1])
    assert not np.array_equal(scenes[0].image, scenes[1].image)
    with pytest.raises(IndexError):
        stream[3]


@pytest.mark.parametrize(
    "kwargs",
    [{"people": (5, 2)}, {"people": "many"}, {"colour": True}, {"families": ("fly",)}],
)
def test_bad_arguments_are_value_errors(kwargs):
    with pytest.raises(ValueError):
        generate_scene(0, 128, **kwargs)


def test_background_photos_are_used(tmp_path):
    colour = (30, 200, 10)  # RGB
    photo = np.full((50, 80, 3), colour[::-1], np.uint8)  # stored as BGR
    cv2.imwrite(str(tmp_path / "a.png"), photo)
    plain = dict(backgrounds=str(tmp_path), degrade=0.0, clutter=False, occluders=0.0)
    hits = 0
    for seed in range(4):
        s = generate_scene(seed, 96, (1, 2), **plain)
        background = s.image[s.instances == 0]
        hits += bool(np.all(np.median(background, axis=0) == colour))
    assert hits >= 2  # photos are used for most scenes
    with pytest.raises(ValueError):
        generate_scene(0, 96, backgrounds=str(tmp_path / "missing"))
