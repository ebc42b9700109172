"""The student beside its teachers on real people: `trainers.evaluate --data real`.

Two parts, every system scored in the same run on the same images:

- Labelled samples (../shared/data/formats): OKS AP and AP50 by pycocotools over every
  image with COCO-17 keypoints (COCO, OCHuman, PoseTrack18), person-mask IoU (person vs
  background, pixels summed over COCO, OCHuman and CIHP), and part mIoU on CIHP in the
  coarse set `coarse5` (background, head, torso, arms, legs; configs/parts.yaml).
  Every system sees the whole image: the student letterboxed into its input (at the
  size the pipeline gives still images, `pipeline.still_scale`, unless `--input-size`
  says), its maps and joints scaled back; the teachers at their own input sizes. OKS
  AP and AP50 are also scored on the mirrored images, the answers mirrored back
  (`OKS_AP_mirrored`, `AP50_mirrored`): a second draw of the same system on the same
  people, so a difference between systems can be read against the spread between the
  draws (about 30 people: one model moved 3 points).
- Clips without labels (the validation clips of configs/real_clips.yaml, or any folder
  of videos): people per frame (people scoring >= `PERSON_SCORE`, the score that starts
  a track in the pipeline; overall and per clip), the student's agreement with each
  teacher (for each teacher person, the OKS of the best student person, 0 when none;
  averaged), and on frames where both teachers see nobody, the fraction where the
  student decodes nobody.

The teachers' fusion (trainers.fusion, what the pseudo-labels are) is scored as one
more teacher, named "fusion".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from configs import ConfigError, real_clips
from configs.records import Prediction, Scene
from nets.model import InferenceModel
from nets.similarity import oks, pose_areas
from trainers.augment import mirror_keypoints
from trainers.datasets import open_dataset
from trainers.datasets.common import map_parts
from trainers.fusion import fuse
from trainers.metrics import miou, oks_aps
from trainers.plots import as_scene
from trainers.pseudolabel import VIDEO_EXT, frame_count, frames, to_rgb
from trainers.synth.preview import preview
from trainers.teachers import Teacher, TeacherOutput

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FORMATS = SHARED / "formats"
CLIPS = SHARED / "real" / "videos"
PERSON_SCORE = 0.3
COARSE = "coarse5"

# (kind, path under the formats folder, what it scores)
SAMPLES = (
    ("coco", "coco/test_coco.json", ("keypoints", "mask")),
    ("ochuman", "ochuman/test_ochuman.json", ("keypoints", "mask")),
    ("posetrack18", "posetrack18/annotations/val", ("keypoints",)),
    ("cihp", "cihp", ("mask", "parts")),
)

Predictor = Callable[[np.ndarray], Prediction]


@dataclass
class Systems:
    """What is scored: the student and the two teachers (pose, parsing) by name;
    `still`, when given, is the student as it runs on photographs (the pipeline's
    still-image size), scored on the labelled samples in `student`'s place."""

    student: Predictor
    pose: Teacher
    parse: Teacher
    still: Predictor | None = None

    def teachers(self) -> dict[str, Predictor]:
        """Each teacher, and their fusion, as predictors in the image's grid; each
        teacher runs once per image (the fusion reuses its outputs)."""
        last: dict[str, Any] = {}

        def outputs(image: np.ndarray) -> tuple[TeacherOutput, TeacherOutput]:
            if last.get("image") is not image:
                last.update(image=image, out=(self.pose(image), self.parse(image)))
            return last["out"]

        return {
            self.pose.name: lambda im: teacher_prediction(outputs(im)[0], im.shape[:2]),
            self.parse.name: lambda im: teacher_prediction(
                outputs(im)[1], im.shape[:2]
            ),
            "fusion": lambda im: fusion_prediction(im, *outputs(im)),
        }


def student_predictor(model: InferenceModel, size: int | None = None) -> Predictor:
    """The student on any image: letterboxed into its input (`size`, default its
    config's), results mapped back."""
    from trainers.evaluate import blank_scene, letterbox, predict

    size = size or int(model.cfg["input_size"])
    taxonomy = model.cfg["model"]["taxonomy"]

    def run(image: np.ndarray) -> Prediction:
        h, w = image.shape[:2]
        pred = predict(model, [letterbox(blank_scene(image, taxonomy), size)])[0]
        factor = size / max(h, w)
        nh, nw = max(1, round(h * factor)), max(1, round(w * factor))

        def back(m: np.ndarray, dtype: type) -> np.ndarray:
            fitted = np.ascontiguousarray(m[:nh, :nw].astype(dtype))
            return cv2.resize(fitted, (w, h), interpolation=cv2.INTER_NEAREST)

        kps = pred.keypoints.copy()
        kps[..., 0] *= w / nw
        kps[..., 1] *= h / nh
        parts = map_parts(back(pred.parts, np.uint8), taxonomy, "fine")
        return Prediction(parts, back(pred.instances, np.uint16), kps, pred.scores)

    return run


def teacher_prediction(out: TeacherOutput, shape: tuple[int, int]) -> Prediction:
    """A teacher's answer as a Prediction: parts are the most probable class (0 when
    the teacher gives none), instances 0 when it gives no masks."""
    h, w = shape
    parts = (
        np.zeros((h, w), np.uint8)
        if out.part_probs is None
        else np.argmax(out.part_probs, 0).astype(np.uint8)
    )
    instances = np.zeros((h, w), np.uint16) if out.instances is None else out.instances
    kps = np.asarray(out.keypoints, np.float32).reshape(-1, 17, 3)
    return Prediction(parts, instances, kps, np.asarray(out.scores, np.float32))


def fusion_prediction(
    image: np.ndarray, pose: TeacherOutput, parse: TeacherOutput
) -> Prediction:
    """The pseudo-label as a prediction: part-ignore pixels count as background, joints
    carry the pose teacher's scores."""
    fused = fuse(image, pose, parse)
    scene = fused.scene
    kps = scene.keypoints.copy()
    kps[..., 2] = np.where(kps[..., 2] > 0, fused.keypoint_scores, 0.0)
    parts = np.where(scene.parts == 255, 0, scene.parts).astype(np.uint8)
    return Prediction(parts, scene.instances, kps, fused.scores)


def mirrored_back(pred: Prediction, width: int) -> Prediction:
    """The keypoints of a prediction made on the mirrored image, in the original one
    (`mirror_keypoints`). Maps are not mirrored back: only keypoints are scored on the
    mirrored draw."""
    kps = mirror_keypoints(pred.keypoints, width)
    return Prediction(pred.parts, pred.instances, kps, pred.scores)


def _foreground(pred: Prediction) -> np.ndarray:
    return (pred.parts > 0) | (pred.instances > 0)


def _coarse(pred: Prediction) -> Prediction:
    parts = map_parts(pred.parts.astype(np.uint8), "fine", COARSE)
    return Prediction(parts, pred.instances, pred.keypoints, pred.scores)


class _Tally:
    """One system's predictions and pixel counts over the labelled samples."""

    def __init__(self) -> None:
        self.kp_preds: list[Prediction] = []
        self.kp_gts: list[Scene] = []
        self.part_preds: list[Prediction] = []
        self.part_gts: list[Scene] = []
        self.inter = self.union = 0
        self.has_masks = self.has_parts = False

    def add(self, pred: Prediction, gt: Scene, scores: Sequence[str]) -> None:
        if "keypoints" in scores:
            self.kp_preds.append(pred)
            self.kp_gts.append(gt)
        fg = _foreground(pred)
        self.has_masks |= bool(fg.any())
        self.has_parts |= bool((pred.parts > 0).any())
        if "mask" in scores:
            truth = (gt.instances > 0) | ((gt.parts > 0) & (gt.parts != 255))
            valid = np.ones_like(truth) if gt.ignore is None else ~gt.ignore
            self.inter += int((fg & truth & valid).sum())
            self.union += int(((fg | truth) & valid).sum())
        if "parts" in scores:
            self.part_preds.append(_coarse(pred))
            self.part_gts.append(gt)

    def oks_aps(self) -> tuple[float, float]:
        """(OKS AP, AP50) over the keypoint samples added, 0 without any."""
        return oks_aps(self.kp_preds, self.kp_gts) if self.kp_gts else (0.0, 0.0)

    def metrics(self) -> dict[str, Any]:
        ap, ap50 = self.oks_aps()
        out: dict[str, Any] = {"OKS_AP": ap, "AP50": ap50}
        out["mask_IoU"] = self.inter / self.union if self.has_masks else None
        if self.has_parts and self.part_gts:
            mean, per_class = miou(self.part_preds, self.part_gts, COARSE)
            out["part_mIoU"], out["part_IoU"] = mean, per_class
        else:
            out["part_mIoU"] = None
        return out


def score_samples(
    systems: dict[str, Predictor], formats: Path = FORMATS
) -> dict[str, dict[str, Any]]:
    """Every system's metrics on the labelled samples (module docstring)."""
    data = []
    for kind, rel, scores in SAMPLES:
        if (formats / rel).exists():
            data += [
                (scene, scores) for scene in open_dataset(f"{kind}:{formats / rel}")
            ]
    if not data:
        raise ConfigError(f"no labelled samples under {formats}")
    tallies = {name: _Tally() for name in systems}
    mirrored = {name: _Tally() for name in systems}
    for scene, scores in tqdm(data, desc="real samples", unit="image"):
        flipped = np.ascontiguousarray(scene.image[:, ::-1])
        for name, system in systems.items():
            tallies[name].add(system(scene.image), scene, scores)
            if "keypoints" in scores:
                back = mirrored_back(system(flipped), scene.image.shape[1])
                mirrored[name].add(back, scene, ("keypoints",))
    out = {name: t.metrics() for name, t in tallies.items()}
    for name, metrics in out.items():
        metrics["images"] = len(data)
        metrics["OKS_AP_mirrored"], metrics["AP50_mirrored"] = mirrored[name].oks_aps()
    return out


def clip_files(folder: Path | None) -> list[Path]:
    """Videos of `folder`, or the validation clips (configs/real_clips.yaml)."""
    if folder is not None:
        if not folder.is_dir():
            raise ConfigError(f"--clips: not a folder: {folder}")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_EXT)
    else:
        files = [CLIPS / name for name in real_clips()["validation"]]
        files = [p for p in files if p.is_file()]
    if not files:
        raise ConfigError(f"no videos in {folder or CLIPS}")
    return files


def _people(pred: Prediction) -> np.ndarray:
    return pred.keypoints[np.asarray(pred.scores) >= PERSON_SCORE]


def agreement(student: np.ndarray, teacher: np.ndarray) -> list[float]:
    """Per teacher person, the OKS of the best-matching student person (0 if none)."""
    if len(teacher) == 0:
        return []
    if len(student) == 0:
        return [0.0] * len(teacher)
    sim = oks(teacher, student, pose_areas(teacher)[:, None].repeat(len(student), 1))
    return sim.max(1).tolist()


def gallery(image: np.ndarray, preds: dict[str, Prediction]) -> np.ndarray:
    """One RGB picture: a row per system (image | parts | people | skeletons), named."""
    rows = []
    for name, pred in preds.items():
        row = preview(as_scene(pred, image, "fine"))
        cv2.putText(row, name, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 0), 2)
        rows.append(row)
    return np.concatenate(rows, 0)


def score_clips(
    systems: dict[str, Predictor],
    files: list[Path],
    per_clip: int,
    max_side: int = 640,
    pictures: Path | None = None,
) -> dict[str, Any]:
    """People per frame (overall and per clip, so a shortfall can be traced to the
    footage that causes it), agreement and empty-frame behaviour on `per_clip` evenly
    spaced frames of each video. `systems` holds "student" and the teachers ("fusion"
    too). With `pictures`, the middle frame of each clip is drawn there (`gallery`)."""
    counts: dict[str, list[int]] = {name: [] for name in systems}
    agree: dict[str, list[float]] = {n: [] for n in systems if n != "student"}
    empty = clean = 0
    per_file: dict[str, int] = {}
    per_clip_people: dict[str, dict[str, float]] = {}
    for path in tqdm(files, desc="clips", unit="clip"):
        n = frame_count(path, 1)
        every = max(1, n // per_clip) if n else 1
        used = 0
        for _, frame in frames(path, every):
            if used == per_clip:
                break
            used += 1
            image = to_rgb(frame, max_side)
            preds = {name: system(image) for name, system in systems.items()}
            people = {name: _people(pred) for name, pred in preds.items()}
            if pictures is not None and used == (per_clip + 1) // 2:
                pictures.mkdir(parents=True, exist_ok=True)
                picture = gallery(image, preds)[:, :, ::-1]
                cv2.imwrite(str(pictures / f"{path.stem}.png"), picture)
            for name, kps in people.items():
                counts[name].append(len(kps))
            for name in agree:
                agree[name] += agreement(people["student"], people[name])
            teachers = [n for n in agree if n != "fusion"]
            if all(len(people[n]) == 0 for n in teachers):
                empty += 1
                clean += len(people["student"]) == 0
        per_file[path.name] = used
        per_clip_people[path.name] = {
            n: float(np.mean(c[len(c) - used :])) if used else 0.0
            for n, c in counts.items()
        }
    return {
        "people_per_frame": {
            n: float(np.mean(c)) if c else 0.0 for n, c in counts.items()
        },
        "agreement_oks": {
            n: float(np.mean(a)) if a else None for n, a in agree.items()
        },
        "empty_frames": empty,
        "empty_frames_clean": clean / empty if empty else None,
        "frames": per_file,
        "people_per_clip": per_clip_people,
        "person_score": PERSON_SCORE,
    }


def evaluate_real(
    systems: Systems,
    formats: Path = FORMATS,
    clips: list[Path] | None = None,
    per_clip: int = 10,
    pictures: Path | None = None,
) -> dict[str, Any]:
    """The JSON of `trainers.evaluate --data real` (module docstring); `pictures`: a
    folder for one drawn frame per clip, every system's answer stacked."""
    every = {"student": systems.student, **systems.teachers()}
    still = {**every, "student": systems.still or systems.student}
    samples = score_samples(still, formats)
    result: dict[str, Any] = {
        "student": samples.pop("student"),
        "teachers": samples,
    }
    if clips:
        result["clips"] = score_clips(every, clips, per_clip, pictures=pictures)
    return result


def format_real(result: dict[str, Any]) -> str:
    """A table: one row per system on the samples, then the clip figures."""

    def cell(v: Any) -> str:
        return "-" if v is None else f"{100 * v:.1f}"

    rows = [("student", result["student"]), *result["teachers"].items()]
    lines = [
        "| system | OKS AP | AP50 | mirrored: OKS AP | AP50 | mask IoU "
        "| part mIoU (coarse) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in rows:
        lines.append(
            f"| {name} | {cell(m['OKS_AP'])} | {cell(m['AP50'])} | "
            f"{cell(m.get('OKS_AP_mirrored'))} | {cell(m.get('AP50_mirrored'))} | "
            f"{cell(m['mask_IoU'])} | {cell(m['part_mIoU'])} |"
        )
    clips = result.get("clips")
    if clips:
        lines.append("")
        lines.append("| system | people per frame | student agreement (OKS) |")
        lines.append("|---|---|---|")
        for name, ppf in clips["people_per_frame"].items():
            a = clips["agreement_oks"].get(name)
            lines.append(f"| {name} | {ppf:.2f} | {'-' if a is None else f'{a:.3f}'} |")
        names = list(clips["people_per_frame"])
        lines += ["", "| clip (people per frame) | " + " | ".join(names) + " |"]
        lines.append("|---" * (len(names) + 1) + "|")
        for clip, ppf in clips["people_per_clip"].items():
            row = " | ".join(f"{ppf[n]:.2f}" for n in names)
            lines.append(f"| {clip} | {row} |")
        clean = clips["empty_frames_clean"]
        lines.append(
            f"\nframes where both teachers see nobody: {clips['empty_frames']}; "
            f"student decodes nobody on {cell(clean)} % of them"
        )
    return "\n".join(lines)
