"""BodyPix teacher: the decoders on hand-made heads, the real model on COCO samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import configs
from configs.letterbox import Letterbox
from nets.similarity import mask_iou, oks
from trainers.teachers import TeacherError
from trainers.teachers.bodypix import (
    NUM_FINE,
    POSE_CHAIN,
    STRIDE,
    BodyPixTeacher,
    Heads,
    _average_mirror,
    assign_pixels,
    decode_poses,
    default_model_path,
    grow_poses,
    part_conditionals,
    weigh_by_person,
)

SHARED = Path(__file__).resolve().parents[3] / "shared"
COCO = SHARED / "data" / "formats" / "coco" / "test_coco.json"
FINE = configs.taxonomy("fine")["classes"]
BODYPIX = configs.taxonomy("bodypix24")["classes"]

# a standing person, COCO-17 (x, y) in input pixels, 70 px wide and 160 tall
PERSON = np.array(
    [
        [35, 10],
        [40, 5],
        [30, 5],
        [45, 8],
        [25, 8],
        [55, 35],
        [15, 35],
        [60, 65],
        [10, 65],
        [62, 95],
        [8, 95],
        [48, 100],
        [22, 100],
        [50, 135],
        [20, 135],
        [50, 165],
        [20, 165],
    ],
    np.float32,
)


def _heads(people: list[np.ndarray], h: int, w: int, peak: float = 0.9):
    """Exact heads for people (17 x 2 each, x y): each cell points into its nearest
    person (by centroid); each joint has one heatmap peak at its nearest cell."""
    ys, xs = np.mgrid[0:h, 0:w] * STRIDE
    centres = np.array([p.mean(0) for p in people])
    owner = np.argmin(
        (xs[..., None] - centres[:, 0]) ** 2 + (ys[..., None] - centres[:, 1]) ** 2, -1
    )
    scores = np.full((h, w, 17), 0.01, np.float32)
    short = np.zeros((h, w, 34), np.float32)
    mid = np.zeros((h, w, 64), np.float32)
    long = np.zeros((h, w, 34), np.float32)
    for n, person in enumerate(people):
        mine = owner == n
        for k, (x, y) in enumerate(person):
            scores[round(y / STRIDE), round(x / STRIDE), k] = peak
            short[..., k][mine] = (y - ys)[mine]
            short[..., 17 + k][mine] = (x - xs)[mine]
        long[mine] = short[mine]
        for e, (parent, child) in enumerate(POSE_CHAIN):
            for block, target in ((0, child), (32, parent)):
                mid[..., block + e][mine] = (person[target, 1] - ys)[mine]
                mid[..., block + 16 + e][mine] = (person[target, 0] - xs)[mine]
    return scores, short, mid, long


def test_one_peak_and_exact_offsets_give_the_pose():
    person = PERSON + [40, 20]
    scores, short, mid, _ = _heads([person], 14, 10)
    keypoints, person_scores = decode_poses(scores, short, mid)
    assert keypoints.shape == (1, 17, 3) and person_scores.shape == (1,)
    np.testing.assert_allclose(keypoints[0, :, :2], person, atol=1e-3)
    assert (keypoints[0, :, 2] > 0.1).all() and person_scores[0] > 0.15
    # grown from an ankle: up the leg to the nose by the backward offsets, then down
    ankle = 15
    pos, _ = grow_poses(scores, short, mid, person[[ankle], ::-1], np.array([ankle]))
    np.testing.assert_allclose(pos[0, :, ::-1], person, atol=1e-3)


def test_two_separated_people_give_two_poses():
    left, right = PERSON + [20, 20], PERSON + [200, 30]
    scores, short, mid, long = _heads([left, right], 14, 20)
    keypoints, person_scores = decode_poses(scores, short, mid)
    assert len(keypoints) == 2 and (np.diff(person_scores) <= 0).all()
    found = keypoints[np.argsort(keypoints[:, 0, 0]), :, :2]
    np.testing.assert_allclose(found[0], left, atol=1e-3)
    np.testing.assert_allclose(found[1], right, atol=1e-3)
    # pixels of each person follow the long offsets to their own person
    points = np.array([[60, 50], [150, 40], [70, 240], [90, 220]], np.float32)  # y x
    owners = assign_pixels(long, points, keypoints)
    person_of = {0: int(keypoints[0, 0, 0] > 100), 1: int(keypoints[1, 0, 0] > 100)}
    assert [person_of[o] for o in owners] == [0, 0, 1, 1]
    # ... and no one's, when the people they point to are far from every decoded one
    far = keypoints.copy()
    far[..., :2] += 400
    assert (assign_pixels(long, points, far) == -1).all()


def test_no_peak_no_person_and_no_person_no_owner():
    scores, short, mid, long = _heads([PERSON + [40, 20]], 14, 10, peak=0.05)
    keypoints, person_scores = decode_poses(scores, short, mid)
    assert keypoints.shape == (0, 17, 3) and person_scores.shape == (0,)
    assert (assign_pixels(long, np.zeros((3, 2), np.float32), keypoints) == -1).all()


def test_parts_merge_front_and_back_and_sum_to_one():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 5, 24)).astype(np.float32)
    cond = part_conditionals(logits)
    assert cond.shape == (NUM_FINE - 1, 4, 5)
    np.testing.assert_allclose(cond.sum(0), 1, atol=1e-5)
    assert np.all(cond[FINE.index("hair") - 1] == 0)
    # torso front and back, equally sure, are one torso class
    logits = np.zeros((1, 1, 24), np.float32)
    logits[..., BODYPIX.index("torso_front") - 1] = 20
    logits[..., BODYPIX.index("torso_back") - 1] = 20
    assert part_conditionals(logits)[FINE.index("torso") - 1, 0, 0] > 0.999
    logits = np.zeros((1, 1, 24), np.float32)
    logits[..., BODYPIX.index("right_lower_leg_back") - 1] = 20
    assert part_conditionals(logits)[FINE.index("right_lower_leg") - 1, 0, 0] > 0.999
    probs = np.zeros((NUM_FINE, 4, 5), np.float32)
    probs[1:] = part_conditionals(rng.normal(size=(4, 5, 24)).astype(np.float32))
    person = rng.uniform(size=(4, 5)).astype(np.float32)
    weigh_by_person(probs, person)
    np.testing.assert_allclose(probs.sum(0), 1, atol=1e-5)
    np.testing.assert_allclose(probs[0], 1 - person)


def test_mirror_average_of_a_mirror_symmetric_answer_changes_nothing():
    # heads of an image and of its mirror that agree: flipping the mirror's grid back
    # and swapping its left and right parts must give the image's own heads
    rng = np.random.default_rng(1)
    h, w = 5, 7
    box = Letterbox(width=97, height=65, size=112, new_w=16 * (w - 1) + 1, new_h=65)
    heads = Heads(
        *(rng.normal(size=(h, w, c)).astype(np.float32) for c in (17, 34, 64, 34)),
        segment=rng.normal(size=(h, w)).astype(np.float32),
        parts=rng.normal(size=(h, w, 24)).astype(np.float32),
    )
    swap = np.asarray(configs.taxonomy("bodypix24")["flip"][1:]) - 1
    mirrored = Heads(
        heads.heatmaps,
        heads.short,
        heads.mid,
        heads.long,
        segment=heads.segment[:, ::-1].copy(),
        parts=heads.parts[:, ::-1][..., swap].copy(),
    )
    segment, parts = heads.segment.copy(), heads.parts.copy()
    _average_mirror(heads, mirrored, box)
    np.testing.assert_allclose(heads.segment, segment, atol=1e-5)
    np.testing.assert_allclose(heads.parts, parts, atol=1e-5)
    left = BODYPIX.index("left_hand") - 1
    assert swap[left] == BODYPIX.index("right_hand") - 1


def test_bodypix_taxonomy_flips_as_fine():
    table = configs.mapping("bodypix24", "fine")
    flip = configs.taxonomy("bodypix24")["flip"]
    fine_flip = configs.taxonomy("fine")["flip"]
    assert len(table) == len(flip) == len(BODYPIX) == 25
    assert all(fine_flip[table[i]] == table[flip[i]] for i in range(25))
    for i, name in enumerate(BODYPIX[1:], start=1):
        fine_name = FINE[table[i]]
        assert (
            fine_name.split("_")[0] == name.split("_")[0]
            or "face" in name
            or name.startswith("torso")
        )


def test_missing_or_corrupt_model_is_one_clear_error(tmp_path, monkeypatch):
    with pytest.raises(TeacherError, match="not found"):
        BodyPixTeacher(tmp_path / "none.tflite")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer" * 10)
    with pytest.raises(TeacherError, match="cannot read"):
        BodyPixTeacher(bad)
    monkeypatch.setenv("PARTSTREAM_MODELS", str(tmp_path))
    assert default_model_path().is_relative_to(tmp_path)
    with pytest.raises(TeacherError, match="multiple of 16"):
        BodyPixTeacher(bad, size=250)


needs_shared = pytest.mark.skipif(
    not COCO.exists() or not default_model_path().exists(),
    reason="../shared (BodyPix model and COCO samples) is not beside the repository",
)


@pytest.fixture(scope="module")
def teacher():
    return BodyPixTeacher()


@pytest.fixture(scope="module")
def coco_run(teacher):
    from trainers.datasets.coco import CocoDataset

    scenes = CocoDataset(COCO, parts="none")
    return [(scene, teacher(scene.image)) for scene in scenes]


@needs_shared
def test_real_model_output_contract(coco_run, teacher):
    scene, out = coco_run[0]
    height, width = scene.image.shape[:2]
    assert out.keypoints.dtype == np.float32 and out.keypoints.shape[1:] == (17, 3)
    assert out.instances.shape == (height, width) and out.instances.dtype == np.uint16
    assert out.instances.max() <= out.num_people
    assert out.part_probs.shape == (NUM_FINE, height, width)
    np.testing.assert_allclose(out.part_probs.sum(0), 1, atol=1e-4)
    # a black image: nobody (measured: background >= 0.94 everywhere)
    empty = teacher(np.zeros((120, 200, 3), np.uint8))
    assert empty.num_people == 0 and not empty.instances.any()
    assert empty.part_probs[0].min() > 0.85


@needs_shared
def test_real_model_finds_the_coco_people(coco_run):
    # measured at 640: 11 of the 12 labelled people at OKS > 0.5; people masks 0.82
    # IoU over the 4 images; a labelled person's best instance 0.76 IoU on average
    matched = labelled = inter = union = 0
    best_ious = []
    for scene, out in coco_run:
        found = scene.keypoints[:, :, 2].sum(1) > 0
        gt = scene.keypoints[found]
        areas = np.array(
            [(scene.instances == k + 1).sum() for k in np.flatnonzero(found)],
            np.float32,
        )
        pred = out.keypoints.copy()
        pred[..., 2] = 1  # COCO's OKS counts every labelled joint
        if out.num_people:
            matched += int((oks(gt, pred, areas[:, None]).max(1) > 0.5).sum())
            masks = [scene.instances == k + 1 for k in np.flatnonzero(found)]
            best_ious += mask_iou(masks, out.instances, out.num_people).max(1).tolist()
        labelled += len(gt)
        inter += ((scene.instances > 0) & (out.instances > 0)).sum()
        union += ((scene.instances > 0) | (out.instances > 0)).sum()
    assert labelled == 12
    assert matched >= 9
    assert inter / union > 0.75
    assert np.mean(best_ious) > 0.68


@needs_shared
def test_real_model_left_is_the_persons_left(coco_run):
    # each decoded left joint lies nearer the labelled left joint than the right one
    # (measured: 47 of the 49 joints within 20 px of a labelled one)
    votes = []
    for scene, out in coco_run:
        for person in out.keypoints:
            for left in (5, 7, 9, 11, 13, 15):
                for gt in scene.keypoints:
                    if gt[left, 2] == 0 or gt[left + 1, 2] == 0:
                        continue
                    own = np.hypot(*(person[left, :2] - gt[left, :2]))
                    other = np.hypot(*(person[left, :2] - gt[left + 1, :2]))
                    if min(own, other) < 20:
                        votes.append(own < other)
    assert len(votes) > 40 and np.mean(votes) > 0.85


CIHP = SHARED / "data" / "formats" / "cihp"


@needs_shared
def test_real_model_parts_on_cihp(teacher):
    # CIHP's arms and legs are the person's own left and right, as BodyPix's parts;
    # measured at 640 over the 5 samples: 94 % of the limb pixels on the same side
    # (84 % without averaging with the mirror image); IoU head 0.75 and torso 0.50
    # (pascal6 mapping)
    import cv2

    cihp = configs.taxonomy("cihp20")["classes"]
    to_coarse = np.array(configs.mapping("fine", "pascal6"))
    gt_coarse = np.array(configs.mapping("cihp20", "pascal6"))
    same = other = 0
    inter, union = np.zeros(3), np.zeros(3)
    for path in sorted((CIHP / "images").glob("*.jpg")):
        image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        label = cv2.imread(str(CIHP / "labels" / f"{path.stem}.png"), 0)
        probs = teacher(image).part_probs
        fine = np.where(probs[0] < 0.5, 1 + probs[1:].argmax(0), 0)
        names = np.array(FINE)[fine]
        for side, flip in (("left", "right"), ("right", "left")):
            mine = np.char.startswith(names, side)
            for limb in ("arm", "leg"):
                same += (mine & (label == cihp.index(f"{side}_{limb}"))).sum()
                other += (mine & (label == cihp.index(f"{flip}_{limb}"))).sum()
        pred, gt = to_coarse[fine], gt_coarse[label]
        for c in range(3):  # background, head, torso
            inter[c] += ((pred == c) & (gt == c)).sum()
            union[c] += (((pred == c) | (gt == c)) & (gt != 255)).sum()
    assert same / (same + other) > 0.88
    iou = inter / union
    assert iou[1] > 0.65 and iou[2] > 0.4
