"""Augmentations keep ground truth exact: labels under every keypoint survive."""

import numpy as np
import pytest

from configs import body, load_config
from configs.records import Scene
from trainers.augment import (
    augment,
    color_jitter,
    hflip,
    person_zoom,
    random_affine,
    resize_to_input,
    warp,
)

NAMES = body()["keypoints"]
LW, RW = NAMES.index("left_wrist"), NAMES.index("right_wrist")
LEFT_HAND, RIGHT_HAND = 8, 9  # fine taxonomy
BLOCK = 4  # half-size of the label block drawn around each keypoint


def _scene(height: int = 96, width: int = 96) -> Scene:
    """Three people; each keypoint sits at the centre of a block of its person.

    The wrists' blocks are the hand parts of the same side, so a flip that forgets to
    swap names or parts puts a left wrist on a right hand.
    """
    rng = np.random.default_rng(0)
    parts = np.zeros((height, width), np.uint8)
    inst = np.zeros((height, width), np.uint16)
    kps = np.zeros((3, 17, 3), np.float32)
    cols = np.linspace(12, width - 12, 3)
    for k in range(3):
        for kind, (dx, dy) in [(LW, (-6, 0)), (RW, (6, 0)), (0, (0, -20))]:
            x, y = int(cols[k] + dx), int(height / 2 + dy)
            part = {LW: LEFT_HAND, RW: RIGHT_HAND}.get(kind, 2)
            parts[y - BLOCK : y + BLOCK + 1, x - BLOCK : x + BLOCK + 1] = part
            inst[y - BLOCK : y + BLOCK + 1, x - BLOCK : x + BLOCK + 1] = k + 1
            kps[k, kind] = (x + 0.5, y + 0.5, 2 if kind != 0 else 1)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    ignore = np.zeros((height, width), bool)
    ignore[:6] = True
    return Scene(image, parts, inst, kps, np.array([10, 11, 12]), "fine", ignore)


def _assert_labels_under_keypoints(scene: Scene) -> None:
    """Each labelled keypoint lies on its own person and on the part of its side."""
    assert scene.instances.max() == scene.num_people
    for k in range(scene.num_people):
        for kind in np.flatnonzero(scene.keypoints[k, :, 2] >= 1):
            x, y = scene.keypoints[k, kind, :2].astype(int)
            assert scene.instances[y, x] == k + 1
            want = {LW: LEFT_HAND, RW: RIGHT_HAND}.get(int(kind), 2)
            assert scene.parts[y, x] == want
    off = scene.keypoints[..., 2] == 0
    assert not scene.keypoints[off].any()


def test_flip_swaps_sides_and_is_an_involution():
    scene = _scene()
    flipped = hflip(scene)
    _assert_labels_under_keypoints(flipped)
    # The left wrist of person 0 is its old right wrist, mirrored: x -> 96 - x.
    assert flipped.keypoints[0, LW, 0] == pytest.approx(96 - scene.keypoints[0, RW, 0])
    back = hflip(flipped)
    for field in ("image", "parts", "instances", "keypoints", "track_ids", "ignore"):
        np.testing.assert_array_equal(getattr(back, field), getattr(scene, field))


@pytest.mark.parametrize("seed", range(6))
def test_random_affine_keeps_labels_exact(seed):
    scene = _scene(80, 120)
    out = random_affine(scene, np.random.default_rng(seed), 64)
    assert out.image.shape == (64, 64, 3) and out.parts.shape == (64, 64)
    assert out.ignore.shape == (64, 64)
    _assert_labels_under_keypoints(out)
    # Survivors keep their own track ids and keypoint count order.
    assert set(out.track_ids) <= {10, 11, 12}
    assert list(out.track_ids) == sorted(out.track_ids)


def test_random_affine_is_seeded():
    scene = _scene()
    a = random_affine(scene, np.random.default_rng(1), 64)
    b = random_affine(scene, np.random.default_rng(1), 64)
    c = random_affine(scene, np.random.default_rng(2), 64)
    np.testing.assert_array_equal(a.image, b.image)
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize("seed", range(6))
def test_person_zoom_makes_one_person_fill_the_input(seed):
    """A person of a 240 px image (three blocks, 29 x 21 px) comes out spanning the
    asked share of a 64 px input (within the rotation's growth of its box), wholly
    inside, labels exact."""
    scene = _scene(240, 240)
    rng = np.random.default_rng(seed)
    out = person_zoom(scene, rng, 64, (0.6, 0.9), 10.0)
    _assert_labels_under_keypoints(out)
    chosen = int(np.random.default_rng(seed).integers(3))
    k = list(out.track_ids).index(10 + chosen)
    ys, xs = np.nonzero(out.instances == k + 1)
    span = max(xs.max() - xs.min(), ys.max() - ys.min()) + 1
    assert 0.6 * 64 - 2 <= span <= 0.9 * 64 * 1.2 + 2
    # wholly inside: every labelled joint of the person survives the crop
    seen = (out.keypoints[k, :, 2] > 0).sum()
    assert seen == (scene.keypoints[chosen, :, 2] > 0).sum()


def test_person_zoom_off_leaves_the_draws_unchanged():
    """person_zoom 0 draws nothing extra: the old augmentation, draw for draw."""
    cfg = load_config()
    cfg["input_size"] = 64
    a = augment(_scene(), np.random.default_rng(3), cfg)
    rng = np.random.default_rng(3)
    flip = rng.random() < cfg["augment"]["flip"]
    scene = hflip(_scene()) if flip else _scene()
    b = random_affine(scene, rng, 64, tuple(cfg["augment"]["scale"]), 10.0)
    np.testing.assert_array_equal(a.parts, b.parts)
    cfg["augment"]["person_zoom"] = 1.0
    c = augment(_scene(), np.random.default_rng(3), cfg)
    assert not np.array_equal(a.parts, c.parts)


def test_people_leaving_are_dropped_and_renumbered():
    scene = _scene()
    # Shift left by 40 px: person 0 (x ~ 6..18) leaves, persons 1 and 2 stay.
    out = warp(scene, np.array([[1.0, 0, -40], [0, 1, 0]]), 96)
    assert out.num_people == 2
    assert list(out.track_ids) == [11, 12]
    assert set(np.unique(out.instances)) == {0, 1, 2}
    np.testing.assert_allclose(
        out.keypoints[0, 0, :2], scene.keypoints[1, 0, :2] - [40, 0]
    )
    _assert_labels_under_keypoints(out)
    # Shift by 46 px: person 1's left wrist block (x ~ 37..46) leaves, the rest stays.
    out = warp(scene, np.array([[1.0, 0, -46], [0, 1, 0]]), 96)
    assert out.keypoints[0, LW].tolist() == [0.0, 0.0, 0.0]
    assert out.keypoints[0, RW, 2] == 2


def test_color_jitter_changes_only_colours():
    scene = _scene()
    rng = np.random.default_rng(0)
    jittered = color_jitter(scene.image, rng, 0.3)
    assert jittered.shape == scene.image.shape and jittered.dtype == np.uint8
    assert not np.array_equal(jittered, scene.image)
    np.testing.assert_array_equal(color_jitter(scene.image, rng, 0.0), scene.image)


def test_color_jitter_matches_the_three_steps():
    # Brightness, then contrast around the mean, then saturation around the luma grey.
    image = _scene().image
    b, c, s = np.random.default_rng(5).uniform(0.7, 1.3, size=3)
    x = image.astype(np.float64) * b
    x = (x - x.mean()) * c + x.mean()
    grey = x @ [0.299, 0.587, 0.114]
    x = (x - grey[..., None]) * s + grey[..., None]
    want = np.clip(np.round(x), 0, 255)
    got = color_jitter(image, np.random.default_rng(5), 0.3).astype(np.float64)
    assert np.abs(got - want).max() <= 1


def test_augment_uses_config():
    cfg = load_config()
    cfg["input_size"] = 64
    for seed in range(4):
        out = augment(_scene(), np.random.default_rng(seed), cfg)
        assert out.image.shape == (64, 64, 3)
        _assert_labels_under_keypoints(out)


def test_resize_to_input_letterboxes():
    scene = _scene(60, 120)
    out = resize_to_input(scene, 64)
    # Scale 64 / 120: the image fills rows 0..31, the rest is padding.
    assert out.image.shape == (64, 64, 3)
    assert not out.image[33:].any() and not out.instances[33:].any()
    np.testing.assert_allclose(
        out.keypoints[..., :2],
        scene.keypoints[..., :2] * 64 / 120,
        rtol=1e-5,
        atol=1e-4,
    )
    assert out.num_people == 3
    _assert_labels_under_keypoints(out)
    assert out.ignore[:3].all() and not out.ignore[4:].any()


@pytest.mark.parametrize("seed", [0, 1])
def test_generated_scenes_stay_consistent(seed):
    from trainers.synth import generate_scene

    cfg = load_config()
    cfg["input_size"] = 96
    scene = generate_scene(seed, 128, (4, 8))
    out = augment(scene, np.random.default_rng(seed), cfg)
    counts = np.bincount(out.instances.ravel(), minlength=out.num_people + 1)
    assert len(counts) == out.num_people + 1 and (counts[1:] > 0).all()
    assert len(out.track_ids) == out.num_people
    assert set(out.track_ids) <= set(scene.track_ids)
    back = hflip(hflip(scene))
    np.testing.assert_array_equal(back.parts, scene.parts)
    np.testing.assert_allclose(back.keypoints, scene.keypoints, atol=1e-4)  # float32
