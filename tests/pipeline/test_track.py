"""Tracker: table-driven motion scenarios on drawn people, and ground-truth people of
a synthetic video."""

import numpy as np
import pytest

from nets.similarity import mask_iou, oks
from pipeline.stages.track import OneEuroFilter, Tracker, TrackerConfig

H, W = 240, 320
# A standing figure's 17 joints relative to its box (x, y in box units), COCO order.
POSE = np.array(
    [
        [0.5, 0.08],
        [0.55, 0.06],
        [0.45, 0.06],
        [0.6, 0.08],
        [0.4, 0.08],
        [0.7, 0.22],
        [0.3, 0.22],
        [0.8, 0.4],
        [0.2, 0.4],
        [0.85, 0.55],
        [0.15, 0.55],
        [0.62, 0.55],
        [0.38, 0.55],
        [0.62, 0.75],
        [0.38, 0.75],
        [0.62, 0.95],
        [0.38, 0.95],
    ],
    np.float32,
)


def draw(people: list[tuple[float, float, float]]) -> tuple:
    """people: (x centre, y centre, score) boxes of 40 x 100 px, later ones in front.
    Returns the postprocess outputs: keypoints, scores, boxes, instances."""
    instances = np.zeros((H, W), np.uint16)
    kps, scores, boxes = [], [], []
    for cx, cy, score in people:
        box = np.array([cx - 20, cy - 50, cx + 20, cy + 50], np.float32)
        x0, y0, x1, y1 = np.clip(np.round(box), 0, [W, H, W, H]).astype(int)
        instances[instances == len(kps) + 1] = 0
        instances[y0:y1, x0:x1] = len(kps) + 1
        k = np.ones((17, 3), np.float32)
        k[:, :2] = box[:2] + POSE * (box[2:] - box[:2])
        kps.append(k)
        scores.append(score)
        boxes.append(box)
    # drop people hidden completely by those in front
    visible = [i for i in range(len(kps)) if (instances == i + 1).any()]
    relabel = np.zeros(len(kps) + 1, np.uint16)
    relabel[[i + 1 for i in visible]] = np.arange(1, len(visible) + 1)
    return (
        np.array([kps[i] for i in visible], np.float32).reshape(-1, 17, 3),
        np.array([scores[i] for i in visible], np.float32),
        np.array([boxes[i] for i in visible], np.float32).reshape(-1, 4),
        relabel[instances],
    )


def run(frames: list[list[tuple[float, float, float]]], **config) -> list[np.ndarray]:
    tracker = Tracker(TrackerConfig(**config))
    return [tracker.update(*draw(p), t=i / 15)[0] for i, p in enumerate(frames)]


def crossing(n: int = 30) -> list:
    """A walks right, B walks left in front of A; A is hidden while they overlap."""
    return [[(40 + 8 * t, 120, 0.9), (280 - 8 * t, 125, 0.9)] for t in range(n)]


def occluded(gap: int) -> list:
    """One walker that vanishes for `gap` frames mid-way (behind a pillar)."""
    frames = []
    for t in range(10 + gap + 8):
        hidden = 10 <= t < 10 + gap
        frames.append([] if hidden else [(40 + 6 * t, 120, 0.9)])
    return frames


def ids_of(out: list[np.ndarray], frame: int) -> list[int]:
    return sorted(int(i) for i in out[frame] if i >= 0)


@pytest.mark.parametrize(
    "frames, check",
    [
        # crossing: the walker in front keeps its id throughout, the hidden one gets its
        # id back when it re-appears; no third id is ever made
        (crossing(), lambda out: ids_of(out, 5) == ids_of(out, 29) == [0, 1]),
        # short occlusion (5 frames < max_lost): same id after it
        (occluded(5), lambda out: ids_of(out, 9) == ids_of(out, 22) == [0]),
        # long occlusion (20 frames > max_lost): a new id once re-confirmed
        (occluded(20), lambda out: ids_of(out, 9) == [0] and ids_of(out, 37) == [1]),
        # birth hysteresis: no id before min_hits frames, then one
        (
            [[(100, 120, 0.9)]] * 4,
            lambda out: [len(ids_of(out, i)) for i in range(4)] == [0, 0, 1, 1],
        ),
        # a one-frame flicker never gets an id
        (
            [
                [(100, 120, 0.9)],
                [(100, 120, 0.9), (250, 120, 0.9)],
                [(100, 120, 0.9)],
                [(100, 120, 0.9)],
            ],
            lambda out: max(max(o, default=-1) for o in out) == 0,
        ),
        # a weak detection cannot start a track, but it can continue one
        ([[(100, 120, 0.05)]] * 5, lambda out: all((o < 0).all() for o in out)),
        (
            [[(100, 120, 0.9)]] * 3 + [[(104, 120, 0.15)]] * 3,
            lambda out: [ids_of(out, i) for i in (2, 5)] == [[0], [0]],
        ),
    ],
    ids=[
        "crossing",
        "short-occlusion",
        "long-occlusion",
        "birth-hysteresis",
        "flicker",
        "weak-birth",
        "weak-continue",
    ],
)
def test_tracker_scenarios(frames, check):
    out = run(frames, max_lost=10)
    assert check(out), [o.tolist() for o in out]


def test_crossing_ids_follow_people():
    """Not just the same set of ids: each id stays on the same walker."""
    out = run(crossing())
    first = {round(x): i for (x, _, _), i in zip(crossing()[5], out[5], strict=True)}
    last = draw(crossing()[29])[2]
    assert out[5].tolist() == [0, 1] and first == {80: 0, 240: 1}
    # at t=29 A is at x=272, B at x=48
    assert {
        round((b[0] + b[2]) / 2): int(i) for b, i in zip(last, out[29], strict=True)
    } == {272: 0, 48: 1}


def test_a_piece_where_a_person_was_does_not_take_over_their_track():
    """A tracked walker is seen for 3 frames only as an arm (2 joints, a small
    mask); the arm gets no id, and the walker keeps theirs when seen whole again."""
    tracker = Tracker(TrackerConfig(max_lost=10))
    whole = [draw([(100 + 2 * t, 120, 0.9)]) for t in range(8)]
    out = []
    for t, (kps, scores, boxes, instances) in enumerate(whole):
        if 4 <= t < 7:  # only the right wrist and elbow (joints 8, 10) are found
            kps = kps.copy()
            kps[:, [i for i in range(17) if i not in (8, 10)], 2] = 0
            x0, y0 = np.floor(kps[0, [8, 10], :2].min(0)).astype(int)
            x1, y1 = np.ceil(kps[0, [8, 10], :2].max(0)).astype(int)
            instances = np.zeros_like(instances)
            instances[y0 - 2 : y1 + 3, x0 - 2 : x1 + 3] = 1
            boxes = np.array([[x0, y0, x1, y1]], np.float32)
            scores = np.array([0.2], np.float32)
        out.append(tracker.update(kps, scores, boxes, instances, t=t / 15)[0])
    assert [o.tolist() for o in out[2:]] == [[0], [0], [-1], [-1], [-1], [0]]


def test_oks_and_iou_basics():
    k, s, b, inst = draw([(100, 120, 1.0), (200, 120, 1.0)])
    sim = oks(k, k, (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))
    assert np.allclose(np.diag(sim), 1) and sim[0, 1] < 0.01
    iou = mask_iou([inst == 1, inst == 2], inst, 2)
    assert np.allclose(iou, np.eye(2))


def test_one_euro_smooths_jitter_and_follows_motion():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    still = [f(np.array([100.0]) + rng.normal(0, 2, 1), t / 30) for t in range(60)]
    assert np.std(still[30:]) < 1.0  # raw jitter has std 2
    g = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    moving = [g(np.array([10.0 * t]), t / 30) for t in range(60)]
    assert abs(moving[-1][0] - 590) < 10  # little lag at speed


def test_track_stage_smooths_received_read_only_keypoints():
    from pipeline.engine.messages import FramePeople, Message, pack, unpack
    from pipeline.stages.track import TrackStage

    stage = TrackStage(TrackerConfig(min_hits=1), smooth={"min_cutoff": 0.5})
    stage.open()
    out = []
    for i, x in enumerate([100.0, 110.0, 100.0, 110.0]):
        k, s, b, inst = draw([(x, 120, 0.9)])
        people = FramePeople(k, s, b, inst, np.zeros_like(inst, np.uint8))
        msg = Message("frame", {"pts": i / 30, "capture_ts": 0.0}, people=people)
        msg = stage.process(unpack(pack(msg)))  # arrays as a socket gives them
        out.append(msg.people.keypoints[0, 0, 0])
        assert msg.people.track_ids.tolist() == [0]
    raw = draw([(110.0, 120, 0.9)])[0][0, 0, 0]
    assert out[0] == draw([(100.0, 120, 0.9)])[0][0, 0, 0]
    assert abs(out[3] - raw) > 1  # jitter damped


def scene_detections(scene, step: int = 1):
    """The postprocess outputs a perfect detector would give for a Scene."""
    k = scene.keypoints.copy()
    k[..., 2] = (k[..., 2] > 0).astype(np.float32)
    return k, np.ones(scene.num_people, np.float32), scene.boxes(), scene.instances


def test_tracker_on_ground_truth_of_a_synthetic_video():
    from trainers.synth import generate_video

    tracker = Tracker()
    pairs: dict[int, set[int]] = {}
    owners: dict[int, set[int]] = {}
    for scene in generate_video(3, 192, 45, (3, 5)):
        ids, _ = tracker.update(*scene_detections(scene))
        for gt, tid in zip(scene.track_ids.tolist(), ids.tolist(), strict=True):
            if tid >= 0:
                pairs.setdefault(gt, set()).add(tid)
                owners.setdefault(tid, set()).add(gt)
    assert len(pairs) >= 3
    assert all(len(v) == 1 for v in pairs.values()), pairs  # no id switch
    assert all(len(v) == 1 for v in owners.values()), owners  # no id shared


def test_a_frame_of_another_size_starts_a_new_scene():
    """A folder of photos of different sizes: tracks of the last picture cannot be
    compared with this one's masks, so they end (they crashed mask_iou before)."""
    tracker = Tracker(TrackerConfig(min_hits=1))
    assert tracker.update(*draw([(100, 120, 0.9)]))[0].tolist() == [0]
    kps, scores, boxes, instances = draw([(100, 120, 0.9)])
    ids, _ = tracker.update(kps, scores, boxes, instances[:-40, :-20])
    assert ids.tolist() == [1] and len(tracker.tracks) == 1
