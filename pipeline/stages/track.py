"""Stage 5: stable person ids across frames, and optional keypoint smoothing.

Each frame, tracks and detections are paired by scipy's Hungarian algorithm on a
similarity that mixes keypoint OKS (against the track's pose moved on by its velocity)
and mask IoU (against its last mask, shifted the same way). Births and deaths have
hysteresis: a detection must score `birth_score` and be matched `min_hits` frames in a
row before it gets an id; a confirmed track survives `max_lost` missed frames, during
which it can be re-identified when the person re-appears from behind an occluder.
Weaker detections (>= `keep_score`) may continue a track but never start one.

`OneEuroFilter` (Casiez et al., CHI 2012) smooths keypoints for AR use: little lag
when joints move fast, little jitter when they rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from nets.similarity import KP_MIN_SCORE, mask_iou, oks
from pipeline.engine.messages import Message


@dataclass
class TrackerConfig:
    birth_score: float = 0.3
    keep_score: float = 0.1
    min_hits: int = 3
    max_lost: int = 15
    oks_weight: float = 0.5
    min_similarity: float = 0.15
    mask_step: int = 4  # IoU on every 4th pixel: plenty, 16 x cheaper
    velocity_decay: float = 0.5


@dataclass
class Track:
    keypoints: np.ndarray  # 17 x 3, frame px
    box: np.ndarray  # 4
    mask: np.ndarray  # bool, subsampled frame grid
    track_id: int = -1  # -1 until confirmed
    hits: int = 1
    misses: int = 0
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))
    smoother: OneEuroFilter | None = None

    @property
    def confirmed(self) -> bool:
        return self.track_id >= 0

    def predicted(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """Pose and mask moved on by the velocity for the frames it has been away
        (`step`: frame pixels per mask pixel)."""
        shift = self.velocity * (self.misses + 1)
        kps = self.keypoints.copy()
        kps[:, :2] += shift
        return kps, _shift(self.mask, shift, step)


def _shift(mask: np.ndarray, shift_px: np.ndarray, step: int) -> np.ndarray:
    """Move a subsampled mask by a frame-pixel offset, filling with False."""
    dx, dy = (int(round(v / step)) for v in shift_px)
    out = np.zeros_like(mask)
    h, w = mask.shape
    if abs(dx) >= w or abs(dy) >= h:
        return out
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = mask[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def _coverage(tracks: np.ndarray, dets: np.ndarray) -> np.ndarray:
    """[T, D] share of each track's joints that the detection also has. OKS counts
    only the joints both have, so without it a piece (a lone arm of two joints
    where the person was) scored like the whole person, took over the track and
    shrank it to the piece; the person then came back as a new id."""
    seen_t = tracks[:, :, 2] > KP_MIN_SCORE
    seen_d = dets[:, :, 2] > KP_MIN_SCORE
    both = (seen_t[:, None] & seen_d[None]).sum(-1)
    return both / np.maximum(seen_t.sum(-1), 1)[:, None]


def _displacement(
    old_kps: np.ndarray, kps: np.ndarray, old_box: np.ndarray, box: np.ndarray
) -> np.ndarray:
    """How far a person moved: the median shift of the joints seen in both frames
    (robust to a box that grows as someone walks into view), else the box centre's."""
    both = (old_kps[:, 2] > KP_MIN_SCORE) & (kps[:, 2] > KP_MIN_SCORE)
    if both.sum() >= 2:
        return np.median(kps[both, :2] - old_kps[both, :2], axis=0)
    return (box[:2] + box[2:]) / 2 - (old_box[:2] + old_box[2:]) / 2


def person_area(keypoints: np.ndarray, box: np.ndarray) -> float:
    """A person's scale squared: the larger of its mask's box and its joints' extent
    (a person mostly hidden has a tiny mask but joints spread over a whole body)."""
    seen = keypoints[:, 2] > KP_MIN_SCORE
    area = float((box[2] - box[0]) * (box[3] - box[1]))
    if seen.sum() >= 2:
        extent = keypoints[seen, :2].max(0) - keypoints[seen, :2].min(0)
        area = max(area, float(extent[0] * extent[1]))
    return area


class Tracker:
    """Assigns track ids to the people of consecutive frames."""

    def __init__(self, config: TrackerConfig | None = None, smooth: dict | None = None):
        self.config = config or TrackerConfig()
        self.smooth = smooth  # One-Euro parameters, None = off
        self.tracks: list[Track] = []
        self.next_id = 0

    def update(
        self,
        keypoints: np.ndarray,
        scores: np.ndarray,
        boxes: np.ndarray,
        instances: np.ndarray,
        t: float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One frame's people (rows; instance label r + 1 = row r) -> (track id per
        row, -1 while unconfirmed or too weak; keypoints, smoothed if enabled)."""
        c = self.config
        count = len(scores)
        if self.smooth is not None:
            keypoints = keypoints.copy()
        labels = np.ascontiguousarray(instances[:: c.mask_step, :: c.mask_step])
        if self.tracks and self.tracks[0].mask.shape != labels.shape:
            self.tracks = []  # a picture of another size (photos): a new scene
        keep = np.nonzero(scores >= c.keep_score)[0]
        sim = self._similarity(keypoints[keep], boxes[keep], labels, keep, count)
        ids = np.full(count, -1, np.int64)
        matched_t, matched_d = set(), set()
        if sim.size:
            rows, cols = linear_sum_assignment(-sim)
            for ti, dj in zip(rows, cols, strict=True):
                if sim[ti, dj] >= c.min_similarity:
                    matched_t.add(ti)
                    matched_d.add(int(keep[dj]))
                    self._update(
                        self.tracks[ti], int(keep[dj]), keypoints, boxes, labels
                    )
                    ids[keep[dj]] = self.tracks[ti].track_id
                    self._smooth(self.tracks[ti], keypoints, int(keep[dj]), t)
        survivors = []
        for ti, track in enumerate(self.tracks):
            if ti not in matched_t:
                track.misses += 1
                if not track.confirmed or track.misses > c.max_lost:
                    continue
            survivors.append(track)
        for d in range(count):
            if d not in matched_d and scores[d] >= c.birth_score:
                track = Track(keypoints[d].copy(), boxes[d].copy(), labels == d + 1)
                survivors.append(track)
                self._smooth(track, keypoints, d, t)
                if c.min_hits <= 1:
                    ids[d] = self._confirm(track)
        self.tracks = survivors
        return ids, keypoints

    def _similarity(
        self,
        kps: np.ndarray,
        boxes: np.ndarray,
        labels: np.ndarray,
        keep: np.ndarray,
        count: int,
    ) -> np.ndarray:
        if not self.tracks or not len(keep):
            return np.zeros((len(self.tracks), len(keep)), np.float32)
        # Where the track should be now, and where it was last seen: the better of
        # the two, so a poor velocity estimate (a person half in view) cannot hurt.
        predicted = [t.predicted(self.config.mask_step) for t in self.tracks]
        det_area = np.array(
            [person_area(k, b) for k, b in zip(kps, boxes, strict=True)]
        )
        track_area = np.array([person_area(t.keypoints, t.box) for t in self.tracks])
        areas = np.maximum(track_area[:, None], det_area[None, :])
        last = np.stack([t.keypoints for t in self.tracks])
        pose = np.maximum(
            oks(np.stack([p[0] for p in predicted]), kps, areas),
            oks(last, kps, areas),
        ) * _coverage(last, kps)
        remap = np.zeros(count + 1, np.int64)  # kept detections -> 1..len(keep)
        remap[keep + 1] = np.arange(1, len(keep) + 1)
        labels = remap[labels]
        iou = np.maximum(
            mask_iou([p[1] for p in predicted], labels, len(keep)),
            mask_iou([t.mask for t in self.tracks], labels, len(keep)),
        )
        w = self.config.oks_weight
        return (w * pose + (1 - w) * iou).astype(np.float32)

    def _update(
        self,
        track: Track,
        d: int,
        kps: np.ndarray,
        boxes: np.ndarray,
        labels: np.ndarray,
    ) -> None:
        step = _displacement(track.keypoints, kps[d], track.box, boxes[d])
        step = step / (track.misses + 1)
        a = self.config.velocity_decay
        track.velocity = (a * track.velocity + (1 - a) * step).astype(np.float32)
        track.keypoints, track.box = kps[d].copy(), boxes[d].copy()
        track.mask = labels == d + 1
        track.misses = 0
        track.hits += 1
        if not track.confirmed and track.hits >= self.config.min_hits:
            self._confirm(track)

    def _confirm(self, track: Track) -> int:
        track.track_id = self.next_id
        self.next_id += 1
        return track.track_id

    def _smooth(self, track: Track, kps: np.ndarray, d: int, t: float) -> None:
        if self.smooth is None:
            return
        if track.smoother is None:
            track.smoother = OneEuroFilter(**self.smooth)
        kps[d, :, :2] = track.smoother(kps[d, :, :2], t)


class OneEuroFilter:
    """Adaptive low-pass filter for an array signal sampled at times t (seconds)."""

    def __init__(
        self, min_cutoff: float = 1.0, beta: float = 0.05, d_cutoff: float = 1.0
    ) -> None:
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None
        self.t = 0.0

    @staticmethod
    def _alpha(cutoff: Any, dt: float) -> Any:
        tau = 1.0 / (2 * np.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, np.float32)
        if self.x is None or t <= self.t:
            self.x, self.dx, self.t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self.t
        dx = (x - self.x) / dt
        a_d = self._alpha(self.d_cutoff, dt)
        self.dx = a_d * dx + (1 - a_d) * self.dx
        cutoff = self.min_cutoff + self.beta * np.abs(self.dx)
        a = self._alpha(cutoff, dt)
        self.x = (a * x + (1 - a) * self.x).astype(np.float32)
        self.t = t
        return self.x.copy()


class TrackStage:
    """postprocess output -> + `track_ids` (and smoothed `keypoints` if enabled)."""

    name = "track"
    bottleneck = False
    info: dict[str, Any] | None = None

    def __init__(
        self,
        config: TrackerConfig | None = None,
        smooth: dict[str, float] | None = None,
    ) -> None:
        self.config = config or TrackerConfig()
        self.smooth = smooth
        self.tracker: Tracker | None = None

    def open(self) -> None:
        self.tracker = Tracker(self.config, self.smooth)

    def process(self, msg: Message) -> Message:
        p = msg.people
        t = msg.header.get("pts")
        t = msg.header["capture_ts"] if t is None else t
        p.track_ids, p.keypoints = self.tracker.update(
            p.keypoints, p.scores, p.boxes, p.instances, t
        )
        return msg

    def close(self) -> dict[str, Any] | None:
        return {"tracks": self.tracker.next_id if self.tracker else 0}
