"""Targets against plain per-cell reference computations on hand-made scenes."""

import copy

import numpy as np
import pytest
import torch

from configs import body, load_config, taxonomy
from configs.constants import DSPF_STRIDES
from configs.records import Scene
from trainers.targets import encode, encode_batch

SIZE = 64
CFG = copy.deepcopy(load_config())
CFG["input_size"] = SIZE
R = CFG["targets"]["disk_radius"]
SIGMA = CFG["targets"]["limb_sigma"]
N_CLASSES = len(taxonomy(CFG["model"]["taxonomy"])["classes"])
LIMBS = body()["limbs"] + body()["redundant_limbs"]


def _random_scene(seed: int, people: int = 4) -> Scene:
    """Overlapping rectangles as people, keypoints scattered in and around them."""
    rng = np.random.default_rng(seed)
    parts = np.zeros((SIZE, SIZE), np.uint8)
    inst = np.zeros((SIZE, SIZE), np.uint16)
    kps = np.zeros((people, 17, 3), np.float32)
    for k in range(people):
        x0, y0 = rng.integers(0, SIZE - 16, 2)
        w, h = rng.integers(8, 30, 2)
        inst[y0 : y0 + h, x0 : x0 + w] = k + 1
        parts[y0 : y0 + h, x0 : x0 + w] = rng.integers(1, 16)
        kps[k, :, 0] = rng.uniform(x0 - 4, x0 + w + 4, 17)
        kps[k, :, 1] = rng.uniform(y0 - 4, y0 + h + 4, 17)
        kps[k, :, 2] = rng.choice([0, 1, 2], 17, p=[0.3, 0.2, 0.5])
    kps[kps[..., 2] == 0] = 0
    image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    return Scene(image, parts, inst, kps, np.arange(people))


def _blank_scene(inst: np.ndarray, kps: np.ndarray) -> Scene:
    """A black, all-background-parts scene of instance map `inst`, one person a row
    of `kps`."""
    people = np.arange(len(kps), dtype=np.int64)
    return Scene(
        np.zeros((SIZE, SIZE, 3), np.uint8),
        np.zeros_like(inst, np.uint8),
        inst,
        kps,
        people,
    )


def _cells(stride: int):
    n = SIZE // stride
    for i in range(n):
        for j in range(n):
            yield i, j, (j + 0.5) * stride, (i + 0.5) * stride


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_keypoint_disks_and_offsets_match_reference(seed):
    scene = _random_scene(seed)
    t = encode(scene, CFG)
    heat = np.zeros((17, 16, 16), np.float32)
    off = np.zeros((17, 2, 16, 16), np.float32)
    for kind in range(17):
        pts = scene.keypoints[scene.keypoints[:, kind, 2] >= 1, kind, :2]
        for i, j, cx, cy in _cells(4):
            if len(pts) == 0:
                continue
            dist = np.hypot(pts[:, 0] - cx, pts[:, 1] - cy)
            n = int(np.argmin(dist))
            if dist[n] <= R:
                heat[kind, i, j] = 1
                off[kind, :, i, j] = (pts[n, 0] - cx) / 4, (pts[n, 1] - cy) / 4
    assert heat.sum() > 50
    np.testing.assert_array_equal(t["heatmap"], heat)
    np.testing.assert_array_equal(t["offset_mask"], heat)
    np.testing.assert_allclose(t["offsets"], off, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 3])
def test_limbs_match_reference_gaussians(seed):
    scene = _random_scene(seed)
    t = encode(scene, CFG)
    ref = np.zeros((len(LIMBS), 16, 16))
    for c, (a, b) in enumerate(LIMBS):
        for p in scene.keypoints:
            if p[a, 2] < 1 or p[b, 2] < 1:
                continue
            mid, vec = (p[a, :2] + p[b, :2]) / 2, p[b, :2] - p[a, :2]
            length = np.linalg.norm(vec)
            u = vec / length
            major = max(length / 2, SIGMA)
            for i, j, cx, cy in _cells(4):
                r = np.array([cx, cy]) - mid
                along, across = r @ u, r[0] * u[1] - r[1] * u[0]
                g = np.exp(-0.5 * ((along / major) ** 2 + (across / SIGMA) ** 2))
                ref[c, i, j] = max(ref[c, i, j], g)
    # Exact down to the documented 1e-3 cut.
    np.testing.assert_allclose(t["limbs"], ref, atol=1e-3)
    big = ref >= 1e-3
    np.testing.assert_allclose(t["limbs"][big], ref[big], rtol=1e-5)
    assert big.sum() > 100


def test_limb_shape_along_and_across():
    # One vertical limb nose (30, 10) -> left eye (30, 42): length 32, major sigma 16,
    # midpoint (30, 26) = centre of cell (6, 7). The peak is 1, the ends exp(-1/2).
    kps = np.zeros((1, 17, 3), np.float32)
    kps[0, 0] = (30, 10, 2)
    kps[0, 1] = (30, 42, 2)
    inst = np.zeros((SIZE, SIZE), np.uint16)
    inst[8:44, 26:34] = 1
    scene = _blank_scene(inst, kps)
    limbs = encode(scene, CFG)["limbs"]
    assert limbs[0, 6, 7] == pytest.approx(1.0)
    assert limbs[0, 2, 7] == pytest.approx(np.exp(-0.5), rel=1e-5)  # end (30, 10)
    assert limbs[0, 6, 8] == pytest.approx(np.exp(-0.5 * (4 / SIGMA) ** 2), rel=1e-5)
    assert limbs[1:].max() == 0.0  # only limb 0 has both ends labelled


@pytest.mark.parametrize("seed", [0, 4])
def test_dspf_matches_reference(seed):
    scene = _random_scene(seed)
    t = encode(scene, CFG)
    for s in DSPF_STRIDES:
        n = SIZE // s
        field = np.zeros((2, n, n), np.float32)
        mask = np.zeros((n, n), np.float32)
        for i, j, cx, cy in _cells(s):
            k = int(scene.instances[int(cy), int(cx)]) - 1
            if k < 0:
                continue
            own = scene.keypoints[k][scene.keypoints[k, :, 2] >= 1, :2]
            if len(own) == 0:
                continue
            p = own[np.argmin(np.hypot(own[:, 0] - cx, own[:, 1] - cy))]
            field[:, i, j] = (p[0] - cx) / s, (p[1] - cy) / s
            mask[i, j] = 1
        np.testing.assert_allclose(t[f"dspf_{s}"], field, atol=1e-5)
        np.testing.assert_array_equal(t[f"dspf_mask_{s}"], mask)
        assert mask.any()


def test_dspf_points_to_its_own_person_not_the_nearest_joint():
    # Person 1 fills the left half, person 2 the right half. Person 2's nose sits just
    # across the border; person 1's only joint is far away on the left.
    inst = np.zeros((SIZE, SIZE), np.uint16)
    inst[:, :32] = 1
    inst[:, 32:] = 2
    kps = np.zeros((2, 17, 3), np.float32)
    kps[0, 9] = (2, 30, 1)
    kps[1, 0] = (33, 30, 2)
    scene = _blank_scene(inst, kps)
    t = encode(scene, CFG)
    # Cell (7, 7) is person 1 at (30, 30): its target is (2, 30), not (33, 30).
    np.testing.assert_allclose(t["dspf_4"][:, 7, 7], [(2 - 30) / 4, 0])
    np.testing.assert_allclose(t["dspf_4"][:, 7, 8], [(33 - 34) / 4, 0])


def test_soft_joint_disk_has_its_height_and_offsets_and_no_limbs():
    """v in (0, 1) (a teacher's unsure joint): a disk of height v with offsets, the
    same cells as a labelled one; limbs and DSPF ignore it."""
    inst = np.zeros((SIZE, SIZE), np.uint16)
    inst[10:50, 20:40] = 1
    kps = np.zeros((1, 17, 3), np.float32)
    kps[0, 5] = (30.0, 20.0, 2.0)  # left shoulder, labelled
    kps[0, 7] = (26.0, 33.0, 0.5)  # left elbow, soft
    soft = encode(_blank_scene(inst, kps), CFG)
    kps[0, 7, 2] = 2.0
    full = encode(_blank_scene(inst, kps), CFG)
    np.testing.assert_allclose(soft["heatmap"][7], 0.5 * full["heatmap"][7])
    assert soft["heatmap"][7].max() == 0.5
    on = full["heatmap"][7] > 0
    np.testing.assert_allclose(soft["offsets"][7][:, on], full["offsets"][7][:, on])
    assert not soft["limbs"].any() and full["limbs"].any()


def test_person_without_labelled_joints_is_unsupervised():
    scene = _random_scene(5)
    scene.keypoints[1] = 0
    t = encode(scene, CFG)
    for s in DSPF_STRIDES:
        cells = scene.instances[s // 2 :: s, s // 2 :: s] == 2
        assert not t[f"dspf_mask_{s}"][cells].any()
        assert not t[f"dspf_{s}"][:, cells].any()


def test_label_maps_ignore_and_keypoints():
    scene = _random_scene(6)
    scene.ignore = np.zeros((SIZE, SIZE), bool)
    scene.ignore[:, :20] = True
    t = encode(scene, CFG)
    centre = scene.parts[2::4, 2::4].astype(np.int64)
    assert t["parts"].dtype == np.int64 and t["instances"].dtype == np.int64
    np.testing.assert_array_equal(t["instances"], scene.instances[2::4, 2::4])
    # Columns 0..4 have centres 2..18 (< 20): ignored; column 5 (22) is not.
    np.testing.assert_array_equal(t["parts"][:, :5], 255)
    np.testing.assert_array_equal(t["parts"][:, 5:], centre[:, 5:])
    np.testing.assert_array_equal(t["valid"][:, :5], 0)
    np.testing.assert_array_equal(t["valid"][:, 5:], 1)
    np.testing.assert_array_equal(t["keypoints"], scene.keypoints)


def test_part_shares_are_class_fractions_of_labelled_pixels():
    scene = _random_scene(7)
    scene.parts[:4, :4] = 3  # cell (0, 0): one class
    scene.parts[:4, 4:8] = 1
    scene.parts[:1, 4:8] = 2  # cell (0, 1): a quarter class 2
    scene.parts[:2, 8:12] = 255  # cell (0, 2): half unlabelled, half class 0
    scene.parts[2:4, 8:12] = 0
    scene.ignore = np.zeros((SIZE, SIZE), bool)
    scene.ignore[4:8, :4] = True  # cell (1, 0): all ignored
    shares = encode(scene, CFG)["part_shares"]
    assert shares.shape == (N_CLASSES, SIZE // 4, SIZE // 4)
    assert shares[3, 0, 0] == 1 and shares[2, 0, 1] == 0.25 and shares[1, 0, 1] == 0.75
    assert shares[0, 0, 2] == 1 and not shares[:, 1, 0].any()
    sums = shares.sum(0)
    labelled = (sums > 0).sum()
    np.testing.assert_allclose(sums[sums > 0], 1.0, rtol=1e-6)
    assert labelled == sums.size - 1
    # the shares read back the full-resolution labels: argmax agrees with the centre
    # label wherever a cell holds one class only
    pure = shares.max(0) == 1
    centre = scene.parts[2::4, 2::4]
    np.testing.assert_array_equal(shares.argmax(0)[pure], centre[pure])


def test_shapes_dtypes_and_empty_scene():
    empty = _blank_scene(
        np.zeros((SIZE, SIZE), np.uint16), np.zeros((0, 17, 3), np.float32)
    )
    t = encode(empty, CFG)
    h = SIZE // 4
    shapes = {
        "parts": (h, h),
        "part_shares": (N_CLASSES, h, h),
        "heatmap": (17, h, h),
        "offsets": (17, 2, h, h),
        "offset_mask": (17, h, h),
        "limbs": (len(body()["limb_names"]), h, h),
        "instances": (h, h),
        "valid": (h, h),
        "keypoints": (0, 17, 3),
    }
    for s in DSPF_STRIDES:
        shapes[f"dspf_{s}"] = (2, SIZE // s, SIZE // s)
        shapes[f"dspf_mask_{s}"] = (SIZE // s, SIZE // s)
    assert {k: v.shape for k, v in t.items()} == shapes
    for key, value in t.items():
        if key not in ("parts", "part_shares", "instances", "valid"):
            assert value.dtype == np.float32 and not value.any(), key
    assert (t["part_shares"][0] == 1).all()  # all background


def test_wrong_size_is_a_clear_error():
    scene = _random_scene(0)
    cfg = copy.deepcopy(CFG)
    cfg["input_size"] = 128
    with pytest.raises(ValueError, match="network input"):
        encode(scene, cfg)


def test_encode_batch_stacks_and_pads():
    scenes = [_random_scene(7, people=2), _random_scene(8, people=5)]
    batch = encode_batch(scenes, CFG)
    assert batch["heatmap"].shape == (2, 17, 16, 16)
    assert batch["dspf_32"].shape == (2, 2, 2, 2)
    assert batch["parts"].dtype == torch.int64
    assert batch["keypoints"].shape == (2, 5, 17, 3)
    assert batch["num_people"].tolist() == [2, 5]
    assert not batch["keypoints"][0, 2:].any()
    np.testing.assert_array_equal(batch["keypoints"][1].numpy(), scenes[1].keypoints)
    assert batch["image"].shape == (2, 3, SIZE, SIZE)
    assert batch["image"].dtype == torch.float32
    np.testing.assert_allclose(
        batch["image"][1, 2].numpy(), scenes[1].image[..., 2] / 255.0, rtol=1e-6
    )
    single = encode(scenes[0], CFG)
    np.testing.assert_array_equal(batch["limbs"][0].numpy(), single["limbs"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generated_scenes_encode_consistently(seed):
    from trainers.augment import augment
    from trainers.synth import generate_scene

    cfg = copy.deepcopy(CFG)
    cfg["input_size"] = 256
    scene = augment(generate_scene(seed, 256, (3, 8)), np.random.default_rng(seed), cfg)
    t = encode(scene, cfg)
    kps = scene.keypoints
    # Every labelled in-image keypoint is inside its own disk.
    for k, kind in zip(*np.nonzero(kps[:, :, 2] >= 1), strict=True):
        i, j = (kps[k, kind, 1::-1] // 4).astype(int)
        assert t["heatmap"][kind, i, j] == 1.0
    # DSPF round trip: cell centre + vector lands on a labelled joint of that cell's
    # own person, at every level.
    assert t["dspf_mask_4"].any()
    for s in DSPF_STRIDES:
        rows, cols = np.nonzero(t[f"dspf_mask_{s}"])
        person = scene.instances[rows * s + s // 2, cols * s + s // 2].astype(int) - 1
        end = (
            np.stack([cols + 0.5, rows + 0.5], 1) * s
            + t[f"dspf_{s}"][:, rows, cols].T * s
        )
        own = kps[person]  # N x 17 x 3
        gap = np.linalg.norm(own[:, :, :2] - end[:, None], axis=2)
        gap[own[:, :, 2] < 1] = np.inf
        assert gap.min(axis=1).max() < 1e-3
