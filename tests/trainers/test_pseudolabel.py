"""Pseudo-labels with fake teachers: the fusion keeps what both teachers agree on and
ignores what they dispute, the folder reads back through the one loader path
(`pseudo:DIR`), a second run resumes, and validation clips are never labelled."""

from __future__ import annotations

import json

import av
import cv2
import numpy as np
import pytest

from configs import ConfigError, real_clips
from tests.trainers.fake_teachers import FINE, KP, FakeParse, FakePose, Person
from trainers.datasets import open_dataset
from trainers.fusion import FusionConfig, fuse
from trainers.pseudolabel import label, list_sources, main

H, W = 120, 160
SEEN = Person((0.1, 0.1, 0.35, 0.95), joint_scores={"left_wrist": 0.2})
DISPUTED = Person((0.6, 0.1, 0.85, 0.95), score=0.8)  # only the parsing teacher


def teachers() -> tuple[FakePose, FakeParse]:
    return FakePose([SEEN]), FakeParse([SEEN, DISPUTED])


def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (H, W, 3), np.uint8)


def test_fusion_keeps_agreement_and_ignores_disputes():
    pose, parse = teachers()
    img = image()
    fused = fuse(img, pose(img), parse(img))
    scene = fused.scene
    assert scene.num_people == 1 and fused.has_mask.tolist() == [True]
    kp = scene.keypoints[0]
    assert kp[KP["left_wrist"], 2] == 0  # under the joint threshold: unlabelled...
    wx, wy = pose(img).keypoints[0, KP["left_wrist"], :2].astype(int)
    assert scene.ignore[wy, wx] and fused.confidence[wy, wx] == 255  # ...and ignored
    assert (kp[np.arange(17) != KP["left_wrist"], 2] == 2).all()
    # the person only one teacher sees is ignore, not background and not a person
    assert scene.ignore[60, 115] and scene.instances[60, 115] == 0
    assert scene.instances[80, 35] == 1 and scene.parts[80, 35] == FINE.index("torso")
    head = scene.parts[scene.instances == 1]
    assert {FINE.index("face"), FINE.index("hair")} <= set(head.tolist())
    assert not scene.ignore[5, 75] and scene.parts[5, 75] == 0  # sure background


def write_inputs(folder):
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"photo{i}.png"), image())
    with av.open(str(folder / "clip.mp4"), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for _ in range(6):
            frame = av.VideoFrame.from_ndarray(image(), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    held_out = real_clips()["validation"][0]
    (folder / held_out).write_bytes((folder / "clip.mp4").read_bytes())


def test_label_round_trip_through_loader_and_resume(tmp_path):
    write_inputs(tmp_path / "in")
    sources, skipped = list_sources([tmp_path / "in"])
    assert [p.name for p in skipped] == [real_clips()["validation"][0]]
    out = tmp_path / "out"
    stats = label(sources, out, *teachers(), every=2, max_side=100)
    assert stats["labelled"] == 5 and stats["people"] == 5  # 2 photos + frames 0, 2, 4
    data = json.loads((out / "annotations.json").read_text())
    assert len(data["images"]) == 5 and data["part_taxonomy"]["name"] == "fine"
    ann = data["annotations"][0]
    assert len(ann["keypoint_scores"]) == 17 and ann["keypoint_scores"][9] == 0.2
    scenes = list(open_dataset(f"pseudo:{out}"))
    assert len(scenes) == 5
    for scene in scenes:
        assert max(scene.image.shape[:2]) == 100  # scaled to --max-side
        assert scene.num_people == 1 and scene.ignore is not None
        assert scene.keypoints[0, KP["left_wrist"], 2] == 0
        assert (scene.parts[scene.instances == 1] == FINE.index("torso")).any()
    soft = open_dataset(f"pseudo:{out},soft=0.5")[0]
    wrist = soft.keypoints[0, KP["left_wrist"]]  # scored 0.2: a soft joint
    assert wrist[2] == 0.5
    assert wrist[:2].tolist() == pytest.approx(ann["keypoints"][27:29])
    assert (soft.keypoints[0, :, 2] >= 1).sum() == (
        scenes[0].keypoints[0, :, 2] >= 1
    ).sum()
    again = label(sources, out, *teachers(), every=2, max_side=100)
    assert again["labelled"] == 0 and again["resumed_past"] == 5
    assert len(json.loads((out / "annotations.json").read_text())["images"]) == 5


def test_frames_without_people_are_kept(tmp_path):
    write_inputs(tmp_path / "in")
    sources, _ = list_sources([tmp_path / "in" / "photo0.png"])
    label(sources, tmp_path / "out", FakePose([]), FakeParse([]))
    (scene,) = open_dataset(f"pseudo:{tmp_path / 'out'}")
    assert scene.num_people == 0 and scene.ignore is None


def test_bad_input_one_line(tmp_path, capsys):
    assert main(["--source", str(tmp_path / "nothing"), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_joint_threshold_labels_half_seen_joints_and_one_folder_one_recipe(
    tmp_path, capsys
):
    write_inputs(tmp_path / "in")
    sources, _ = list_sources([tmp_path / "in" / "photo0.png"])
    out = tmp_path / "out"
    cfg = FusionConfig(joint_threshold=0.2)
    label(sources, out, *teachers(), cfg=cfg)
    (scene,) = open_dataset(f"pseudo:{out}")
    assert scene.keypoints[0, KP["left_wrist"], 2] == 2  # scored 0.2: labelled now
    runs = [json.loads(x) for x in (out / "runs.jsonl").read_text().splitlines()]
    assert runs[-1]["recipe"] == {"joint_threshold": 0.2}
    with pytest.raises(ConfigError, match="use another --out"):
        label(sources, out, *teachers())  # the default recipe into that folder
    assert main(["--source", str(tmp_path / "in"), "--out", str(out), "--refine"]) == 2
    assert "use another --out" in capsys.readouterr().err


def test_joint_threshold_below_the_ignore_band_is_refused(tmp_path, capsys):
    args = ["--source", str(tmp_path), "--out", str(tmp_path / "o")]
    assert main([*args, "--joint-threshold", "0.05"]) == 2
    assert "--joint-threshold must be in" in capsys.readouterr().err
