import pytest
import torch

from nets.backbones import (
    BACKBONES,
    BackboneWeightsError,
    build_backbone,
    load_backbone_weights,
    make_divisible,
)
from tests.nets.tiny_model import TINY_WIDTH

torch.set_num_threads(1)


@pytest.mark.parametrize("name", list(BACKBONES))
def test_four_maps_at_strides_4_to_32_and_gradients_flow(name):
    torch.manual_seed(0)
    net = build_backbone(name, TINY_WIDTH[name])
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    feats = net(x)
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2]
    assert [f.shape[1] for f in feats] == net.channels
    sum(f.square().mean() for f in feats).backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


# Parameter counts of torchvision's models without their classifiers (mobilenet:
# total - classifier Linear layers; resnet: total - fc), so torchvision weights fit.
@pytest.mark.parametrize(
    "name, params",
    [
        ("mobilenetv3_small", 2_542_856 - (576 * 1024 + 1024 + 1024 * 1000 + 1000)),
        ("mobilenetv3_large", 5_483_032 - (960 * 1280 + 1280 + 1280 * 1000 + 1000)),
        ("resnet50", 25_557_032 - (2048 * 1000 + 1000)),
        ("resnet101", 44_549_160 - (2048 * 1000 + 1000)),
    ],
)
def test_full_width_matches_torchvision_parameter_counts(name, params):
    net = build_backbone(name)
    assert sum(p.numel() for p in net.parameters()) == params


def test_torchvision_parameter_names():
    small = build_backbone("mobilenetv3_small").state_dict()
    assert "features.0.0.weight" in small  # stem conv
    assert "features.1.block.1.fc1.weight" in small  # first block's SE
    assert "features.12.1.running_var" in small  # last 1x1 conv's BN
    resnet = build_backbone("resnet50").state_dict()
    assert {"conv1.weight", "layer1.0.downsample.0.weight", "layer4.2.bn3.bias"} <= set(
        resnet
    )


@pytest.mark.parametrize(
    "value, out", [(16 * 0.25, 8), (72 * 0.25, 24), (240, 240), (100, 104)]
)
def test_make_divisible_rounds_like_torchvision(value, out):
    assert make_divisible(value) == out


def test_load_weights_reports_missing_unexpected_and_mismatched(tmp_path):
    torch.manual_seed(0)
    source = build_backbone("mobilenetv3_small", 0.25).state_dict()
    del source["features.0.0.weight"]
    source["classifier.0.weight"] = torch.zeros(3, 3)
    source["features.1.block.0.0.weight"] = torch.zeros(1, 1, 1, 1)
    path = tmp_path / "w.pt"
    torch.save(source, path)
    torch.manual_seed(1)
    net = build_backbone("mobilenetv3_small", 0.25)
    report = load_backbone_weights(net, path)
    assert report == {
        "missing": ["features.0.0.weight"],
        "unexpected": ["classifier.0.weight"],
        "mismatched": ["features.1.block.0.0.weight"],
    }
    key = "features.2.block.0.0.weight"
    assert torch.equal(net.state_dict()[key], source[key])


def test_load_weights_errors(tmp_path):
    net = build_backbone("mobilenetv3_small", 0.25)
    with pytest.raises(BackboneWeightsError, match="not found"):
        load_backbone_weights(net, tmp_path / "none.pt")
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    with pytest.raises(BackboneWeightsError, match="not a state_dict"):
        load_backbone_weights(net, tmp_path / "list.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(BackboneWeightsError, match="cannot read"):
        load_backbone_weights(net, tmp_path / "junk.pt")


def test_unknown_backbone():
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("vgg16")
