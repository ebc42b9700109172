"""Real data-set loaders on the real samples in ../shared/data/formats, and on small
files written here in the published layouts of the formats that have no sample here
(DensePose-COCO, MHP v2, PASCAL-Person-Part)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io
from PIL import Image

from configs import body, taxonomy
from configs.errors import DatasetError
from configs.records import Scene
from trainers.datasets import open_dataset, parse_spec
from trainers.datasets.cihp import instances_from_edges
from trainers.datasets.coco import decode_segmentation
from trainers.datasets.densepose import dp_grid
from trainers.datasets.parts_from_keypoints import derive_parts, skeleton_person
from trainers.synth import generate_scene
from trainers.synth.coco_export import export, mask_to_rle

FORMATS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "formats"
needs_samples = pytest.mark.skipif(
    not FORMATS.is_dir(), reason=f"real data-set samples not found at {FORMATS}"
)
FINE = taxonomy("fine")["classes"]
KP = {n: i for i, n in enumerate(body()["keypoints"])}


def fine(*names: str) -> list[int]:
    return [FINE.index(n) for n in names]


def check_contract(scene: Scene) -> None:
    """What every loader owes the Scene record."""
    h, w = scene.image.shape[:2]
    assert scene.image.dtype == np.uint8 and scene.image.shape == (h, w, 3)
    assert scene.parts.dtype == np.uint8 and scene.parts.shape == (h, w)
    assert scene.instances.dtype == np.uint16 and scene.instances.shape == (h, w)
    p = scene.num_people
    assert scene.keypoints.shape == (p, 17, 3) and scene.keypoints.dtype == np.float32
    assert scene.track_ids.shape == (p,) and scene.track_ids.dtype == np.int64
    # ids 1..P, each with a pixel: nobody without a visible pixel
    assert set(np.unique(scene.instances)) - {0} == set(range(1, p + 1))
    assert (scene.parts[scene.instances == 0] == 0).all()  # background is background
    n = len(taxonomy(scene.taxonomy)["classes"])
    assert set(np.unique(scene.parts)) <= set(range(n)) | {255}
    if scene.ignore is not None:
        assert scene.ignore.dtype == bool and scene.ignore.shape == (h, w)


def coco_json(path: Path) -> dict:
    return json.loads(path.read_text())


# --- COCO ------------------------------------------------------------------------


@needs_samples
def test_coco_people_keypoints_and_masks():
    ann_file = FORMATS / "coco" / "test_coco.json"
    ds = open_dataset(f"coco:{ann_file}")
    data = coco_json(ann_file)
    assert len(ds) == 4
    by_image = {}
    for a in data["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    total = 0
    for i, scene in enumerate(ds):
        check_contract(scene)
        info = ds.images[i]
        anns = by_image[info["id"]]
        assert scene.image.shape[:2] == (info["height"], info["width"])
        assert scene.num_people == len(anns)  # every sample person has pixels
        total += scene.num_people
        for a in anns:
            raw = np.array(a["keypoints"], np.float32).reshape(17, 3)
            # the person whose keypoints these are, and its mask
            k = next(
                j
                for j in range(scene.num_people)
                if np.allclose(scene.keypoints[j], raw)
            )
            assert int((scene.keypoints[k, :, 2] > 0).sum()) == a["num_keypoints"]
            mask = decode_segmentation(a["segmentation"], info["height"], info["width"])
            # polygons decode to the area COCO states, within 2 %
            assert abs(mask.sum() - a["area"]) <= 0.02 * a["area"]
            visible = scene.instances == k + 1
            assert not (visible & ~mask).any()  # a person's pixels are its own
            assert visible.sum() >= 0.95 * mask.sum()  # overlaps take little
    assert total == 14


@needs_samples
def test_coco_derived_parts_cover_every_mask_pixel():
    ds = open_dataset(f"coco:{FORMATS / 'coco' / 'test_coco.json'}")
    arm = [i for i, n in enumerate(FINE) if "arm" in n or "hand" in n]
    leg = [i for i, n in enumerate(FINE) if "leg" in n or "foot" in n]
    wrists = same_side = 0
    for scene in ds:
        for k in range(scene.num_people):
            m = scene.instances == k + 1
            parts, kp = scene.parts[m], scene.keypoints[k]
            assert (parts != 0).all()  # every mask pixel gets a part (or ignore)
            if (kp[:, 2] == 0).all():
                assert (parts == 255).all()  # no keypoints: nothing to go by
            if (kp[:, 2] == 2).all():
                assert (parts != 255).all()  # fully labelled: every pixel decided
            for side in ("left", "right"):
                for joint, near in (("wrist", arm), ("ankle", leg)):
                    x, y, v = kp[KP[f"{side}_{joint}"]]
                    c, r = int(x), int(y)
                    if v != 2 or not m[r, c]:
                        continue
                    block = scene.parts[r - 1 : r + 2, c - 1 : c + 2]
                    block = block[m[r - 1 : r + 2, c - 1 : c + 2]]
                    assert np.isin(block, near).all(), (side, joint)
                    if joint == "wrist":
                        own = fine(f"{side}_lower_arm", f"{side}_hand")
                        wrists += block.size
                        same_side += int(np.isin(block, own).sum())
    assert wrists > 100 and same_side >= 0.9 * wrists  # hands together may swap


@needs_samples
def test_coco_parts_none_and_other_taxonomy():
    ann_file = FORMATS / "coco" / "test_coco.json"
    scene = open_dataset(f"coco:{ann_file},parts=none")[0]
    assert (scene.parts[scene.instances > 0] == 255).all()
    scene = open_dataset(f"coco:{ann_file},taxonomy=pascal6")[0]
    assert scene.taxonomy == "pascal6"
    assert set(np.unique(scene.parts[scene.instances > 0])) <= set(range(1, 7))


@needs_samples
def test_ochuman_rle_masks():
    ann_file = FORMATS / "ochuman" / "test_ochuman.json"
    ds = open_dataset(f"ochuman:{ann_file}")
    data = coco_json(ann_file)
    assert [s.num_people for s in ds] == [2, 1, 2]  # 000817, 003799, 003896
    ims = {im["id"]: im for im in data["images"]}
    for a in data["annotations"]:
        im = ims[a["image_id"]]
        assert isinstance(a["segmentation"]["counts"], str)  # compressed RLE
        mask = decode_segmentation(a["segmentation"], im["height"], im["width"])
        x, y, w, h = a["bbox"]
        # OCHuman's `area` is its box's, not the mask's
        assert a["area"] == pytest.approx(w * h)
        assert 0 < mask.sum() < 0.9 * a["area"]
        # RLE round trip through the shared helper
        assert (decode_segmentation(mask_to_rle(mask), *mask.shape) == mask).all()


def test_synthetic_export_reads_back_exactly(tmp_path):
    scenes = [generate_scene(seed, 128, (1, 3)) for seed in (0, 1)]
    path = export(scenes, tmp_path, ["s0", "s1"])
    ds = open_dataset(f"coco:{path}")  # parts=auto: the export's label PNGs
    for original, loaded in zip(scenes, ds, strict=True):
        check_contract(loaded)
        assert (loaded.instances == original.instances).all()
        assert (loaded.parts == original.parts).all()
        assert np.allclose(loaded.keypoints, original.keypoints, atol=0.01)
        assert (loaded.track_ids == original.track_ids).all()
    derived = open_dataset(f"coco:{path},parts=derive")[1]
    assert (derived.instances == scenes[1].instances).all()
    assert (derived.parts[derived.instances > 0] != 0).all()


# --- keypoints only: CrowdPose, PoseTrack18 ----------------------------------------


@needs_samples
def test_crowdpose_keypoints_map_and_drawn_masks():
    ann_file = FORMATS / "crowdpose" / "test_crowdpose.json"
    ds = open_dataset(f"crowdpose:{ann_file}")
    data = coco_json(ann_file)
    names = body()["other_keypoints"]["crowdpose"]
    for i, scene in enumerate(ds):
        check_contract(scene)
        anns = [a for a in data["annotations"] if a["image_id"] == ds.images[i]["id"]]
        kept = [a for a in anns if a["num_keypoints"] > 0]
        assert scene.num_people == len(kept)  # the unlabelled person is dropped
        assert scene.ignore is not None
        for a in kept:
            raw = np.array(a["keypoints"], np.float32).reshape(14, 3)
            expected = np.zeros((17, 3), np.float32)
            for name, row in zip(names, raw, strict=True):
                if name in KP and row[2] > 0:
                    expected[KP[name]] = row
            k = next(
                j
                for j in range(scene.num_people)
                if np.allclose(scene.keypoints[j], expected)
            )
            assert (scene.keypoints[k, :5, 2] == 0).all()  # no COCO face points
            for x, y, v in scene.keypoints[k]:
                if (
                    v > 0
                    and 0 <= x < scene.image.shape[1]
                    and 0 <= y < scene.image.shape[0]
                ):
                    # every labelled joint lies on its own drawn body or on ignore
                    assert (
                        scene.instances[int(y), int(x)] == k + 1
                        or scene.ignore[int(y), int(x)]
                    )
        for a in anns:
            if a["num_keypoints"] == 0:  # the dropped person's box is ignore
                x, y, w, h = (int(v) for v in a["bbox"])
                assert scene.ignore[y + 1 : y + h - 1, x + 1 : x + w - 1].all()


@needs_samples
def test_posetrack18_tracks_and_ignore_regions():
    root = FORMATS / "posetrack18"
    ds = open_dataset(f"posetrack18:{root / 'annotations' / 'val'}")
    data = coco_json(root / "annotations" / "test_posetrack18_val.json")
    assert len(ds) == 3
    assert [im["vid_id"] for im in ds.images] == ["003418", "009473", "012834"]
    for i, scene in enumerate(ds):
        check_contract(scene)
        info = ds.images[i]
        anns = [a for a in data["annotations"] if a["image_id"] == info["id"]]
        assert scene.num_people == len(anns)  # 1, 2 and 11 people
        assert sorted(scene.track_ids.tolist()) == sorted(a["track_id"] for a in anns)
        for a in anns:
            raw = np.array(a["keypoints"], np.float32).reshape(17, 3)
            k = int(np.flatnonzero(scene.track_ids == a["track_id"])[0])
            kp = scene.keypoints[k]
            assert (kp[1:3] == 0).all()  # head_bottom / head_top are not eyes
            keep = [j for j in range(17) if j not in (1, 2)]
            assert np.allclose(kp[keep], np.where(raw[keep, 2:] > 0, raw[keep], 0))
            assert set(np.unique(kp[:, 2])) <= {0.0, 1.0}  # PoseTrack: labelled = 1
        # the ignore regions agree with the data set's own rendered mask
        regions = np.asarray(Image.open(root / info["mask_file"]).convert("L")) > 127
        assert (scene.ignore[regions]).mean() > 0.99
        assert (
            np.abs(regions.mean() - (scene.ignore & ~(scene.instances > 0)).mean())
            < 0.2
        )


# --- CIHP ------------------------------------------------------------------------


@needs_samples
def test_cihp_labels_people_and_flips():
    root = FORMATS / "cihp"
    ds = open_dataset(f"cihp:{root}")
    assert ds.ids == ["0002190", "0005008", "0012008", "0026375", "0032190"]
    flip = np.array(taxonomy("cihp20")["flip"], np.uint8)
    people = []
    for name, scene in zip(ds.ids, ds, strict=True):
        check_contract(scene)
        assert scene.taxonomy == "cihp20"
        labels = np.asarray(Image.open(root / "labels" / f"{name}.png"))
        rev = np.asarray(Image.open(root / "labels_rev" / f"{name}.png"))
        assert labels.ndim == 2 and labels.dtype == np.uint8
        assert labels.max() <= 19 and rev.max() <= 19
        # the flipped labels are the labels mirrored with left and right swapped
        assert (flip[labels[:, ::-1]] == rev).all()
        assert ((scene.instances > 0) == (labels > 0)).all()
        assert (scene.parts == labels).all()
        assert (scene.keypoints[..., 2] == 0).all()
        people.append(scene.num_people)
        if name in ("0005008", "0026375"):  # people facing the camera
            for k in range(scene.num_people):
                m = scene.instances == k + 1
                xl = np.nonzero(m & (scene.parts == 14))[1]  # left arm
                xr = np.nonzero(m & (scene.parts == 15))[1]
                if len(xl) > 50 and len(xr) > 50:  # their own left: image right
                    assert xl.mean() > xr.mean()
    assert people == [2, 7, 3, 3, 2]  # counted on the images
    scene = open_dataset(f"cihp:{root},taxonomy=pascal6")[1]
    assert set(np.unique(scene.parts)) <= {0, 1, 2, 255}


def test_instances_from_edges_splits_touching_people():
    labels = np.zeros((40, 60), np.uint8)
    labels[5:35, 5:30] = 5
    labels[5:35, 30:55] = 9
    labels[20, 40] = 0
    edges = np.zeros_like(labels)
    edges[5:35, 29:31] = 1  # the contour between the two people
    edges[2, 2] = 1  # an edge pixel off the body
    ids = instances_from_edges(labels, edges)
    assert set(np.unique(ids)) == {0, 1, 2}
    assert ((ids > 0) == (labels > 0)).all()
    left, right = ids[:, :30][labels[:, :30] > 0], ids[:, 30:][labels[:, 30:] > 0]
    assert len(np.unique(left)) == 1 and len(np.unique(right)) == 1
    assert ids[10, 10] != ids[10, 50]


# --- DensePose-COCO (published layout, written here) -------------------------------


def _write_densepose(tmp_path: Path, with_dp: bool = True) -> Path:
    h, w = 200, 300
    cv2.imwrite(str(tmp_path / "000000000001.jpg"), np.full((h, w, 3), 90, np.uint8))
    grid = np.zeros((256, 256), np.uint8)
    grid[:64] = 14  # head
    grid[64:160] = 1  # torso
    grid[160:, :128] = 6  # right upper leg: image left for a person facing us
    grid[160:, 128:] = 7  # left upper leg
    dp_masks = [
        mask_to_rle(grid == i) if (grid == i).any() else [] for i in range(1, 15)
    ]
    kp = np.zeros((17, 3))
    kp[KP["nose"]] = (100, 35, 2)
    kp[KP["left_eye"]] = (108, 30, 2)
    kp[KP["right_eye"]] = (92, 30, 2)
    kp[KP["left_shoulder"]] = (130, 65, 2)
    kp[KP["right_shoulder"]] = (70, 65, 2)
    kp[KP["left_hip"]] = (120, 120, 2)
    kp[KP["right_hip"]] = (80, 120, 2)
    box = [50, 20, 100, 160]  # x, y, w, h
    person = {
        "id": 1,
        "image_id": 1,
        "category_id": 1,
        "iscrowd": 0,
        "bbox": box,
        "area": 16000.0,
        "segmentation": [[50, 20, 150, 20, 150, 180, 50, 180]],
        "keypoints": kp.ravel().tolist(),
        "num_keypoints": 7,
        "dp_x": [10.0],
        "dp_y": [10.0],
        "dp_I": [23.0],
        "dp_U": [0.5],
        "dp_V": [0.5],
    }
    if with_dp:
        person["dp_masks"] = dp_masks
    other = {  # a COCO person DensePose did not annotate
        "id": 2,
        "image_id": 1,
        "category_id": 1,
        "iscrowd": 0,
        "bbox": [200, 50, 40, 100],
        "area": 4000.0,
        "segmentation": [[200, 50, 240, 50, 240, 150, 200, 150]],
        "keypoints": [0] * 51,
        "num_keypoints": 0,
    }
    data = {
        "images": [{"id": 1, "file_name": "000000000001.jpg", "height": h, "width": w}],
        "annotations": [person, other],
        "categories": [{"id": 1, "name": "person"}],
    }
    path = tmp_path / "densepose_minival2014.json"
    path.write_text(json.dumps(data))
    return path


def test_densepose_part_masks(tmp_path):
    path = _write_densepose(tmp_path)
    ds = open_dataset(f"densepose:{path}")
    scene = ds[0]
    check_contract(scene)
    assert scene.num_people == 2
    inst = scene.instances
    k = inst[100, 100]  # the DensePose person fills its box exactly
    assert (inst[20:180, 50:150] == k).all() and (inst[:20] != k).all()
    assert (inst[:, 150:200] == 0).all()
    # the 256-grid rows 64..159 (torso) land on box rows 40..99, i.e. image 60..119
    torso = np.nonzero((scene.parts == FINE.index("torso")).any(1))[0]
    assert torso.min() == 60 and torso.max() == 119
    assert scene.parts[150, 60] == FINE.index("right_upper_leg")
    assert scene.parts[150, 140] == FINE.index("left_upper_leg")
    head = scene.parts[20:60, 50:150]
    assert set(np.unique(head)) <= set(fine("hair", "face"))
    assert scene.parts[35, 100] == FINE.index("face")  # at the nose
    assert scene.parts[21, 51] == FINE.index("hair")  # far from the face
    other = inst == inst[100, 220]
    assert (scene.parts[other] == 255).all()  # no dp_masks: no parts
    scene = open_dataset(f"densepose:{path},taxonomy=pascal6")[0]
    assert (scene.parts[20:60, 50:150] == 1).all()  # head
    assert (scene.parts[160:180, 50:150] == 5).all()  # upper legs


def test_densepose_grid_and_unlabelled_people(tmp_path):
    a = np.zeros((256, 256), bool)
    a[:100] = True
    b = np.zeros((256, 256), bool)
    b[50:] = True
    masks = [mask_to_rle(a), mask_to_rle(b)] + [[]] * 12
    grid = dp_grid(masks)
    assert (grid[:50] == 1).all() and (grid[50:] == 2).all()  # later parts win
    with pytest.raises(DatasetError):
        dp_grid(masks[:3])
    path = _write_densepose(tmp_path, with_dp=False)
    scene = open_dataset(f"densepose:{path},unlabelled=derive")[0]
    person = scene.instances == scene.instances[100, 100]
    assert (scene.parts[person] != 255).mean() > 0.9  # derived from keypoints
    assert scene.parts[100, 100] == FINE.index("torso")


# --- MHP v2 (published layout, written here) ---------------------------------------


def _write_mhp(root: Path) -> None:
    split = root / "train"
    for sub in ("images", "parsing_annos", "pose_annos"):
        (split / sub).mkdir(parents=True)
    (root / "list").mkdir()
    (root / "list" / "train.txt").write_text("7\n")
    h, w = 120, 160
    cv2.imwrite(str(split / "images" / "7.jpg"), np.full((h, w, 3), 128, np.uint8))
    mhp = taxonomy("mhp59")["classes"]
    first = np.zeros((h, w), np.uint8)
    first[10:30, 22:38] = mhp.index("face")
    first[32:62, 8:52] = mhp.index("t_shirt")  # torso and both sleeves
    first[62:100, 18:42] = mhp.index("pants")
    first[100:110, 32:40] = mhp.index("left_shoe")
    first[70:76, 52:58] = mhp.index("ball")
    second = np.zeros((h, w), np.uint8)
    second[20:90, 100:140] = mhp.index("coat")
    second[10:20, 110:130] = mhp.index("hair")
    for k, labels in ((1, first), (2, second)):  # the annotation tool's 3 channels
        rgb = np.repeat(labels[:, :, None], 3, axis=2)
        Image.fromarray(rgb).save(split / "parsing_annos" / f"7_02_0{k}.png")
    joints = {  # MPII order, (x, y, flag): flag 0 visible
        "right_ankle": (25, 105, 0), "right_knee": (25, 90, 0),
        "right_hip": (25, 65, 0), "left_hip": (35, 65, 0), "left_knee": (35, 90, 0),
        "left_ankle": (-1, -1, 2),
        "pelvis": (30, 65, 0), "thorax": (30, 35, 0), "neck": (30, 30, 0),
        "head_top": (30, 8, 0), "right_wrist": (12, 62, 1), "right_elbow": (12, 48, 0),
        "right_shoulder": (18, 35, 0), "left_shoulder": (42, 35, 0),
        "left_elbow": (48, 48, 0), "left_wrist": (48, 62, 0),
    }  # fmt: skip
    rows = [joints[n] for n in body()["other_keypoints"]["mpii"]]
    rows += [(22, 8, 0), (38, 30, 0), (8, 8, 0), (56, 110, 0)]  # head box, person box
    scipy.io.savemat(
        split / "pose_annos" / "7.mat", {"person_0": np.array(rows, float)}
    )


def test_mhp_v2_people_keypoints_and_parts(tmp_path):
    _write_mhp(tmp_path)
    ds = open_dataset(f"mhp:{tmp_path}")
    assert len(ds) == 1
    scene = ds[0]
    check_contract(scene)
    assert scene.num_people == 2
    k = scene.instances[40, 30] - 1
    kp = scene.keypoints[k]
    assert tuple(kp[KP["right_ankle"]]) == (25, 105, 2)  # visible
    assert tuple(kp[KP["right_wrist"]]) == (12, 62, 1)  # occluded
    assert (kp[KP["left_ankle"]] == 0).all()  # out of image
    assert (kp[:5] == 0).all()  # MPII has no face points
    assert (scene.keypoints[1 - k] == 0).all()  # no pose entry for person 2
    p = scene.parts
    assert p[20, 30] == FINE.index("face")
    assert p[105, 36] == FINE.index("left_foot")
    assert p[72, 55] == 255  # a carried ball is no body part
    # the t-shirt spans torso and sleeves: its pixels follow the keypoints
    assert p[45, 30] == FINE.index("torso")
    assert p[45, 12] == FINE.index("right_upper_arm")
    assert p[45, 48] == FINE.index("left_upper_arm")
    assert p[90, 25] in fine("right_upper_leg", "right_lower_leg")
    second = scene.instances == scene.instances[50, 120]
    assert set(np.unique(p[second])) == {FINE.index("hair"), 255}
    scene = open_dataset(f"mhp:{tmp_path},taxonomy=pascal6")[0]
    assert scene.parts[20, 30] == 1 and scene.parts[105, 36] == 6


# --- PASCAL-Person-Part (published layouts, written here) --------------------------


def test_pascal_person_part_instance_pngs(tmp_path):
    split = tmp_path / "Training"
    for sub in ("Images", "Category_ids", "Human_ids"):
        (split / sub).mkdir(parents=True)
    h, w = 60, 80
    cv2.imwrite(
        str(split / "Images" / "2008_000008.jpg"), np.zeros((h, w, 3), np.uint8)
    )
    cats = np.zeros((h, w), np.uint8)
    humans = np.zeros((h, w), np.uint8)
    for person, x0 in ((1, 5), (2, 45)):
        humans[5:55, x0 : x0 + 30] = person
        for cat, rows in ((2, (5, 15)), (4, (15, 30)), (6, (15, 22)), (3, (30, 42))):
            cats[rows[0] : rows[1], x0 : x0 + 30] = cat
        cats[42:55, x0 : x0 + 30] = 5
    Image.fromarray(cats).save(split / "Category_ids" / "2008_000008.png")
    Image.fromarray(humans).save(split / "Human_ids" / "2008_000008.png")
    ds = open_dataset(f"pascal_person_part:{tmp_path}")
    scene = ds[0]
    check_contract(scene)
    assert scene.taxonomy == "pascal6" and scene.num_people == 2
    assert scene.instances[10, 10] != scene.instances[10, 50]
    # PNG order (lower arm, head, upper leg, torso, lower leg, upper arm) -> pascal6
    assert scene.parts[10, 10] == 1 and scene.parts[25, 10] == 2
    assert scene.parts[18, 10] == 3 and scene.parts[35, 10] == 5
    assert scene.parts[50, 50] == 6
    with pytest.raises(DatasetError, match="no part mapping"):
        open_dataset(f"pascal_person_part:{tmp_path},taxonomy=fine")


def test_pascal_part_mat_annotations(tmp_path):
    (tmp_path / "Annotations_Part").mkdir()
    (tmp_path / "JPEGImages").mkdir()
    h, w = 50, 40
    cv2.imwrite(str(tmp_path / "JPEGImages" / "2009_000001.jpg"), np.zeros((h, w, 3)))
    body_mask = np.zeros((h, w), np.uint8)
    body_mask[5:45, 10:30] = 1
    parts = {"hair": (5, 9), "head": (9, 15), "torso": (15, 30), "luleg": (30, 40)}
    part_rows = np.zeros((1, len(parts)), dtype=[("part_name", "O"), ("mask", "O")])
    for j, (name, (r0, r1)) in enumerate(parts.items()):
        m = np.zeros((h, w), np.uint8)
        m[r0:r1, 10:30] = 1
        part_rows[0, j] = (name, m)
    objects = np.zeros((1, 2), dtype=[("class", "O"), ("class_ind", "O"),
                                      ("mask", "O"), ("parts", "O")])  # fmt: skip
    objects[0, 0] = ("person", 15, body_mask, part_rows)
    dog = np.zeros((h, w), np.uint8)
    dog[0:5, 0:10] = 1
    objects[0, 1] = ("dog", 12, dog, np.zeros((0, 0)))
    scipy.io.savemat(
        tmp_path / "Annotations_Part" / "2009_000001.mat",
        {"anno": {"imname": "2009_000001", "objects": objects}},
    )
    scene = open_dataset(f"pascal_person_part:{tmp_path}")[0]
    check_contract(scene)
    assert scene.num_people == 1 and (scene.instances[0:5, 0:10] == 0).all()
    assert scene.parts[7, 20] == 1 and scene.parts[20, 20] == 2  # head, torso
    assert scene.parts[35, 20] == 5 and scene.parts[42, 20] == 255  # unlabelled
    scene = open_dataset(f"pascal_person_part:{tmp_path},taxonomy=fine")[0]
    assert scene.parts[7, 20] == FINE.index("hair")
    assert scene.parts[12, 20] == FINE.index("face")
    assert scene.parts[35, 20] == FINE.index("left_upper_leg")


# --- parts from keypoints, specs ------------------------------------------------


def _standing_person() -> np.ndarray:
    kp = np.zeros((17, 3), np.float32)
    pts = {
        "nose": (50, 20), "left_eye": (54, 17), "right_eye": (46, 17),
        "left_shoulder": (62, 35), "right_shoulder": (38, 35),
        "left_elbow": (80, 35), "right_elbow": (20, 35),
        "left_wrist": (98, 35), "right_wrist": (2, 35),
        "left_hip": (58, 75), "right_hip": (42, 75),
        "left_knee": (58, 105), "right_knee": (42, 105),
        "left_ankle": (58, 135), "right_ankle": (42, 135),
    }  # fmt: skip
    for name, xy in pts.items():
        kp[KP[name]] = (*xy, 2)
    return kp


def test_derive_parts_nearest_segment():
    kp = _standing_person()
    mask = np.ones((150, 101), bool)
    parts = derive_parts(mask, kp)
    assert (parts != 0).all()
    assert parts[55, 50] == FINE.index("torso")
    assert parts[35, 71] == FINE.index("left_upper_arm")  # person's left: image right
    assert parts[35, 29] == FINE.index("right_upper_arm")
    assert parts[35, 89] == FINE.index("left_lower_arm")
    assert parts[35, 100] == FINE.index("left_hand")  # past the wrist
    assert parts[120, 58] == FINE.index("left_lower_leg")
    assert parts[142, 58] == FINE.index("left_foot")
    assert parts[20, 50] == FINE.index("face") and parts[5, 50] == FINE.index("hair")
    far = derive_parts(mask, kp, reach=0.1)
    assert far[0, 0] == 255 and far[55, 50] == FINE.index("torso")
    back = kp.copy()
    back[:3] = 0  # no face: the head cannot be split
    assert derive_parts(mask, back)[15, 50] == 255


def test_skeleton_person_mask_band_and_parts():
    kp = _standing_person()
    mask, band, parts = skeleton_person(kp, {}, (150, 101))
    assert mask[55, 50] and mask[35, 80] and not mask[140, 10]
    assert not (mask & band).any() and band.any()
    assert ((parts > 0) == mask).all()
    assert parts[35, 89] == FINE.index("left_lower_arm")
    lone = np.zeros((17, 3), np.float32)
    lone[KP["nose"]] = (50, 20, 2)
    assert not skeleton_person(lone, {}, (150, 101))[0].any()


def test_specs_and_errors(tmp_path):
    assert parse_spec("coco:a/b.json,images=c,reach=0.5") == (
        "coco",
        "a/b.json",
        {"images": "c", "reach": 0.5},
    )
    for bad in ("coco", "nope:x", "coco:x.json,size=3", "coco:x.json,reach=far"):
        with pytest.raises(DatasetError):
            parse_spec(bad)
    with pytest.raises(DatasetError, match="not found"):
        open_dataset(f"coco:{tmp_path / 'missing.json'}")
    with pytest.raises(DatasetError, match="not found"):
        open_dataset(f"mhp:{tmp_path}")
    path = _write_densepose(tmp_path)
    ds = open_dataset(f"coco:{path}")
    with pytest.raises(IndexError):
        ds[len(ds)]
    assert ds[-1].num_people == ds[0].num_people
