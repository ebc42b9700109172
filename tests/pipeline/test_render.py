"""Rendering: each mode's output, colours from the taxonomy, people kept apart."""

import time

import numpy as np
import pytest

from configs import taxonomy
from configs.drawing import PALETTE, person_colours
from pipeline.engine.messages import FramePeople, Message
from pipeline.stages.render import Render, part_lut


def tracked_frame() -> Message:
    """Two people side by side on a grey frame: rows 0 and 1, track ids 7 and -1."""
    image = np.full((120, 160, 3), 100, np.uint8)
    instances = np.zeros((120, 160), np.uint16)
    parts = np.zeros((120, 160), np.uint8)
    instances[20:100, 20:60], parts[20:100, 20:60] = 1, 3  # torso
    instances[20:100, 90:130], parts[20:100, 90:130] = 2, 1  # hair
    kps = np.zeros((2, 17, 3), np.float32)
    kps[0, 5], kps[0, 7] = (30, 40, 0.9), (40, 70, 0.9)  # shoulder -> elbow
    people = FramePeople(
        kps,
        np.array([0.9, 0.8], np.float32),
        np.array([[20, 20, 60, 100], [90, 20, 130, 100]], np.float32),
        instances,
        parts,
        track_ids=np.array([7, -1]),
    )
    return Message(
        "frame", {"capture_ts": time.time(), "index": 0}, image=image, people=people
    )


def render(mode: str, **kw) -> np.ndarray:
    stage = Render("fine", mode, **kw)
    stage.open()
    return stage.process(tracked_frame()).rendered


def test_overlay_blends_part_colours_only_on_people():
    out = render("overlay", hud=False, alpha=0.5)
    assert out.shape == (120, 160, 3)
    assert (out[5:15, 70:85] == 100).all()  # background untouched
    torso = part_lut("fine", 0.35)[7 % PALETTE, 3].astype(int)
    np.testing.assert_allclose(out[90, 50], (100 + torso) / 2, atol=1.5)
    assert not np.array_equal(out[90, 50], out[90, 120])  # two people differ
    assert (out[21:99, 21:59] != 100).any()


def test_outline_skeleton_label_and_hud_are_drawn():
    plain = render("overlay", hud=False)
    outline = person_colours()[7 % PALETTE]
    assert (plain[20:100, 20] == outline).all(axis=1).mean() > 0.8
    assert (plain[38:43, 28:33] == 255).all(axis=2).any()  # white joint dot
    assert (plain[50:60, 30:40] == 0).all(axis=2).any()  # limb outline
    with_hud = render("overlay", hud=True)
    assert (with_hud[:10, :100] != plain[:10, :100]).any()


@pytest.mark.parametrize("mode", ["masks", "regions"])
def test_alpha_modes(mode):
    out = render(mode, hud=False, regions={"head": ["hair", "face"], "body": ["torso"]})
    assert out.shape == (120, 160, 4)
    alpha = out[..., 3]
    assert (alpha[20:100, 20:60] == 255).all() and alpha[5:15].max() == 0
    assert out[5:15, ..., :3].max() == 0


def test_regions_shade_each_region_of_one_person_colour():
    out = render("regions", hud=False, regions={"head": ["hair"], "body": ["torso"]})
    colour = person_colours()[7 % PALETTE].astype(float)
    torso = out[50, 40, :3].astype(float)
    # second region: a darker shade of the same hue
    assert np.allclose(torso / torso.max(), colour / colour.max(), atol=0.03)
    assert torso.max() < colour.max()


def test_taxonomy_palette_is_the_configs():
    lut = part_lut("fine", 0.0)
    assert (lut[0, 1:] == np.asarray(taxonomy("fine")["colors"][1:])).all()


@pytest.mark.parametrize("threshold, shown", [(0.0, 2), (0.85, 1), (0.95, 0)])
def test_display_threshold_decides_who_is_drawn_and_counted(threshold, shown):
    """Scores 0.9 (left, id 7) and 0.8 (right): who is drawn is who is counted, in
    the HUD and (through the header) in the run's summary."""
    stage = Render("fine", "masks", hud=False, display_threshold=threshold)
    stage.open()
    msg = stage.process(tracked_frame())
    alpha = msg.rendered[..., 3]
    assert msg.header["people_shown"] == shown
    assert msg.header["display_threshold"] == threshold
    assert (alpha[50, 40] == 255) == (shown >= 1)  # the 0.9 person
    assert (alpha[50, 110] == 255) == (shown == 2)  # the 0.8 person
