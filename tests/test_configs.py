"""configs/: the shared numbers agree with the YAML tables; the letterbox maps back;
still images get a larger input side, a multiple of 32."""

from __future__ import annotations

import numpy as np
import pytest

from configs import body, mapping
from configs.cli import still_input_size
from configs.constants import IGNORE, NUM_KEYPOINTS
from configs.letterbox import Letterbox


def test_num_keypoints_is_the_body_tables():
    table = body()
    assert len(table["keypoints"]) == NUM_KEYPOINTS
    assert len(table["oks_sigmas"]) == NUM_KEYPOINTS


def test_ignore_is_the_mappings_no_counterpart():
    # parts.yaml writes "no counterpart" as a number; it must be the ignore id
    assert IGNORE in mapping("cihp20", "fine")
    assert max(mapping("cihp20", "fine")) == IGNORE


@pytest.mark.parametrize(
    ("width", "height", "size", "new_w", "new_h", "shrinks"),
    [
        (640, 480, 384, 384, 288, True),
        (480, 640, 384, 288, 384, True),
        (33, 17, 64, 64, 33, False),
        (64, 64, 64, 64, 64, False),
    ],
)
def test_letterbox_geometry(width, height, size, new_w, new_h, shrinks):
    box = Letterbox.fit(width, height, size)
    assert (box.new_w, box.new_h, box.shrinks) == (new_w, new_h, shrinks)
    pad = box.padding()
    assert pad.shape == (size, size) and (~pad).sum() == new_w * new_h
    labels = np.arange(height * width, dtype=np.int32).reshape(height, width)
    pasted = box.paste(labels, 0)  # nearest neighbour
    assert pasted.shape == (size, size) and not pasted[pad].any()
    xy = np.array([[width - 1.0, height - 1.0, 2.0]], np.float32)
    back = box.to_frame(box.to_input(xy)[..., :2])
    np.testing.assert_allclose(back, xy[..., :2], rtol=1e-6)
    assert box.to_input(xy)[0, 2] == 2.0


def test_load_overrides_is_what_the_file_and_its_bases_set(tmp_path):
    """Only what the file (and a base other than default.yaml) writes, a default
    value included; unknown keys are the same error as for load_config."""
    from configs import ConfigError, load_overrides

    (tmp_path / "a.yaml").write_text("decode:\n  limb_threshold: 0.2\n  top_k: 7\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\ndecode:\n  top_k: 9\n")
    assert load_overrides(tmp_path / "b.yaml") == {
        "decode": {"limb_threshold": 0.2, "top_k": 9}
    }
    assert load_overrides(None) == {}
    (tmp_path / "bad.yaml").write_text("decode:\n  top_kk: 9\n")
    with pytest.raises(ConfigError):
        load_overrides(tmp_path / "bad.yaml")


@pytest.mark.parametrize(
    ("size", "scale", "still"), [(256, 1.5, 384), (128, 1.5, 192), (384, 1.0, 384),
                                 (256, 1.2, 320), (64, 0.1, 32)]
)  # fmt: skip
def test_still_input_size_is_a_multiple_of_32(size, scale, still):
    assert still_input_size({"input_size": size}, {"still_scale": scale}) == still
