"""`python -m trainers.synth` output: COCO JSON for pycocotools, equal to the maps."""

import json

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from trainers.synth import generate_scene, generate_video, load_coco_export
from trainers.synth.__main__ import main
from trainers.synth.coco_export import mask_to_rle, rle_to_mask
from trainers.synth.compose import scene_seed


def test_rle_round_trip_compressed_and_uncompressed():
    mask = np.random.default_rng(0).random((37, 51)) > 0.6
    rle = mask_to_rle(mask)
    assert isinstance(rle["counts"], str)
    assert np.array_equal(rle_to_mask(json.loads(json.dumps(rle))), mask)
    runs = {"size": [2, 3], "counts": [1, 2, 3]}  # column-major: 0, 1 1, 0 0 0
    assert rle_to_mask(runs).T.reshape(-1).tolist() == [0, 1, 1, 0, 0, 0]


@pytest.fixture(scope="module")
def still(tmp_path_factory):
    out = tmp_path_factory.mktemp("still")
    args = ["--out", str(out), "--count", "3", "--size", "128", "--people", "2:6"]
    assert main([*args, "--seed", "4", "--preview"]) == 0
    return out


def test_export_loads_in_pycocotools_and_masks_match_the_pngs(still):
    coco = COCO(str(still / "annotations.json"))
    cat = coco.loadCats(1)[0]
    assert len(cat["keypoints"]) == 17 and min(min(e) for e in cat["skeleton"]) == 1
    assert len(coco.getImgIds()) == 3
    for img in coco.loadImgs(coco.getImgIds()):
        stem = img["file_name"][:-4]
        inst = cv2.imread(
            str(still / "instances" / f"{stem}.png"), cv2.IMREAD_UNCHANGED
        )
        parts = cv2.imread(str(still / "parts" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        assert inst.dtype == np.uint16 and parts.dtype == np.uint8
        assert np.array_equal(inst > 0, parts > 0)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))
        assert len(anns) == int(inst.max())
        for ann in anns:
            mask = inst == ann["instance_id"]
            assert np.array_equal(coco.annToMask(ann).astype(bool), mask)
            assert ann["area"] == mask.sum() and ann["iscrowd"] == 0
            kp = np.array(ann["keypoints"]).reshape(17, 3)
            assert ann["num_keypoints"] == int((kp[:, 2] > 0).sum())
            x, y, w, h = ann["bbox"]
            assert mask[y : y + h, x : x + w].sum() == mask.sum()


def test_export_reads_back_as_the_generated_scenes(still):
    loaded = list(load_coco_export(still))
    assert len(loaded) == 3
    for i, scene in enumerate(loaded):
        ref = generate_scene(scene_seed(4, i), 128, (2, 6))
        assert np.array_equal(scene.parts, ref.parts)
        assert np.array_equal(scene.instances, ref.instances)
        assert np.array_equal(scene.track_ids, ref.track_ids)
        assert np.allclose(scene.keypoints, ref.keypoints, atol=0.006)
        diff = np.abs(scene.image.astype(int) - ref.image).mean()
        assert diff < 4  # stored as JPEG
    assert len(list((still / "preview").glob("*.png"))) == 3


def test_video_export_has_frames_videos_and_track_ids(tmp_path):
    args = ["--out", str(tmp_path), "--video", "--count", "1", "--frames", "4"]
    assert main([*args, "--size", "96", "--people", "2:3", "--seed", "1"]) == 0
    data = json.loads((tmp_path / "annotations.json").read_text())
    assert data["videos"] == [{"id": 0, "nframes": 4}]
    assert [im["frame_id"] for im in data["images"]] == [0, 1, 2, 3]
    ref = list(generate_video(scene_seed(1, 0), 96, 4, (2, 3)))
    for scene, want in zip(load_coco_export(tmp_path), ref, strict=True):
        assert np.array_equal(scene.track_ids, want.track_ids)


@pytest.mark.parametrize(
    "bad",
    [
        ["--people", "3:1"],
        ["--count", "0"],
        ["--size", "big"],
        ["--backgrounds", "/no/such/folder"],
        ["--fps", "0", "--video"],
        ["--seed", "-1"],
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, capsys, bad):
    with pytest.raises(SystemExit) as exc:
        main(["--out", str(tmp_path / "x"), *bad])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m trainers.synth: error:") and "\n" not in err
