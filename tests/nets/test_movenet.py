"""nets.movenet against an independent op-by-op evaluation of MoveNet's TF.js graph."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from configs.letterbox import Letterbox, letterbox_image
from nets.backbones import BackboneWeightsError, build_backbone, load_backbone_weights
from nets.model import build_model, load_checkpoint, save_checkpoint
from nets.movenet import MoveNet, MoveNetWeightsError, load_movenet, read_tfjs
from tests.nets.tfjs_graph import TfjsGraph
from tests.nets.tiny_model import tiny_cfg
from trainers.teachers.movenet import DEFAULT_MODEL

torch.set_num_threads(1)
COCO = DEFAULT_MODEL.parents[2] / "data" / "formats" / "coco"
HEAD_NODES = {
    "center": "center_0/conv2d_4",
    "kpt_heatmap": "kpt_heatmap_0/conv2d_7",
    "kpt_regress": "kpt_regress_0/conv2d_8",
    "kpt_offset": "kpt_offset_0/conv2d_9",
    "box_scale": "box_scale_0/conv2d_5",
    "box_offset": "box_offset_0/conv2d_6",
}
# Measured: at most 6.8e-4 on logits/regressions up to ~43 (float32 summation order
# and the graph's float16 2/255 normalisation constant).
TOLERANCE = 2e-3


@pytest.fixture(scope="module")
def net() -> MoveNet:
    return load_movenet(DEFAULT_MODEL)


@pytest.fixture(scope="module")
def graph() -> TfjsGraph:
    return TfjsGraph(DEFAULT_MODEL)


def real_input(size: int = 256) -> np.ndarray:
    """A COCO photograph letterboxed as the teacher does, as uint8 pixels."""
    image = cv2.cvtColor(cv2.imread(str(COCO / "000000196141.jpg")), cv2.COLOR_BGR2RGB)
    box = Letterbox.fit(image.shape[1], image.shape[0], size)
    chw = letterbox_image(image, box)
    return np.round(chw.transpose(1, 2, 0) * 255).astype(np.uint8)


def random_input(size: int = 256) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("make_input", [random_input, real_input])
def test_heads_match_the_graph(net, graph, make_input):
    image = make_input()
    ref = graph(
        image[None].astype(np.int32),
        [f"StatefulPartitionedCall/{n}/BiasAdd" for n in HEAD_NODES.values()],
    )
    with torch.no_grad():
        out = net(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255)
    for name, expected in zip(HEAD_NODES, ref, strict=True):
        mine = out[name][0].numpy().transpose(1, 2, 0)
        assert mine.shape == expected[0].shape == (64, 64, mine.shape[-1])
        np.testing.assert_allclose(mine, expected[0], atol=TOLERANCE, err_msg=name)
        assert np.abs(expected).max() > 1  # the maps are not trivially small


def test_every_parameter_comes_from_the_file():
    state = read_tfjs(DEFAULT_MODEL)
    own = MoveNet().state_dict()
    assert state.keys() == own.keys()
    assert all(state[k].shape == own[k].shape for k in own)
    # The depthwise kernel of the stem block: TF's H x W x C x 1 became C x 1 x H x W.
    assert state["trunk.expanded_conv.depthwise.conv.weight"].shape == (48, 1, 3, 3)


def test_trunk_pyramid_channels_and_strides(net):
    with torch.no_grad():
        feats = net.trunk(torch.zeros(1, 3, 256, 192))
    assert [tuple(f.shape[1:]) for f in feats] == [
        (24, 64, 48),
        (24, 32, 24),
        (32, 16, 12),
        (64, 8, 6),
    ]
    assert net.trunk.channels == [24, 24, 32, 64]


def test_backbone_loads_the_trunk_by_name(net):
    backbone = build_backbone("movenet", 1.5)
    report = load_backbone_weights(backbone, DEFAULT_MODEL)
    assert report["missing"] == [] and report["mismatched"] == []
    assert report["unexpected"] and all(
        k.startswith("heads.") for k in report["unexpected"]
    )
    for key, value in backbone.state_dict().items():
        assert torch.equal(value, net.trunk.state_dict()[key])


def test_missing_files_fail_in_one_line(tmp_path):
    with pytest.raises(BackboneWeightsError, match="not found"):
        load_backbone_weights(build_backbone("movenet", 1.5), tmp_path / "m.json")
    (tmp_path / "m.json").write_text(DEFAULT_MODEL.read_text())  # no .bin beside it
    with pytest.raises(BackboneWeightsError, match="weights file not found") as err:
        load_backbone_weights(build_backbone("movenet", 1.5), tmp_path / "m.json")
    assert "\n" not in str(err.value)
    (tmp_path / "junk.json").write_text("{}")
    with pytest.raises(MoveNetWeightsError, match="not a TF.js graph model"):
        read_tfjs(tmp_path / "junk.json")


def test_mgparser_feeds_movenet_its_own_normalisation():
    cfg = tiny_cfg("movenet")
    model = build_model(cfg)
    assert model.mean.flatten().tolist() == [0.5, 0.5, 0.5]
    assert model.std.flatten().tolist() == [0.5, 0.5, 0.5]
    out = model(torch.rand(1, 3, 64, 64))
    assert out["heatmap"].shape[-2:] == (16, 16)


def test_a_trained_students_checkpoint_needs_no_tfjs_files(tmp_path):
    for suffix in (".json", ".bin"):
        source = DEFAULT_MODEL.with_suffix(suffix)
        (tmp_path / source.name).write_bytes(source.read_bytes())
    cfg = tiny_cfg("movenet")
    cfg["model"].update(
        width_mult=1.5, backbone_weights=str(tmp_path / DEFAULT_MODEL.name)
    )
    model = build_model(cfg)
    save_checkpoint(tmp_path / "student.pt", model, cfg)
    for f in tmp_path.glob("movenet-multipose.*"):
        f.unlink()
    loaded, _ = load_checkpoint(tmp_path / "student.pt")
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
