"""Images in, COCO results out: --source takes an image, a folder or a glob, and
--results-json writes what pycocotools' loadRes reads and COCOeval scores against a
real COCO ground-truth file; part and person maps beside it."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as coco_mask

import run_stream
from configs.errors import StageError
from pipeline.engine.messages import FramePeople, frame_message
from pipeline.io.results import ResultsSink
from pipeline.io.source import ImageSource, image_paths

ROOT = Path(__file__).resolve().parents[2]
COCO_DIR = ROOT.parent / "shared" / "data" / "formats" / "coco"


def people_frame(index: int, name: str | None) -> object:
    """Two people on a 40 x 60 frame: person 1 a 10 x 20 block, person 2 a 5 x 5."""
    image = np.zeros((40, 60, 3), np.uint8)
    msg = frame_message(image, index, 0.0, None, 10.0)
    if name:
        msg.header["name"] = name
    instances = np.zeros((40, 60), np.uint16)
    parts = np.zeros((40, 60), np.uint8)
    instances[5:25, 10:20], parts[5:25, 10:20] = 1, 3
    instances[30:35, 40:45], parts[30:35, 40:45] = 2, 1
    kps = np.zeros((2, 17, 3), np.float32)
    kps[0, 0] = (12.5, 6.0, 0.8)
    msg.people = FramePeople(
        instances=instances,
        parts=parts,
        keypoints=kps,
        scores=np.array([0.9, 0.2], np.float32),
        boxes=np.array([[10, 5, 20, 25], [40, 30, 45, 35]], np.float32),
        track_ids=np.array([4, -1]),
    )
    return msg


def test_results_sink_writes_coco_records_and_maps(tmp_path):
    path = tmp_path / "res.json"
    sink = ResultsSink(path)
    sink.part_names = ["background", "hair", "face", "torso"]
    sink.check()
    sink.open()
    sink.write(people_frame(0, "000000000785.jpg"))
    sink.write(people_frame(1, "holiday.png"))
    sink.write(people_frame(7, None))  # a video frame
    assert sink.close() == {"path": str(path), "frames": 3, "people": 6}
    records = json.loads(path.read_text())
    assert [r["image_id"] for r in records] == [785, 785, 1, 1, 7, 7]
    first = records[0]
    assert first["bbox"] == [10, 5, 10, 20] and first["score"] == 0.9
    assert first["keypoints"][:3] == [12.5, 6.0, 0.8] and len(first["keypoints"]) == 51
    assert first["track_id"] == 4 and first["instance"] == 1
    mask = coco_mask.decode(first["segmentation"])
    assert mask.shape == (40, 60) and mask.sum() == 200 and mask[5:25, 10:20].all()
    maps = tmp_path / "res_maps"
    parts = cv2.imread(str(maps / "000000000785_parts.png"), cv2.IMREAD_UNCHANGED)
    people = cv2.imread(str(maps / "frame000007_people.png"), cv2.IMREAD_UNCHANGED)
    assert parts.dtype == np.uint8 and parts[10, 15] == 3 and parts[32, 42] == 1
    assert people.dtype == np.uint16 and set(np.unique(people)) == {0, 1, 2}
    assert json.loads((maps / "parts.json").read_text())["3"] == "torso"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res.json", "res_maps"]


def test_results_of_a_run_without_frames_keep_the_earlier_file(tmp_path):
    path = tmp_path / "res.json"
    path.write_text("[]")
    sink = ResultsSink(path)
    sink.open()
    assert sink.close()["frames"] == 0
    assert path.read_text() == "[]"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res.json"]
    with pytest.raises(StageError, match="give a .json path"):
        ResultsSink(tmp_path / "res.txt").check()


def test_image_source_reads_a_file_a_folder_or_a_glob(tmp_path):
    for name, size in (("b.png", (30, 40)), ("a.jpg", (20, 10)), ("notes.txt", None)):
        if size:
            cv2.imwrite(str(tmp_path / name), np.full((*size, 3), 7, np.uint8))
        else:
            (tmp_path / name).write_text("not an image")
    assert [p.name for p in image_paths(str(tmp_path))] == ["a.jpg", "b.png"]
    assert [p.name for p in image_paths(str(tmp_path / "*.png"))] == ["b.png"]
    assert image_paths(str(tmp_path / "a.jpg")) == [tmp_path / "a.jpg"]
    assert image_paths("clip.mp4") is None
    source = ImageSource(str(tmp_path))
    source.open()
    frames = list(source.frames())
    assert [f.header["name"] for f in frames] == ["a.jpg", "b.png"]
    assert [f.image.shape for f in frames] == [(20, 10, 3), (30, 40, 3)]
    assert not source.live and source.total == 2


@pytest.mark.parametrize(
    "spec, message",
    [
        ("missing.jpg", "no such image file: "),
        ("empty", "no images in "),
        ("empty/*.png", "no images in "),
    ],
)
def test_no_images_is_one_line(tmp_path, capsys, monkeypatch, spec, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    assert run_stream.main(["--source", spec, "--results-json", "r.json"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {message}{spec}"]


@pytest.mark.skipif(not COCO_DIR.is_dir(), reason="needs ../shared/data/formats/coco")
def test_a_folder_of_coco_images_scores_with_pycocotools(tmp_path, capsys):
    """The issue's 'Done when': the shipped model on four COCO val2017 photos; the
    file loads in loadRes and COCOeval scores it (keypoints, masks, boxes)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    out = tmp_path / "results.json"
    code = run_stream.main(
        ["--source", str(COCO_DIR), "--results-json", str(out), "--quiet"]
    )
    assert code == 0
    assert f"wrote {out} (4 frames)" in capsys.readouterr().out
    records = json.loads(out.read_text())
    assert records, "the shipped model found nobody on four COCO photos"
    gt = COCO(str(COCO_DIR / "test_coco.json"))
    dt = gt.loadRes(str(out))
    assert set(dt.getImgIds()) <= set(gt.getImgIds())
    for iou_type in ("keypoints", "segm", "bbox"):
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        assert 0.0 <= ev.stats[0] <= 1.0, iou_type
    for image in gt.dataset["images"]:
        stem = Path(image["file_name"]).stem
        parts = cv2.imread(
            str(tmp_path / "results_maps" / f"{stem}_parts.png"), cv2.IMREAD_UNCHANGED
        )
        assert parts.shape == (image["height"], image["width"])
