"""The field's metrics for instance-aware human parsing and multi-person pose.

Each function follows a published evaluation protocol, so our numbers mean what the
papers' numbers mean:

- `miou`: category-level mean IoU from one confusion matrix accumulated over the data
  set (as the LIP / CIHP / MHP scripts do), background included; classes absent from
  both ground truth and prediction are left out of the mean.
- `part_ap`: MHP v2's `eval_seg_ap` (LV-MHP v2 `eval_mhp.py`). Each person is a
  full-image part map (its part ids inside its mask, 0 elsewhere). The part-IoU of a
  (prediction, ground truth) pair is the mean of the per-class IoUs of those two maps
  over the classes present in either, background included, as the official script
  does. Predictions, ranked by score over the whole data set, take the ground-truth
  person of highest part-IoU in their image; above the threshold and not yet taken is a
  true positive, else a false positive. AP is VOC's area under the interpolated
  precision envelope. AP^p_vol is the mean AP over thresholds 0.1..0.9. PCP50: for each
  true positive at 0.5, the fraction of the person's ground-truth part classes whose IoU
  exceeds 0.5; unmatched ground-truth people count 0; averaged over people.
- `region_ap`: AP^r of PASCAL-Person-Part and CIHP (PGN's `test_inst_part_ap.py`, after
  Hariharan et al.'s SDS AP^r): each (person, part) region is an object of its part
  class, scored by its person's score; per class, regions ranked by score take the
  same-class ground-truth region of highest IoU in their image; the class AP is VOC's;
  AP^r is the mean over classes that have ground truth. Unlike the PGN script (which
  lets two predictions take one ground-truth region), a region is matched once, as in
  SDS and VOC. AP^r_vol is the mean over thresholds 0.1..0.9.
- `oks_ap`: COCO keypoint AP (OKS 0.50:0.95) computed by pycocotools' COCOeval on
  in-memory COCO objects; a ground-truth person's area is its instance-mask area.
  Predicted people whose scored keypoints all lie in a Scene's ignore region are
  removed first, as PoseTrack's evaluation removes predictions in ignore regions (a
  COCO crowd box would not do: COCO widens it by its own size on every side, which
  would excuse most false positives near a letterbox pad). The only departure from
  COCO's defaults: `maxDets` is raised above 20 when an image holds more people.
  Ground-truth people whose labelled keypoints all lie in the ignore region are COCO
  "crowd" people (ignored: neither missed nor matched as a false positive), so an
  ignore region excuses the ground truth inside it as it excuses the predictions.

Two protocols (`PROTOCOLS`). "ours", the default, is the stricter one described above.
"official" reproduces the official scripts' numbers where they differ from it:
- AP^r (PGN `test_inst_part_ap.py`): a ground-truth region may be hit by several
  predictions (below IoU 0.5 two disjoint regions can both pass the threshold, so
  AP^r_vol can read higher, even above 1 for one class); the mean is over every part
  class of the taxonomy, a class without ground truth counting 0 when nothing
  predicts it and NaN (which makes the mean NaN) when something does.
- AP^p and PCP (MHP `eval_mhp.py`): a ground-truth person whose pixels are all part 0
  (background) is not a person (ours counts it, as a miss unless predicted).
- Score ties: ours ranks stably (first listed first: earlier scene, then lower person
  id). The official scripts call numpy's default (unstable) argsort: MHP
  `argsort(-score)`, PGN `argsort(score)[::-1]`; "official" makes those same calls on
  the same listing order, so it gives the scripts' numbers on the same numpy. For a few
  tied scores (up to about 4) numpy keeps MHP's ties in listing order and PGN's
  reversed (last listed first); beyond that the order of ties is numpy's.
mIoU and OKS AP are the same in both; the others agree when no ground-truth person is
all part 0, no scores tie and every part class has ground truth.

Ignore pixels (part 255 in the ground truth, or inside `Scene.ignore`) are left out of
every pixel count. Instance-id numbering does not matter: people are matched by overlap.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from configs import body, mapping
from configs import taxonomy as taxonomy_table
from configs.constants import IGNORE
from configs.records import Prediction, Scene

THRESHOLDS = np.round(np.arange(1, 10) / 10, 1)  # 0.1 .. 0.9, the "vol" thresholds
PROTOCOLS = ("ours", "official")


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got '{protocol}'")


def _rank(scores: np.ndarray, rule: str) -> np.ndarray:
    """Detections, best score first, under a tie rule (module docstring, "ties").

    "stable": ties in listing order (ours); "mhp" and "pgn": the official scripts' own
    numpy calls, whose tie order is numpy's unstable quicksort's."""
    if rule == "mhp":
        return np.argsort(-scores)
    if rule == "pgn":
        return np.argsort(scores)[::-1]
    return np.argsort(-scores, kind="stable")


@dataclass
class _Overlap:
    """Pixel counts of one image, everything a part or region metric needs.

    joint[d, g, a, b] counts valid pixels with predicted person d (0 = none), predicted
    part a, ground-truth person g (0 = none) and ground-truth part b.
    """

    joint: np.ndarray
    scores: np.ndarray  # D predicted person scores

    @property
    def pred_area(self) -> np.ndarray:
        """(D + 1) x C pixels of each predicted person's parts."""
        return self.joint.sum(axis=(1, 3))

    @property
    def gt_area(self) -> np.ndarray:
        """(G + 1) x C pixels of each ground-truth person's parts."""
        return self.joint.sum(axis=(0, 2))


def _gt_parts(scene: Scene, name: str) -> np.ndarray:
    """Ground-truth part ids in taxonomy `name` with every ignored pixel set to 255."""
    parts = scene.parts.astype(np.int64)
    if scene.taxonomy != name:
        lut = np.full(256, IGNORE, np.int64)
        lut[: len(mapping(scene.taxonomy, name))] = mapping(scene.taxonomy, name)
        parts = lut[parts]
    if scene.ignore is not None:
        parts = np.where(scene.ignore, IGNORE, parts)
    return parts


def _check(pred: Prediction, gt: Scene, n_classes: int) -> None:
    if pred.parts.shape != gt.parts.shape or pred.instances.shape != gt.parts.shape:
        raise ValueError(
            f"prediction maps {pred.parts.shape}/{pred.instances.shape} do not "
            f"match the ground truth {gt.parts.shape}"
        )
    if pred.parts.size and (pred.parts.min() < 0 or pred.parts.max() >= n_classes):
        raise ValueError(f"predicted part ids must lie in 0..{n_classes - 1}")
    n_people = len(pred.scores)
    if pred.instances.size and (
        pred.instances.min() < 0 or pred.instances.max() > n_people
    ):
        raise ValueError(
            f"predicted instance ids must lie in 0..{n_people} (one score per person)"
        )


def _pairs(
    preds: list[Prediction], gts: list[Scene], name: str, protocol: str = "ours"
) -> tuple[list[tuple[Prediction, Scene, np.ndarray]], int]:
    """Check the inputs (and the protocol) and pair each prediction with its truth."""
    _check_protocol(protocol)
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions for {len(gts)} ground-truth scenes")
    n_classes = len(taxonomy_table(name)["classes"])
    out = []
    for pred, gt in zip(preds, gts, strict=True):
        _check(pred, gt, n_classes)
        out.append((pred, gt, _gt_parts(gt, name)))
    return out, n_classes


def _overlap(pred: Prediction, gt: Scene, gt_parts: np.ndarray, c: int) -> _Overlap:
    valid = gt_parts != IGNORE
    d_n, g_n = len(pred.scores) + 1, gt.num_people + 1
    pi = pred.instances[valid].astype(np.int64)
    gi = gt.instances[valid].astype(np.int64)
    code = ((pi * g_n + gi) * c + pred.parts[valid].astype(np.int64)) * c + gt_parts[
        valid
    ]
    joint = np.bincount(code, minlength=d_n * g_n * c * c).reshape(d_n, g_n, c, c)
    return _Overlap(joint.astype(np.float64), np.asarray(pred.scores, np.float64))


def _voc_ap(tp: np.ndarray, n_gt: int) -> float:
    """VOC AP (all points): area under the monotone envelope of precision vs recall."""
    if n_gt == 0 or len(tp) == 0:
        return 0.0
    hits = np.cumsum(tp)
    recall = np.concatenate([[0.0], hits / n_gt, [1.0]])
    precision = np.concatenate([[0.0], hits / np.arange(1, len(tp) + 1), [0.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    step = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[step + 1] - recall[step]) * precision[step + 1]))


def _greedy(
    order: np.ndarray,
    ious: list[np.ndarray],
    images: np.ndarray,
    n_gt: list[int],
    threshold: float,
    once: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Match detections in ranked `order`, each to the ground truth of highest IoU.

    Returns per detection (in ranked order) the true-positive flag and the matched
    ground-truth index (-1 if none), following the VOC / MHP rule: a detection whose
    best ground truth is already taken is a false positive (it does not fall back).
    `once=False` is PGN's rule: a ground truth can be taken any number of times.
    """
    taken = [np.zeros(n, bool) for n in n_gt]
    tp = np.zeros(len(order))
    match = np.full(len(order), -1)
    for rank, det in enumerate(order):
        row = ious[det]
        if row.size == 0:
            continue
        best = int(np.argmax(row))
        if row[best] > threshold and not (once and taken[images[det]][best]):
            taken[images[det]][best] = True
            tp[rank] = 1.0
            match[rank] = best
    return tp, match


def miou(
    preds: list[Prediction], gts: list[Scene], taxonomy: str = "fine"
) -> tuple[float, dict[str, float]]:
    """Category-level mean IoU and the IoU of each class present in either side."""
    pairs, c = _pairs(preds, gts, taxonomy)
    hist = np.zeros((c, c), np.float64)
    for pred, _, gt_parts in pairs:
        valid = gt_parts != IGNORE
        code = gt_parts[valid] * c + pred.parts[valid].astype(np.int64)
        hist += np.bincount(code, minlength=c * c).reshape(c, c)
    inter = np.diag(hist)
    union = hist.sum(0) + hist.sum(1) - inter
    present = union > 0
    names = taxonomy_table(taxonomy)["classes"]
    per_class = {names[i]: float(inter[i] / union[i]) for i in np.flatnonzero(present)}
    return (float(np.mean(list(per_class.values()))) if per_class else 0.0), per_class


def _person_iou(ov: _Overlap) -> np.ndarray:
    """Per-class IoU (D x G x C) of every (predicted, ground-truth) person pair.

    Each person is a full-image part map (MHP): pixels outside its mask are background,
    so the pair's confusion is rebuilt from the joint counts without touching pixels.
    """
    joint = ov.joint
    both = joint[1:, 1:]  # pixels inside both people
    hist = both.copy()
    pred_area, gt_area = ov.pred_area[1:], ov.gt_area[1:]
    hist[..., :, 0] += pred_area[:, None, :] - both.sum(axis=3)  # pred only -> GT bg
    hist[..., 0, :] += gt_area[None, :, :] - both.sum(axis=2)  # GT only -> pred bg
    hist[..., 0, 0] += (
        joint.sum()
        - pred_area.sum(1)[:, None]
        - gt_area.sum(1)[None, :]
        + both.sum(axis=(2, 3))
    )
    inter = np.diagonal(hist, axis1=2, axis2=3)
    union = hist.sum(axis=3) + hist.sum(axis=2) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, np.nan)


def part_ap(
    preds: list[Prediction],
    gts: list[Scene],
    taxonomy: str = "fine",
    protocol: str = "ours",
) -> dict[str, float]:
    """MHP v2 instance-level metrics: APp50, APpvol (mean over 0.1..0.9) and PCP50."""
    pairs, c = _pairs(preds, gts, taxonomy, protocol)
    first_part = 1 if protocol == "official" else 0  # MHP: all-part-0 is no person
    scores, ious, images, class_ious, n_gt, gt_classes = [], [], [], [], [], []
    for image, (pred, gt, gt_parts) in enumerate(pairs):
        ov = _overlap(pred, gt, gt_parts, c)
        per_class = _person_iou(ov)
        real_gt = ov.gt_area[1:, first_part:].sum(1) > 0
        n_gt.append(int(real_gt.sum()))
        gt_classes.append((ov.gt_area[1:][real_gt, 1:] > 0).sum(1))
        with warnings.catch_warnings():  # an image without valid pixels: all-nan rows
            warnings.simplefilter("ignore", RuntimeWarning)
            mean_iou = np.nanmean(per_class[:, real_gt], axis=2)
        for d in np.flatnonzero(ov.pred_area[1:].sum(1) > 0):
            scores.append(ov.scores[d])
            ious.append(mean_iou[d])
            class_ious.append(per_class[d][real_gt])
            images.append(image)
    scores_a, images_a = np.asarray(scores, np.float64), np.asarray(images, np.int64)
    total = sum(n_gt)
    order = _rank(scores_a, "mhp" if protocol == "official" else "stable")
    aps, pcp = [], 0.0
    for t in THRESHOLDS:
        tp, match = _greedy(order, ious, images_a, n_gt, float(t))
        aps.append(_voc_ap(tp, total))
        if t == 0.5:
            for rank in np.flatnonzero(tp):
                det, g = order[rank], match[rank]
                n_parts = gt_classes[images_a[det]][g]
                if n_parts:
                    pcp += np.sum(class_ious[det][g, 1:] > 0.5) / n_parts
    return {
        "APp50": aps[4],
        "APpvol": float(np.mean(aps)),
        "PCP50": float(pcp / total) if total else 0.0,
    }


def region_ap(
    preds: list[Prediction],
    gts: list[Scene],
    taxonomy: str = "fine",
    protocol: str = "ours",
) -> dict[str, float]:
    """PASCAL-Person-Part / CIHP AP^r at IoU 0.5, 0.6, 0.7 and vol (0.1..0.9)."""
    official = protocol == "official"
    pairs, c = _pairs(preds, gts, taxonomy, protocol)
    overlaps = [_overlap(p, g, gp, c) for p, g, gp in pairs]
    per_class = []  # C-1 rows of AP at each threshold
    for part in range(1, c):
        scores, ious, images, n_gt = [], [], [], []
        for image, ov in enumerate(overlaps):
            gt_area = ov.gt_area[1:, part]
            gt_ids = np.flatnonzero(gt_area > 0)
            n_gt.append(len(gt_ids))
            pred_area = ov.pred_area[1:, part]
            inter = ov.joint[1:, 1:, part, part][:, gt_ids]
            union = pred_area[:, None] + gt_area[None, gt_ids] - inter
            for d in np.flatnonzero(pred_area > 0):
                scores.append(ov.scores[d])
                ious.append(inter[d] / union[d])
                images.append(image)
        if sum(n_gt) == 0:
            if official:  # PGN: 0 / 0 recall gives NaN, no prediction gives AP 0
                per_class.append([np.nan if scores else 0.0] * len(THRESHOLDS))
            continue
        order = _rank(np.asarray(scores, np.float64), "pgn" if official else "stable")
        images_a = np.asarray(images, np.int64)
        per_class.append(
            [
                _voc_ap(
                    _greedy(order, ious, images_a, n_gt, float(t), not official)[0],
                    sum(n_gt),
                )
                for t in THRESHOLDS
            ]
        )
    ap = np.mean(per_class, axis=0) if per_class else np.zeros(len(THRESHOLDS))
    return {
        "APr50": float(ap[4]),
        "APr60": float(ap[5]),
        "APr70": float(ap[6]),
        "APrvol": float(np.mean(ap)),
    }


def _box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [
        float(xs.min()),
        float(ys.min()),
        float(xs.max() + 1 - xs.min()),
        float(ys.max() + 1 - ys.min()),
    ]


def _in_ignore(keypoints: np.ndarray, ignore: np.ndarray | None) -> bool:
    """True when every scored (or labelled) keypoint of a person lies on ignored
    pixels."""
    if ignore is None:
        return False
    scored = keypoints[keypoints[:, 2] > 0, :2]
    if len(scored) == 0:
        return False
    height, width = ignore.shape
    cols = np.clip(scored[:, 0].astype(np.int64), 0, width - 1)
    rows = np.clip(scored[:, 1].astype(np.int64), 0, height - 1)
    return bool(ignore[rows, cols].all())


def _coco_objects(
    preds: list[Prediction], gts: list[Scene]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    images, annotations, results = [], [], []
    for image_id, (pred, gt) in enumerate(zip(preds, gts, strict=True), start=1):
        height, width = gt.parts.shape
        images.append({"id": image_id, "width": width, "height": height})
        for k in range(gt.num_people):
            mask = gt.instances == k + 1
            kps = np.asarray(gt.keypoints[k], np.float64)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "iscrowd": int(_in_ignore(kps, gt.ignore)),
                    "area": float(mask.sum()),
                    "bbox": _box(mask),
                    "keypoints": [float(v) for v in kps.reshape(-1)],
                    "num_keypoints": int((kps[:, 2] > 0).sum()),
                }
            )
        if np.shape(pred.keypoints) != (len(pred.scores), 17, 3):
            raise ValueError(
                f"predicted keypoints {np.shape(pred.keypoints)} must be "
                f"{len(pred.scores)} x 17 x 3 (one row per person score)"
            )
        for k, score in enumerate(np.asarray(pred.scores, np.float64)):
            if _in_ignore(pred.keypoints[k], gt.ignore):
                continue
            results.append(
                {
                    "image_id": image_id,
                    "category_id": 1,
                    "score": float(score),
                    "keypoints": [
                        float(v) for v in np.asarray(pred.keypoints[k]).reshape(-1)
                    ],
                }
            )
    dataset = {
        "images": images,
        "annotations": annotations,
        "categories": [
            {
                "id": 1,
                "name": "person",
                "keypoints": body()["keypoints"],
                "skeleton": [],
            }
        ],
    }
    return dataset, results


def oks_ap(preds: list[Prediction], gts: list[Scene]) -> float:
    """COCO keypoint AP (OKS 0.50:0.95, all areas) by pycocotools' COCOeval."""
    return oks_aps(preds, gts)[0]


def oks_aps(preds: list[Prediction], gts: list[Scene]) -> tuple[float, float]:
    """(AP at OKS 0.50:0.95, AP at OKS 0.5), all areas, by pycocotools' COCOeval."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predictions for {len(gts)} ground-truth scenes")
    dataset, results = _coco_objects(preds, gts)
    labelled = any(
        a["num_keypoints"] > 0 and not a["iscrowd"] for a in dataset["annotations"]
    )
    if not results or not labelled:
        return 0.0, 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = dataset
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, "keypoints")
        ev.params.kpt_oks_sigmas = np.asarray(body()["oks_sigmas"], np.float64)
        most = max(len(p.scores) for p in preds)
        ev.params.maxDets = [max(20, most)]
        ev.evaluate()
        ev.accumulate()
    precision = ev.eval["precision"][:, :, 0, 0, -1]  # thresholds x recall, area "all"

    def mean(p: np.ndarray) -> float:
        kept = p[p > -1]
        return float(kept.mean()) if kept.size else 0.0

    return mean(precision), mean(precision[0])  # threshold 0 is OKS 0.5


def evaluate(
    preds: list[Prediction],
    gts: list[Scene],
    taxonomy: str = "fine",
    protocol: str = "ours",
) -> dict[str, Any]:
    """Every metric of docs/ARCHITECTURE.md ("Metrics"), fractions in 0..1 (under the
    official protocol AP^r can be NaN or, per class, above 1: module docstring)."""
    mean_iou, per_class = miou(preds, gts, taxonomy)
    return {
        "mIoU": mean_iou,
        "per_class_iou": per_class,
        **part_ap(preds, gts, taxonomy, protocol),
        **region_ap(preds, gts, taxonomy, protocol),
        "OKS_AP": oks_ap(preds, gts),
    }
