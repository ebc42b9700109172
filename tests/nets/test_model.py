import copy

import numpy as np
import pytest
import torch

from configs import body, taxonomy
from configs.errors import CheckpointError
from nets.backbones import BACKBONES, build_backbone
from nets.export import export_onnx, flatten_outputs
from nets.model import (
    InferenceModel,
    NetworkModel,
    activations,
    build_model,
    load_checkpoint,
    save_checkpoint,
)
from nets.runtimes import OnnxRuntime
from tests.nets.tiny_model import tiny_cfg

torch.set_num_threads(1)


def contract_shapes(b, size, classes):
    h = size // 4
    return {
        "parts": (b, classes, h, h),
        "heatmap": (b, 17, h, h),
        "offsets": (b, 17, 2, h, h),
        "limbs": (b, len(body()["limb_names"]), h, h),
        "hough": (b, 17, h, h),
    }


@pytest.mark.parametrize("backbone", list(BACKBONES))
def test_outputs_follow_the_contract_and_train(backbone):
    torch.manual_seed(0)
    cfg = tiny_cfg(backbone)
    model = build_model(cfg)
    out = model(torch.rand(2, 3, 64, 64))
    shapes = {k: tuple(v.shape) for k, v in out.items() if k != "dspf"}
    assert shapes == contract_shapes(2, 64, len(taxonomy("fine")["classes"]))
    assert [tuple(d.shape) for d in out["dspf"]] == [
        (2, 2, 64 // s, 64 // s) for s in (4, 8, 16, 32)
    ]
    loss = sum(v.float().square().mean() for k, v in out.items() if k != "dspf")
    (loss + sum(d.abs().mean() for d in out["dspf"])).backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize(
    "switches",
    [
        dict(coarse_to_fine=False, residual=False, warping=False),
        dict(coarse_to_fine=True, residual=False, warping=True),
    ],
)
def test_dspf_switches_and_taxonomy_come_from_the_config(switches):
    cfg = tiny_cfg()
    cfg["model"]["taxonomy"] = "pascal6"
    cfg["model"]["dspf"].update(switches)
    model = build_model(cfg)
    assert model.dspf.coarse_to_fine == switches["coarse_to_fine"]
    assert model.dspf.warping == switches["warping"]
    assert model(torch.rand(1, 3, 64, 64))["parts"].shape[1] == 7


def test_shared_decoder_builds_runs_trains_and_exports(tmp_path):
    """model.shared_decoder: one stride-4 decoder for both heads, fewer weights, the
    same output contract, gradients everywhere, and an ONNX graph ORT runs as torch."""
    torch.manual_seed(0)
    cfg = tiny_cfg()
    cfg["model"]["shared_decoder"] = True
    model = build_model(cfg)
    separate = build_model(tiny_cfg())
    assert separate.shared_decoder is None
    assert not any(k.startswith("part_head.decoder") for k in model.state_dict())
    count = sum(p.numel() for p in model.parameters())
    assert count < sum(p.numel() for p in separate.parameters())
    out = model(torch.rand(2, 3, 64, 64))
    shapes = {k: tuple(v.shape) for k, v in out.items() if k != "dspf"}
    assert shapes == contract_shapes(2, 64, len(taxonomy("fine")["classes"]))
    loss = sum(v.float().square().mean() for k, v in out.items() if k != "dspf")
    (loss + sum(d.abs().mean() for d in out["dspf"])).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    images = torch.rand(1, 3, 64, 64)
    path = export_onnx(NetworkModel(model), tmp_path / "shared.onnx", 64)
    with torch.no_grad():
        ref = flatten_outputs(NetworkModel(model)(images))
    got = OnnxRuntime(path, threads=1).run(images.numpy())
    for name, value in ref.items():
        assert np.allclose(got[name], value.numpy(), atol=1e-4), name


def test_hough_uses_the_disk_radius_in_cells():
    cfg = tiny_cfg()
    cfg["targets"]["disk_radius"] = 10.0
    assert build_model(cfg).hough_radius == 2.5


def test_output_stride_other_than_4_is_an_error():
    cfg = tiny_cfg()
    cfg["output_stride"] = 8
    with pytest.raises(ValueError, match="output_stride"):
        build_model(cfg)


def test_backbone_weights_from_config_are_loaded(tmp_path, capsys):
    torch.manual_seed(3)
    source = build_backbone("mobilenetv3_small", 0.25)
    torch.save(source.state_dict(), tmp_path / "bb.pt")
    cfg = tiny_cfg()
    cfg["model"]["backbone_weights"] = str(tmp_path / "bb.pt")
    model = build_model(cfg)
    key = "features.3.block.1.0.weight"
    assert torch.equal(model.backbone.state_dict()[key], source.state_dict()[key])
    assert "0 missing" in capsys.readouterr().err


def test_activations_are_what_the_decode_takes():
    torch.manual_seed(0)
    with torch.no_grad():
        out = build_model(tiny_cfg()).eval()(torch.rand(1, 3, 64, 64))
    maps = activations(out)
    assert torch.allclose(maps["parts"].sum(1), torch.ones(1, 16, 16))
    assert float(maps["limbs"].min()) >= 0 and float(maps["heatmap"].max()) <= 1
    assert maps["dspf"] is out["dspf"][0]


def test_inference_model_outputs():
    torch.manual_seed(0)
    cfg = tiny_cfg()
    model = InferenceModel(build_model(cfg), cfg).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64))
    p = cfg["decode"]["max_people"]
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "keypoints": (2, p, 17, 3),
        "person_scores": (2, p),
        "person_valid": (2, p),
        "instances": (2, 64, 64),  # the input resolution
        "parts": (2, 64, 64),
    }
    with pytest.raises(ValueError, match="unknown matcher"):
        InferenceModel(model.model, cfg, "sinkhorn")


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    cfg = tiny_cfg()
    model = build_model(cfg).eval()
    save_checkpoint(tmp_path / "c.pt", model, cfg, {"step": 7})
    loaded, loaded_cfg = load_checkpoint(tmp_path / "c.pt", expect_cfg=cfg)
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(loaded.eval()(x)["parts"], model(x)["parts"])
    assert loaded_cfg["model"] == cfg["model"]
    assert torch.load(tmp_path / "c.pt", weights_only=True)["meta"] == {"step": 7}


def test_checkpoint_errors(tmp_path):
    cfg = tiny_cfg()
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"model": {}}, tmp_path / "noconfig.pt")
    with pytest.raises(CheckpointError, match="lacks"):
        load_checkpoint(tmp_path / "noconfig.pt")
    save_checkpoint(tmp_path / "c.pt", build_model(cfg), cfg)
    other = copy.deepcopy(cfg)
    other["model"]["fpn_channels"] = 24
    with pytest.raises(CheckpointError, match="different model config"):
        load_checkpoint(tmp_path / "c.pt", expect_cfg=other)
    ckpt = torch.load(tmp_path / "c.pt", weights_only=True)
    ckpt["config"] = other  # weights no longer fit the embedded config
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="do not match") as err:
        load_checkpoint(tmp_path / "bad.pt")
    assert "\n" not in str(err.value)
    save_checkpoint(
        tmp_path / "limbs.pt", build_model(cfg), cfg, {"limbs": [["nose", "left_eye"]]}
    )
    with pytest.raises(CheckpointError, match="other limbs"):
        load_checkpoint(tmp_path / "limbs.pt")
