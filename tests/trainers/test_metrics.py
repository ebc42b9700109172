"""Metrics on hand-made cases whose numbers are worked out in the comments."""

import numpy as np
import pytest

from configs.records import Prediction, Scene
from trainers.metrics import evaluate, miou, oks_ap, part_ap, region_ap

SIZE = 20


def _scene(
    people: list[dict[int, list[int]]], ignore: np.ndarray | None = None
) -> Scene:
    """people[k] maps part id -> image rows it fills (columns 0..9 of person k's half).

    Person 0 owns columns 0..9, person 1 columns 10..19, so part areas are 10 px a row.
    Each person has a visible left shoulder (index 5) at the centre of its first row.
    """
    parts = np.zeros((SIZE, SIZE), np.uint8)
    inst = np.zeros((SIZE, SIZE), np.uint16)
    kps = np.zeros((len(people), 17, 3), np.float32)
    for k, person in enumerate(people):
        cols = slice(10 * k, 10 * k + 10)
        for part, rows in person.items():
            for r in rows:
                parts[r, cols] = part
                inst[r, cols] = k + 1
        first = min(r for rows in person.values() for r in rows)
        kps[k, 5] = (10 * k + 5.0, first + 0.5, 2)
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    return Scene(image, parts, inst, kps, np.arange(len(people)), "fine", ignore)


def _perfect(scene: Scene, scores: list[float]) -> Prediction:
    kps = scene.keypoints.copy()
    kps[..., 2] = (kps[..., 2] > 0).astype(np.float32)
    return Prediction(
        scene.parts.astype(np.int64),
        scene.instances.astype(np.int64),
        kps,
        np.array(scores, np.float32),
    )


def _empty() -> Prediction:
    zeros = np.zeros((SIZE, SIZE), np.int64)
    return Prediction(
        zeros, zeros.copy(), np.zeros((0, 17, 3), np.float32), np.zeros(0, np.float32)
    )


TWO = [{1: [0, 1], 3: [2, 3, 4]}, {3: [6, 7], 4: [8, 9, 10]}]
# Every instance-level score `evaluate` reports (the category-level one is mIoU).
AP_KEYS = ("APp50", "APpvol", "PCP50", "APr50", "APr60", "APr70", "APrvol", "OKS_AP")


def test_perfect_prediction_scores_one_everywhere():
    gts = [_scene(TWO), _scene([{1: [3], 4: [4, 5]}])]
    preds = [_perfect(gts[0], [0.9, 0.8]), _perfect(gts[1], [0.7])]
    out = evaluate(preds, gts)
    for key in ("mIoU", *AP_KEYS):
        assert out[key] == pytest.approx(1.0), key
    assert set(out["per_class_iou"]) == {
        "background",
        "hair",
        "torso",
        "left_upper_arm",
    }
    assert all(v == pytest.approx(1.0) for v in out["per_class_iou"].values())


def test_empty_prediction_scores_zero():
    gt = _scene(TWO)
    out = evaluate([_empty()], [gt])
    for key in AP_KEYS:
        assert out[key] == 0.0, key
    # Everything predicted background: every part class has IoU 0 and background's IoU
    # is its GT share, 400 - 100 person px = 300 of 400 -> 0.75; mean over 4 classes.
    per_class = out["per_class_iou"]
    assert per_class.pop("background") == pytest.approx(0.75)
    assert set(per_class.values()) == {0.0}
    assert out["mIoU"] == pytest.approx(0.75 / 4)


def test_instance_ids_can_be_permuted():
    # Three predicted people of different quality: permuting the ids of predictions
    # (with their scores and keypoints) and of ground-truth people changes nothing.
    gt = _scene([{1: [0, 1], 3: [2, 3]}, {3: [5, 6], 4: [7, 8]}])
    pred = _perfect(gt, [0.6, 0.9])
    pred.parts[7, 10:20] = 5  # person 2 partly wrong
    # A spurious third person (hair): nearest to GT person 0, whose classes it shares.
    pred.instances[15:17, 0:6] = 3
    pred.parts[15:17, 0:6] = 1
    pred.keypoints = np.concatenate([pred.keypoints, np.zeros((1, 17, 3), np.float32)])
    pred.keypoints[1, 5, 0] += 1.5
    pred.scores = np.array([0.6, 0.9, 0.7], np.float32)
    base = evaluate([pred], [gt])

    order = np.array([2, 0, 1])  # new person k is old person order[k]
    lut = np.zeros(4, np.int64)
    lut[order + 1] = np.arange(1, 4)
    moved = Prediction(
        pred.parts, lut[pred.instances], pred.keypoints[order], pred.scores[order]
    )
    swapped = Scene(
        gt.image,
        gt.parts,
        np.array([0, 2, 1], np.uint16)[gt.instances],
        gt.keypoints[::-1].copy(),
        gt.track_ids[::-1].copy(),
    )
    again = evaluate([moved], [swapped])
    assert 0.0 < base["APpvol"] < 1.0 and 0.0 < base["OKS_AP"] < 1.0
    assert again.pop("per_class_iou") == pytest.approx(base.pop("per_class_iou"))
    assert again == pytest.approx(base)


def test_one_person_half_right():
    # GT: hair (1) on row 0, torso (3) on row 1, left upper arm (4) on row 2: 30 px.
    # Prediction: the same person, but row 2 says right upper arm (5).
    gt = _scene([{1: [0], 3: [1], 4: [2]}])
    pred = _perfect(gt, [1.0])
    pred.parts[2, :10] = 5
    # MHP part-IoU over classes in either map: background 370/370 = 1, hair 1,
    # torso 1, arm-left 0/10, arm-right 0/10 -> 3/5 = 0.6. A true positive at
    # thresholds 0.1..0.5 (0.6 > t), a false positive at 0.6..0.9:
    # APp50 = 1, APpvol = 5/9. PCP50: 2 of the 3 GT parts have IoU > 0.5 -> 2/3.
    out = part_ap([pred], [gt])
    assert out["APp50"] == pytest.approx(1.0)
    assert out["APpvol"] == pytest.approx(5 / 9)
    assert out["PCP50"] == pytest.approx(2 / 3)
    # AP^r: classes with GT regions are hair (AP 1), torso (1), left arm (0: no
    # prediction); right arm has no GT and is left out -> 2/3 at every threshold.
    assert region_ap([pred], [gt]) == pytest.approx(
        {"APr50": 2 / 3, "APr60": 2 / 3, "APr70": 2 / 3, "APrvol": 2 / 3}
    )
    # mIoU over background, hair, torso, left arm, right arm: (1 + 1 + 1 + 0 + 0) / 5.
    mean, per_class = miou([pred], [gt])
    assert mean == pytest.approx(0.6)
    assert per_class["left_upper_arm"] == 0.0


def test_ranking_with_a_false_positive():
    # Two GT people predicted perfectly (scores 0.9 and 0.7) plus a spurious person of
    # score 0.8 on background (rows 15-16, torso). Ranked: TP, FP, TP; recall .5 .5 1,
    # precision 1 .5 .667 -> VOC AP = .5 * 1 + .5 * 2/3 = 5/6.
    gt = _scene(TWO)
    pred = _perfect(gt, [0.9, 0.7])
    pred.instances[15:17, 2:8] = 3
    pred.parts[15:17, 2:8] = 3
    pred.keypoints = np.concatenate([pred.keypoints, np.zeros((1, 17, 3), np.float32)])
    pred.scores = np.array([0.9, 0.7, 0.8], np.float32)
    out = part_ap([pred], [gt])
    assert out["APp50"] == pytest.approx(5 / 6)
    assert out["PCP50"] == pytest.approx(1.0)  # both matched people fully right
    # AP^r at 0.5: hair (one GT, one TP) 1; torso ranked TP, FP, TP -> 5/6; left upper
    # arm 1. Mean (1 + 5/6 + 1) / 3 = 17/18.
    assert region_ap([pred], [gt])["APr50"] == pytest.approx(17 / 18)


def test_ignore_pixels_are_left_out():
    # A spurious best-scored person inside the ignore region does not count, in any
    # metric; the same person outside it does.
    ignore = np.zeros((SIZE, SIZE), bool)
    ignore[15:, :] = True
    gt = _scene(TWO, ignore)
    pred = _perfect(gt, [0.9, 0.8])
    pred.parts[15:, :] = 7
    pred.instances[15:, :] = 3
    extra = np.zeros((1, 17, 3), np.float32)
    extra[0, 5] = (5.5, 17.5, 0.9)
    pred.keypoints = np.concatenate([pred.keypoints, extra])
    pred.scores = np.array([0.9, 0.8, 0.95], np.float32)
    out = evaluate([pred], [gt])
    for key in ("mIoU", "APpvol", "PCP50", "APrvol", "OKS_AP"):
        assert out[key] == pytest.approx(1.0), key
    assert "right_lower_arm" not in out["per_class_iou"]
    gt.ignore = None  # (AP^r stays 1: part 7 has no ground truth, so no class AP)
    out = evaluate([pred], [gt])
    for key in ("mIoU", "APpvol", "OKS_AP"):
        assert out[key] < 1.0, key


def test_oks_ap_through_pycocotools():
    gt = _scene([{3: list(range(0, 20))}])  # one person, area 10 x 20 = 200 px
    perfect = _perfect(gt, [1.0])
    assert oks_ap([perfect], [gt]) == pytest.approx(1.0)
    # One visible keypoint (left shoulder, sigma 0.079). Shifting it by d gives
    # OKS = exp(-d^2 / (2 * area * (2 sigma)^2)); choose d for OKS = 0.72, which passes
    # the OKS thresholds 0.50, 0.55, ..., 0.70 and fails 0.75 .. 0.95 -> AP = 5/10.
    d = np.sqrt(-np.log(0.72) * 2 * 200 * (2 * 0.079) ** 2)
    shifted = _perfect(gt, [1.0])
    shifted.keypoints[0, 5, 0] += d
    assert oks_ap([shifted], [gt]) == pytest.approx(0.5)


def test_bad_input_is_a_clear_error():
    gt = _scene(TWO)
    pred = _perfect(gt, [0.9])  # two people in the map, one score
    with pytest.raises(ValueError, match="instance ids"):
        evaluate([pred], [gt])
    with pytest.raises(ValueError, match="predictions for"):
        evaluate([], [gt])
    pred = _perfect(gt, [0.9, 0.8])
    pred.keypoints = pred.keypoints[:1]
    with pytest.raises(ValueError, match="one row per person"):
        oks_ap([pred], [gt])


def test_pairwise_part_iou_matches_explicit_masks():
    # The MHP pair confusion is rebuilt from joint pixel counts; check it against
    # per-person full-image part maps built pixel by pixel, on random maps.
    from trainers.metrics import _overlap, _person_iou

    rng = np.random.default_rng(3)
    c = 6
    gt = Scene(
        np.zeros((16, 16, 3), np.uint8),
        rng.integers(0, c, (16, 16)).astype(np.uint8),
        rng.integers(0, 4, (16, 16)).astype(np.uint16),
        np.zeros((3, 17, 3), np.float32),
        np.arange(3),
    )
    gt_parts = gt.parts.astype(np.int64)
    gt_parts[rng.random((16, 16)) < 0.1] = 255
    pred = Prediction(
        rng.integers(0, c, (16, 16)),
        rng.integers(0, 3, (16, 16)),
        np.zeros((2, 17, 3), np.float32),
        np.array([0.5, 0.4], np.float32),
    )
    iou = _person_iou(_overlap(pred, gt, gt_parts, c))
    valid = gt_parts != 255
    for d in range(2):
        for g in range(3):
            a = np.where(pred.instances == d + 1, pred.parts, 0)[valid]
            b = np.where(gt.instances == g + 1, gt_parts, 0)[valid]
            for cls in range(c):
                union = np.sum((a == cls) | (b == cls))
                expect = np.sum((a == cls) & (b == cls)) / union if union else np.nan
                np.testing.assert_allclose(iou[d, g, cls], expect)


# Cases where the official scripts (MHP eval_mhp.py, PGN test_inst_part_ap.py) and our
# stricter protocol differ; the official numbers are worked out by hand.
FINE_PARTS = 15  # part classes of the fine taxonomy (16 with background)


def _halves_of_one_torso() -> tuple[Scene, Prediction]:
    """Two GT torsos (rows 0..9 of each half, 100 px each); two predicted people
    (scores 0.9, 0.8) each cover half of GT person 0's torso: IoU 50/100 = 0.5 each."""
    gt = _scene([{3: list(range(10))}, {3: list(range(10))}])
    pred = _perfect(gt, [0.9, 0.8])
    pred.parts[:] = 0
    pred.instances[:] = 0
    pred.parts[0:10, 0:10] = 3
    pred.instances[0:5, 0:10] = 1
    pred.instances[5:10, 0:10] = 2
    return gt, pred


def test_region_ap_duplicate_matches_and_class_average():
    gt, pred = _halves_of_one_torso()
    # Thresholds 0.1..0.4 (IoU 0.5 passes): ours matches GT torso 0 once, TP then FP,
    # recall .5 .5, precision 1 .5 -> AP 0.5; PGN lets both hit it: TP, TP, recall
    # .5 1 -> AP 1. Thresholds 0.5..0.9: no hit (0.5 is not > 0.5), AP 0 in both.
    ours = region_ap([pred], [gt])
    assert ours == pytest.approx(
        {"APr50": 0.0, "APr60": 0.0, "APr70": 0.0, "APrvol": 4 * 0.5 / 9}
    )
    # PGN averages over all 15 part classes; the 14 without GT or prediction count 0.
    official = region_ap([pred], [gt], protocol="official")
    assert official == pytest.approx(
        {"APr50": 0.0, "APr60": 0.0, "APr70": 0.0, "APrvol": 4 * 1.0 / 9 / FINE_PARTS}
    )


def test_region_ap_official_class_without_gt_but_predicted_is_nan():
    # Perfect people plus a predicted hand (class 8) that has no GT anywhere: PGN's
    # recall is 0/0, that class's AP NaN, and the plain mean over classes NaN.
    gt = _scene(TWO)
    pred = _perfect(gt, [0.9, 0.8])
    pred.parts[12, 10:20] = 8
    pred.instances[12, 10:20] = 2
    official = region_ap([pred], [gt], protocol="official")
    assert all(np.isnan(v) for v in official.values())
    # Ours leaves the class out: hair, torso, left upper arm, all AP 1.
    assert region_ap([pred], [gt])["APrvol"] == pytest.approx(1.0)


def test_region_ap_tie_rule():
    # One GT torso (person 0); two predicted people of equal score 0.5: person 1 a
    # spurious torso on person 1's empty half (FP), listed first; person 2 exactly
    # GT torso 0 (TP). Ours ranks ties in listing order: FP, TP -> recall 0, 1,
    # precision 0, .5 -> AP 0.5. PGN's argsort(score)[::-1] puts the last listed
    # first: TP, FP -> AP 1. The mean is over 15 classes officially.
    gt = _scene([{3: list(range(10))}])
    pred = _perfect(gt, [0.5])
    pred.instances[pred.instances == 1] = 2
    pred.parts[0:10, 10:20] = 3
    pred.instances[0:10, 10:20] = 1
    pred.keypoints = np.zeros((2, 17, 3), np.float32)
    pred.scores = np.array([0.5, 0.5], np.float32)
    assert region_ap([pred], [gt])["APr50"] == pytest.approx(0.5)
    official = region_ap([pred], [gt], protocol="official")
    assert official["APr50"] == pytest.approx(1.0 / FINE_PARTS)
    # MHP's argsort(-score) keeps the two tied people in listing order (numpy's sort
    # of so few values): FP then TP, so AP^p_50 is 0.5 in both protocols.
    assert part_ap([pred], [gt])["APp50"] == pytest.approx(0.5)
    assert part_ap([pred], [gt], protocol="official")["APp50"] == pytest.approx(0.5)


def test_part_ap_person_of_part_zero_only():
    # GT person 1 is all part 0 (its pixels are labelled background): MHP drops it
    # (its mask has no pixel > 0), ours counts it as a person nobody found.
    # Person 0 predicted perfectly. Ours: 1 TP of 2 people at every threshold ->
    # AP 0.5, PCP (1 + 0) / 2. Official: 1 TP of 1 -> AP 1, PCP 1.
    gt = _scene([{1: [0, 1], 3: [2, 3, 4]}, {0: [6, 7, 8]}])
    pred = _perfect(gt, [0.9, 0.8])
    pred.instances[pred.instances == 2] = 0
    pred.keypoints = pred.keypoints[:1]
    pred.scores = pred.scores[:1]
    assert part_ap([pred], [gt]) == pytest.approx(
        {"APp50": 0.5, "APpvol": 0.5, "PCP50": 0.5}
    )
    assert part_ap([pred], [gt], protocol="official") == pytest.approx(
        {"APp50": 1.0, "APpvol": 1.0, "PCP50": 1.0}
    )


def test_protocols_agree_without_those_cases():
    gts = [_scene(TWO), _scene([{1: [3], 4: [4, 5]}])]
    preds = [_perfect(gts[0], [0.9, 0.7]), _perfect(gts[1], [0.8])]
    preds[0].parts[7, 10:20] = 5
    ours = evaluate(preds, gts)
    official = evaluate(preds, gts, protocol="official")
    for key in ("mIoU", "APp50", "APpvol", "PCP50", "OKS_AP"):
        assert official[key] == pytest.approx(ours[key]), key
    with pytest.raises(ValueError, match="protocol"):
        evaluate(preds, gts, protocol="paper")


def test_oks_ap_ground_truth_inside_ignore_is_ignored():
    # GT person 1 stands wholly in the ignore region (columns 10..19) and nobody
    # predicts it; person 0 is predicted perfectly. Counting person 1 would halve the
    # recall (COCO AP 51/101); as a COCO crowd person it is neither missed nor matched.
    ignore = np.zeros((SIZE, SIZE), bool)
    ignore[:, 10:] = True
    gt = _scene(TWO, ignore)
    pred = _perfect(gt, [0.9, 0.8])
    pred.instances[pred.instances == 2] = 0
    pred.keypoints = pred.keypoints[:1]
    pred.scores = pred.scores[:1]
    assert oks_ap([pred], [gt]) == pytest.approx(1.0)
    gt.ignore = None
    assert oks_ap([pred], [gt]) == pytest.approx(51 / 101)
