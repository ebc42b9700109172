"""Post-processing: label resampling against OpenCV's bilinear upsampling of one-hot
masks, people mapped back to the frame, the array-module switch."""

import cv2
import numpy as np
import pytest

from configs.errors import StageError
from configs.letterbox import Letterbox
from pipeline.engine.messages import Message, ModelPeople
from pipeline.stages.postprocess import (
    Postprocess,
    boxes_from_cells,
    get_array_module,
    make_sampler,
    resample_labels,
    to_frame_size,
)


def blobs(h: int, labels: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, labels, (h // 4, h // 4))
    return cv2.resize(small, (h, h), interpolation=cv2.INTER_NEAREST).astype(np.int16)


def test_vote_equals_argmax_of_bilinear_one_hot():
    cells = blobs(32, 5, 0)
    box = Letterbox.fit(256, 256, 128)  # no padding: cv2's grid is ours
    sampler = make_sampler(box, cells.shape, 256 * 256, np)
    ours = to_frame_size(resample_labels(cells, sampler, np), sampler)
    soft = np.stack(
        [
            cv2.resize(
                (cells == k).astype(np.float32),
                (256, 256),
                interpolation=cv2.INTER_LINEAR,
            )
            for k in range(5)
        ]
    )
    assert (ours == soft.argmax(0)).mean() > 0.999


def test_coarse_voting_grid_for_large_frames():
    cells = blobs(32, 4, 1)
    box = Letterbox.fit(1024, 1024, 128)
    sampler = make_sampler(box, cells.shape, 256 * 256, np)  # votes at 256 x 256
    out = to_frame_size(resample_labels(cells, sampler, np), sampler)
    assert out.shape == (1024, 1024)
    near = cv2.resize(cells, (1024, 1024), interpolation=cv2.INTER_NEAREST)
    assert (out == near).mean() > 0.9


def model_outputs(box: Letterbox) -> Message:
    """Slots 1 and 3 are people (cells as squares), slot 0 is invalid."""
    h = box.size // 4
    instances = np.zeros((h, h), np.int64)
    instances[2:10, 2:6] = 2  # slot 1
    instances[4:12, 20:28] = 4  # slot 3
    instances[14:16, 0:4] = 1  # slot 0, not valid: must vanish
    parts = (instances > 0) * 3
    kps = np.zeros((4, 17, 3), np.float32)
    kps[1, 0] = (16.0, 16.0, 0.9)
    kps[3, 5] = (96.0, 32.0, 0.8)
    model = ModelPeople(
        kps,
        np.array([0.9, 0.8, 0.1, 0.6]),
        np.array([False, True, False, True]),
        instances,
        parts,
    )
    return Message(
        "frame",
        {"transform": box.as_dict()},
        model=model,
        input=np.zeros((3, box.size, box.size), np.float32),
    )


def test_people_in_frame_coordinates():
    box = Letterbox.fit(200, 100, 128)  # scale 0.64, padded below
    stage = Postprocess()
    stage.open()
    msg = stage.process(model_outputs(box))
    assert msg.model is None and msg.input is None
    out = {k: v for k, v in vars(msg.people).items() if v is not None}
    assert set(out) == {"keypoints", "scores", "boxes", "instances", "parts"}
    assert out["instances"].shape == (100, 200) and out["instances"].dtype == np.uint16
    assert set(np.unique(out["instances"])) == {0, 1, 2}  # rows, not slots
    np.testing.assert_allclose(out["scores"], [0.8, 0.6])
    np.testing.assert_allclose(out["keypoints"][0, 0], [16 / box.sx, 16 / box.sy, 0.9])
    # person 0 covers cells x 2..5, y 2..9 -> input px 8..24, 8..40 -> frame px
    np.testing.assert_allclose(
        out["boxes"][0], [8 / box.sx, 8 / box.sy, 24 / box.sx, 40 / box.sy], rtol=1e-5
    )
    assert (out["parts"][out["instances"] == 0] == 0).all()
    assert (out["parts"][out["instances"] > 0] == 3).all()


def test_box_of_a_person_without_cells_leaves_out_guessed_joints():
    """A person with no cells gets its seen joints' box; a joint the decode guessed
    (score <= KP_MIN_SCORE, docs/MATCHING.md) far off does not stretch it."""
    box = Letterbox.fit(64, 64, 64)
    kps = np.zeros((1, 17, 3), np.float32)
    kps[0, :3] = [[10, 12, 0.9], [20, 30, 0.8], [15, 20, 0.7]]
    kps[0, 3] = [60, 60, 0.04]  # a guess
    out = boxes_from_cells(np.zeros((16, 16), np.uint16), 1, box, kps, np)
    np.testing.assert_allclose(out[0], [10, 12, 20, 30])


def test_no_people():
    box = Letterbox.fit(64, 64, 64)
    msg = model_outputs(box)
    msg.model.person_valid[:] = False
    stage = Postprocess()
    stage.open()
    out = stage.process(msg).people
    assert out.keypoints.shape == (0, 17, 3) and out.boxes.shape == (0, 4)
    assert out.instances.max() == 0


def test_array_module_switch():
    assert get_array_module("cpu") is np
    try:
        import cupy  # noqa: F401

        pytest.skip("CuPy is installed: the error path cannot be shown here")
    except ImportError:
        pass
    with pytest.raises(StageError, match="CuPy"):
        get_array_module("cuda")
