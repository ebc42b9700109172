"""Two teachers' answers about one image -> one pseudo-labelled Scene with confidence.

The recipe (issue 12, measured there): people and joints come from the pose teacher
(MoveNet: the better keypoints), masks and parts from the parsing teacher (BodyPix:
instance masks, parts with front/back already merged into the `fine` taxonomy). What
the teachers are unsure of, or disagree on, is left unlabelled rather than guessed:

- a joint scoring under `joint_threshold` is unlabelled (v = 0); one scoring between
  `unsure_joint` and that threshold also gets an ignore disk, so the student is not
  taught "no joint here" where a joint probably is;
- a pose-teacher person below `person_threshold` but above `unsure_person`, or a
  parsing-teacher person at least `candidate_threshold` sure whom the pose teacher does
  not see, becomes an ignore region (keypoint box or mask), not background;
- a parsing-teacher mask nobody's joints fall into is ignore; a kept person without a
  mask keeps its joints (the loader draws its body from them, the band around ignored);
- inside a person's mask a pixel takes the teacher's most probable body part; where
  that part's probability given "person" is under `part_given_person`, it takes the
  part the person's keypoints give instead (limb cues), else part-ignore (255);
  background pixels whose top probability is under `part_threshold` are ignore;
- hair vs face: BodyPix has no hair class; head pixels are split by the keypoints with
  `parts_from_keypoints.split_head` (face around the visible eyes and nose, hair
  elsewhere, all hair in a back view with only the ears visible, ignore when no face
  keypoint says which way the head points).

Confidence per pixel is the parsing teacher's top probability in 0..254, 255 = ignore.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from configs import taxonomy
from configs.records import Scene
from nets.similarity import oks, pose_areas
from trainers.datasets.common import IGNORE
from trainers.datasets.parts_from_keypoints import capsules, derive_parts, split_head
from trainers.teachers import TeacherOutput

_FINE = taxonomy("fine")["classes"]
_HEAD = (_FINE.index("hair"), _FINE.index("face"))


@dataclass(frozen=True)
class FusionConfig:
    """Thresholds of the recipe in the module docstring (teacher scores are 0..1)."""

    joint_threshold: float = 0.3
    unsure_joint: float = 0.1
    person_threshold: float = 0.25
    unsure_person: float = 0.1
    candidate_threshold: float = 0.5
    match_oks: float = 0.3
    min_joints: int = 3
    part_threshold: float = 0.5
    part_given_person: float = 0.4
    min_mask_joints: int = 2


@dataclass
class Fused:
    """One pseudo-labelled image.

    Attributes:
        scene: parts (fine, 255 part-ignore), instances (k + 1 = person k; a person
            without a mask has no pixel), keypoints (v = 2 labelled, 0 not), ignore.
        confidence: H x W uint8, the parsing teacher's top probability x 254 (255:
            ignore).
        keypoint_scores: P x 17 pose-teacher joint scores.
        scores: P person scores.
        has_mask: P bool, whether person k has instance pixels.
    """

    scene: Scene
    confidence: np.ndarray
    keypoint_scores: np.ndarray
    scores: np.ndarray
    has_mask: np.ndarray


def _scored(kps: np.ndarray, threshold: float) -> np.ndarray:
    """Keypoints with scores under `threshold` zeroed (as unlabelled for OKS)."""
    out = np.asarray(kps, np.float32).reshape(-1, 17, 3).copy()
    out[..., 2] = np.where(out[..., 2] >= threshold, out[..., 2], 0.0)
    return out


def _box(kps: np.ndarray, pad: float) -> np.ndarray | None:
    """(x0, y0, x1, y1) around scored joints, padded by `pad` x the larger side."""
    pts = kps[kps[:, 2] > 0, :2]
    if len(pts) == 0:
        return None
    lo, hi = pts.min(0), pts.max(0)
    margin = pad * max(float((hi - lo).max()), 8.0)
    return np.array([*(lo - margin), *(hi + margin)], np.float32)


def _paint_box(mask: np.ndarray, box: np.ndarray | None) -> None:
    if box is None:
        return
    h, w = mask.shape
    x0, y0 = max(int(box[0]), 0), max(int(box[1]), 0)
    x1, y1 = min(int(np.ceil(box[2])), w), min(int(np.ceil(box[3])), h)
    mask[y0:y1, x0:x1] = True


def match_people(a: np.ndarray, b: np.ndarray, threshold: float) -> dict[int, int]:
    """Greedy one-to-one OKS matching of poses a (P x 17 x 3) to poses b (Q): {p: q}."""
    if len(a) == 0 or len(b) == 0:
        return {}
    sim = oks(a, b, pose_areas(a)[:, None].repeat(len(b), 1))
    pairs: dict[int, int] = {}
    taken: set[int] = set()
    for flat in np.argsort(-sim, axis=None):
        p, q = divmod(int(flat), len(b))
        if sim[p, q] < threshold:
            break
        if p not in pairs and q not in taken:
            pairs[p] = q
            taken.add(q)
    return pairs


def _assign_masks(kps: np.ndarray, instances: np.ndarray, least: int) -> dict[int, int]:
    """Parsing-teacher instance id (1..) -> fused person, by how many of the person's
    labelled joints fall inside each mask (greedy, most joints first)."""
    h, w = instances.shape
    votes: dict[tuple[int, int], int] = {}
    for k, person in enumerate(kps):
        pts = person[person[:, 2] > 0, :2]
        cols = np.clip(pts[:, 0].astype(np.int64), 0, w - 1)
        rows = np.clip(pts[:, 1].astype(np.int64), 0, h - 1)
        ids, counts = np.unique(instances[rows, cols], return_counts=True)
        for i, c in zip(ids, counts, strict=True):
            if i:
                votes[(int(i), k)] = int(c)
    owner: dict[int, int] = {}
    used: set[int] = set()
    for (inst, k), count in sorted(votes.items(), key=lambda kv: -kv[1]):
        if count >= least and inst not in owner and k not in used:
            owner[inst] = k
            used.add(k)
    return owner


def _people(
    pose: TeacherOutput, parse: TeacherOutput, cfg: FusionConfig, ignore: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Kept people (keypoints with raw scores, person scores); unsure or disputed
    people painted into `ignore`."""
    kps = np.asarray(pose.keypoints, np.float32).reshape(-1, 17, 3)
    scores = np.asarray(pose.scores, np.float32).reshape(-1)
    labelled = (kps[..., 2] >= cfg.joint_threshold).sum(-1)
    keep = (scores >= cfg.person_threshold) & (labelled >= cfg.min_joints)
    unsure = ~keep & (scores >= cfg.unsure_person)
    for k in np.flatnonzero(unsure):
        _paint_box(ignore, _box(_scored(kps[k], cfg.unsure_joint)[0], 0.15))
    others = _scored(parse.keypoints, cfg.joint_threshold)
    other_scores = np.asarray(parse.scores, np.float32).reshape(-1)
    pairs = match_people(_scored(kps, cfg.unsure_joint), others, cfg.match_oks)
    seen = set(pairs.values())
    for q in range(len(others)):
        if q not in seen and other_scores[q] >= cfg.candidate_threshold:
            _paint_box(ignore, _box(others[q], 0.15))
    return kps[keep], scores[keep]


def _joint_disks(kps: np.ndarray, cfg: FusionConfig, ignore: np.ndarray) -> None:
    """Ignore disks on joints the pose teacher half-sees (unsure..threshold)."""
    for person in kps:
        box = _box(_scored(person, cfg.joint_threshold)[0], 0.0)
        size = 0.0 if box is None else float(max(box[2] - box[0], box[3] - box[1]))
        radius = max(3, int(round(0.06 * size)))
        for x, y, s in person:
            if cfg.unsure_joint <= s < cfg.joint_threshold:
                cv2.circle(ignore.view(np.uint8), (int(x), int(y)), radius, 1, -1)


def _person_parts(
    mask: np.ndarray,
    kp: np.ndarray,
    probs: np.ndarray,
    cfg: FusionConfig,
) -> np.ndarray:
    """Fine ids inside one person's mask: the teacher's parts where sure, else the
    keypoints' (limb cues), hair/face split by the keypoints, 255 where nothing
    decides."""
    ys, xs = np.nonzero(mask)
    body = probs[1:, ys, xs]
    labels = (1 + np.argmax(body, axis=0)).astype(np.uint8)
    given = body.max(0) / np.maximum(body.sum(0), 1e-6)
    derived = derive_parts(mask, kp)[ys, xs]
    unsure = given < cfg.part_given_person
    labels[unsure] = derived[unsure]
    labels[unsure & (derived == 0)] = IGNORE
    head = np.isin(labels, _HEAD)
    if head.any():
        p = np.stack([xs[head] + 0.5, ys[head] + 0.5], axis=1)
        labels[head] = split_head(p, kp, capsules(kp))
    out = np.zeros(mask.shape, np.uint8)
    out[ys, xs] = labels
    return out


def fuse(
    image: np.ndarray,
    pose: TeacherOutput,
    parse: TeacherOutput,
    cfg: FusionConfig | None = None,
) -> Fused:
    """The pseudo-label of one RGB image from a pose and a parsing teacher's outputs
    (both in this image's pixel grid); the recipe is the module docstring's."""
    cfg = cfg or FusionConfig()
    h, w = image.shape[:2]
    ignore = np.zeros((h, w), bool)
    kps, scores = _people(pose, parse, cfg, ignore)
    labelled = _scored(kps, cfg.joint_threshold)
    labelled[..., 2] = np.where(labelled[..., 2] > 0, 2.0, 0.0)
    _joint_disks(kps, cfg, ignore)

    if parse.part_probs is not None:
        probs = np.asarray(parse.part_probs, np.float32)
        top = probs.max(0)
    else:
        probs, top = None, np.zeros((h, w), np.float32)
    teacher_inst = (
        np.zeros((h, w), np.uint16) if parse.instances is None else parse.instances
    )
    owner = _assign_masks(labelled, teacher_inst, cfg.min_mask_joints)
    instances = np.zeros((h, w), np.uint16)
    parts = np.zeros((h, w), np.uint8)
    for inst, k in owner.items():
        instances[teacher_inst == inst] = k + 1
    orphan = (teacher_inst > 0) & (instances == 0)
    ignore |= orphan
    for k in range(len(kps)):
        mask = instances == k + 1
        if mask.any():
            parts[mask] = (
                _person_parts(mask, labelled[k], probs, cfg)[mask]
                if probs is not None
                else derive_parts(mask, labelled[k])[mask]
            )
    if probs is not None:  # background the teacher is unsure of: ignore
        ignore |= (instances == 0) & ((top < cfg.part_threshold) | (probs[0] < 0.5))
    parts[ignore] = IGNORE
    confidence = np.round(top * 254).astype(np.uint8)
    confidence[ignore] = IGNORE
    has_mask = np.array([(instances == k + 1).any() for k in range(len(kps))], bool)
    scene = Scene(
        image=image,
        parts=parts,
        instances=instances,
        keypoints=labelled,
        track_ids=np.arange(len(kps), dtype=np.int64),
        taxonomy="fine",
        ignore=ignore if ignore.any() else None,
    )
    return Fused(scene, confidence, kps[..., 2].copy(), scores, has_mask)
