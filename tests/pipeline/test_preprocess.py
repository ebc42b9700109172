"""Letterbox: geometry, the map back to the frame, CPU and torch paths agree."""

import cv2
import numpy as np
import pytest

from configs.letterbox import Letterbox, letterbox_image
from pipeline.engine.messages import frame_message
from pipeline.stages.preprocess import Preprocess, letterbox_tensor


@pytest.mark.parametrize(
    "w, h, new",
    [
        (640, 480, (384, 288)),
        (426, 240, (384, 216)),
        (240, 426, (216, 384)),
        (384, 384, (384, 384)),
    ],
)
def test_fit_long_side_and_map_back(w, h, new):
    box = Letterbox.fit(w, h, 384)
    assert (box.new_w, box.new_h) == new
    corners = np.array([[0.0, 0.0], [box.new_w, box.new_h]], np.float32)
    np.testing.assert_allclose(box.to_frame(corners), [[0, 0], [w, h]], rtol=1e-6)
    assert Letterbox.from_dict(box.as_dict()) == box


def test_image_lands_top_left_and_padding_is_black():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    out = letterbox_image(image, Letterbox.fit(160, 120, 64))
    assert out.shape == (3, 64, 64) and out.dtype == np.float32
    assert out[:, 48:].max() == 0 and out[:, 47].min() > 0
    assert abs(out[:, :48].mean() - image.mean() / 255) < 0.01


def test_torch_path_matches_cpu_path():
    rng = np.random.default_rng(1)
    coarse = rng.integers(0, 256, (9, 12, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (480, 360), interpolation=cv2.INTER_CUBIC)  # smooth
    for box in (Letterbox.fit(480, 360, 128), Letterbox.fit(480, 360, 640)):
        cpu = letterbox_image(image, box)
        dev = letterbox_tensor(image, box, "cpu")[0].numpy()
        assert np.abs(cpu - dev).mean() < 0.01


def test_stage_attaches_input_and_transform():
    msg = frame_message(np.zeros((30, 40, 3), np.uint8), 0, 0.0, None, 10)
    out = Preprocess(64).process(msg)
    assert out.input.shape == (3, 64, 64)
    assert Letterbox.from_dict(out.header["transform"]) == Letterbox.fit(40, 30, 64)
    gpu = Preprocess(64, on_device=True).process(
        frame_message(np.zeros((30, 40, 3), np.uint8), 0, 0.0, None, 10)
    )
    assert gpu.input is None and "transform" in gpu.header
