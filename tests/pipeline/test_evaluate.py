"""Identity scoring against ground truth: pairing by mask IoU, CLEAR-MOT switches."""

import numpy as np
import pytest

from pipeline.evaluate import IdSwitches, match_truth


def masks(*boxes):
    out = np.zeros((40, 40), np.uint16)
    for k, (x0, x1) in enumerate(boxes):
        out[5:35, x0:x1] = k + 1
    return out


def test_pairing_by_iou():
    truth = masks((0, 10), (20, 30))
    pred = masks((21, 30), (0, 10), (35, 40))  # shuffled, plus a false one
    pairs = match_truth(pred, np.array([8, 4, 9]), truth, np.array([100, 200]))
    assert pairs == {100: 4, 200: 8}
    shifted = masks((6, 16))  # IoU 4/16 < 0.5: no pair
    assert match_truth(shifted, np.array([1]), masks((0, 10)), np.array([5])) == {}
    assert match_truth(masks(), np.array([], int), truth, np.array([1, 2])) == {}


@pytest.mark.parametrize(
    "frames, switches, coverage",
    [
        ([{1: 7}, {1: 7}, {1: 7}], 0, 1.0),
        ([{1: 7}, {1: 8}, {1: 7}], 2, 1.0),  # swapped away and back
        ([{1: 7}, {}, {1: 7}], 0, 2 / 3),  # missed once, same id after
        ([{1: -1}, {1: 7}, {1: 7}], 0, 2 / 3),  # unconfirmed is not a switch
        ([{1: 7, 2: 8}, {1: 8, 2: 7}], 2, 1.0),  # two people exchange ids
    ],
)
def test_switch_counting(frames, switches, coverage):
    counter = IdSwitches()
    for pairs in frames:
        counter.update(pairs, present=max(len(pairs), 1))
    result = counter.result()
    assert result["id_switches"] == switches
    assert result["id_coverage"] == pytest.approx(coverage)


def test_tracker_keeps_ids_through_missed_detections_and_jitter():
    """Ground-truth people of a synthetic clip, 10% of them missed each frame and
    keypoints jittered by 2 px: every person keeps one id."""
    from types import SimpleNamespace

    from pipeline.evaluate import score_tracker_ids

    opts = SimpleNamespace(config=None, size=192, drop=0.1, jitter=2.0)
    result = score_tracker_ids(5, 45, opts)
    assert result["truth_tracks"] >= 5
    assert result["id_switches"] == 0 and result["ids_per_person_max"] == 1
