"""The real evaluation on the shared labelled samples and a small clip, with a tiny
random student and fake teachers: every system gets every key, a perfect teacher
scores what it should, and the clip figures count people and empty frames."""

from __future__ import annotations

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from configs import load_config
from configs.records import Prediction
from nets.model import InferenceModel, build_model
from tests.trainers.fake_teachers import FakeParse, FakePose, Person
from trainers.evaluate import main
from trainers.real_eval import (
    FORMATS,
    Systems,
    agreement,
    evaluate_real,
    format_real,
    mirrored_back,
    score_clips,
    score_samples,
    student_predictor,
)

needs_samples = pytest.mark.skipif(
    not FORMATS.is_dir(), reason=f"real data-set samples not found at {FORMATS}"
)
KEYS = {"OKS_AP", "AP50", "mask_IoU", "part_mIoU"}


def tiny_student() -> InferenceModel:
    cfg = load_config()
    cfg["input_size"] = 64
    cfg["model"].update(fpn_channels=8, head_channels=8)
    torch.manual_seed(0)
    return InferenceModel(build_model(cfg).eval(), cfg).eval()


def write_clip(path: Path, frames: int) -> None:
    rng = np.random.default_rng(1)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for _ in range(frames):
            image = rng.integers(0, 255, (64, 96, 3), np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, "rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@needs_samples
def test_real_evaluation_every_system_every_key(tmp_path):
    torch.set_num_threads(1)
    write_clip(tmp_path / "a.mp4", 4)
    person = Person((0.2, 0.1, 0.6, 0.9))
    systems = Systems(student_predictor(tiny_student()), FakePose([person]),
                      FakeParse([person]))  # fmt: skip
    result = evaluate_real(
        systems, FORMATS, [tmp_path / "a.mp4"], per_clip=2, pictures=tmp_path / "g"
    )
    picture = cv2.imread(str(tmp_path / "g" / "a.png"))
    assert picture is not None and picture.shape[0] > 4 * 64  # 4 systems stacked
    assert result["student"].keys() >= KEYS
    assert set(result["teachers"]) == {"fake_pose", "fake_parse", "fusion"}
    for metrics in [result["student"], *result["teachers"].values()]:
        for key in ("OKS_AP", "AP50"):
            assert 0.0 <= metrics[key] <= 1.0
    pose = result["teachers"]["fake_pose"]
    assert pose["mask_IoU"] is None and pose["part_mIoU"] is None  # it gives neither
    parse = result["teachers"]["fake_parse"]
    assert 0.0 < parse["mask_IoU"] < 1.0 and 0.0 < parse["part_mIoU"] < 1.0
    clips = result["clips"]
    assert clips["frames"] == {"a.mp4": 2}
    assert clips["people_per_frame"]["fake_pose"] == 1.0
    assert clips["people_per_frame"]["fusion"] == 1.0
    assert clips["people_per_clip"]["a.mp4"] == clips["people_per_frame"]
    assert clips["empty_frames"] == 0 and clips["empty_frames_clean"] is None
    assert "| fusion |" in format_real(result)
    assert "| a.mp4 | " in format_real(result)
    json.dumps(result)


@needs_samples
def test_photographs_are_scored_with_the_still_student(tmp_path):
    """`Systems.still` (the student at the pipeline's still-image size) answers on the
    labelled samples, the streaming student on the clips' frames."""
    write_clip(tmp_path / "a.mp4", 2)
    (tmp_path / "coco").symlink_to(FORMATS / "coco")  # the COCO samples alone
    seen: dict[str, set] = {"stream": set(), "still": set()}

    def nobody(kind: str):
        def run(image: np.ndarray) -> Prediction:
            seen[kind].add(image.shape[:2])
            h, w = image.shape[:2]
            empty = np.zeros((h, w), np.uint8)
            return Prediction(empty, empty, np.zeros((0, 17, 3), np.float32), [])

        return run

    person = Person((0.2, 0.1, 0.6, 0.9))
    systems = Systems(nobody("stream"), FakePose([person]), FakeParse([person]),
                      still=nobody("still"))  # fmt: skip
    evaluate_real(systems, tmp_path, [tmp_path / "a.mp4"], per_clip=2)
    assert seen["stream"] == {(64, 96)}
    assert seen["still"] and (64, 96) not in seen["still"]


@needs_samples
def test_mirrored_draw_of_a_mirror_true_system_is_its_first_draw(tmp_path):
    """A system that answers with the ground truth of what it sees (mirrored when the
    image is) scores the same on both draws: the mirroring back swaps sides and x
    exactly. A system blind to the mirror (the first draw's answer, always) does not."""
    from trainers.datasets import open_dataset

    scenes = list(open_dataset(f"coco:{FORMATS / 'coco/test_coco.json'}"))

    def truth(image: np.ndarray, blind: bool = False) -> Prediction:
        for scene in scenes:
            for flipped in (False, True):
                seen = scene.image[:, ::-1] if flipped else scene.image
                if seen.shape == image.shape and np.array_equal(seen, image):
                    kps = np.asarray(scene.keypoints, np.float32).copy()
                    kps[..., 2] = np.where(kps[..., 2] > 0, 1.0, 0.0)
                    if flipped and not blind:
                        kps = mirrored_back(
                            Prediction(None, None, kps, []), seen.shape[1]
                        ).keypoints
                    scores = np.ones(len(kps), np.float32)
                    return Prediction(scene.parts, scene.instances, kps, scores)
        raise AssertionError("unknown image")

    (tmp_path / "coco").symlink_to(FORMATS / "coco")  # the COCO samples alone
    systems = {"true": truth, "blind": lambda im: truth(im, True)}
    out = score_samples(systems, tmp_path)
    true, blind = out["true"], out["blind"]
    assert true["OKS_AP"] > 0.8  # not 1: people without joints are false positives
    assert true["OKS_AP_mirrored"] == pytest.approx(true["OKS_AP"])
    assert true["AP50_mirrored"] == pytest.approx(true["AP50"])
    assert blind["OKS_AP"] == pytest.approx(true["OKS_AP"])
    assert blind["OKS_AP_mirrored"] < true["OKS_AP"] - 0.3


def test_empty_frames_and_agreement(tmp_path):
    write_clip(tmp_path / "a.mp4", 3)
    nobody = Prediction(np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((0, 17, 3)),
                        np.zeros(0))  # fmt: skip
    systems = {"student": lambda im: nobody, "p": lambda im: nobody,
               "q": lambda im: nobody}  # fmt: skip
    clips = score_clips(systems, [tmp_path / "a.mp4"], per_clip=3)
    assert clips["empty_frames"] == 3 and clips["empty_frames_clean"] == 1.0
    pose = FakePose([Person((0.1, 0.1, 0.5, 0.9))])(np.zeros((64, 96, 3), np.uint8))
    assert agreement(pose.keypoints, pose.keypoints) == pytest.approx([1.0])
    assert agreement(np.zeros((0, 17, 3)), pose.keypoints) == [0.0]


def test_people_per_clip(tmp_path):
    """Each clip's own people per frame: a system that sees one person on the first
    clip's 3 frames and nobody on the second's 2 reads 1 and 0 there, 0.6 overall."""
    write_clip(tmp_path / "a.mp4", 3)
    write_clip(tmp_path / "b.mp4", 2)
    person = FakePose([Person((0.1, 0.1, 0.5, 0.9))])(np.zeros((64, 96, 3), np.uint8))
    one = Prediction(np.zeros((1, 1)), np.zeros((1, 1)), person.keypoints,
                     np.ones(1))  # fmt: skip
    nobody = Prediction(np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((0, 17, 3)),
                        np.zeros(0))  # fmt: skip
    calls = []

    def first_clip_only(image: np.ndarray) -> Prediction:
        calls.append(1)
        return one if len(calls) <= 3 else nobody

    systems = {"student": first_clip_only, "p": lambda im: nobody}
    clips = score_clips(systems, [tmp_path / "a.mp4", tmp_path / "b.mp4"], per_clip=3)
    assert clips["people_per_clip"] == {
        "a.mp4": {"student": 1.0, "p": 0.0},
        "b.mp4": {"student": 0.0, "p": 0.0},
    }
    assert clips["people_per_frame"]["student"] == pytest.approx(0.6)


def test_bad_clips_folder_one_line(tmp_path, capsys):
    from tests.trainers.test_evaluate import tiny_checkpoint

    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    code = main(["--checkpoint", str(ckpt), "--data", "real",
                 "--clips", str(tmp_path / "none")])  # fmt: skip
    assert code == 2 and capsys.readouterr().err.count("\n") == 1
