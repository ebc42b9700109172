"""`MGParser.maps`, the inference path (NetworkModel, InferenceModel), gives the maps of
the training forward + `activations`, in eager torch and exported to OpenVINO, for
random networks of both decoder layouts and for the shipped weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from nets.decode import decode_fixed
from nets.export import export_onnx
from nets.model import (
    DEFAULT_WEIGHTS,
    InferenceModel,
    MGParser,
    NetworkModel,
    activations,
    build_model,
    load_model,
)
from nets.runtimes import OpenVinoRuntime
from tests.nets.tiny_model import tiny_cfg

torch.set_num_threads(1)
NAMES = ["parts", "heatmap", "offsets", "limbs", "hough", "dspf"]
# Eager: the joint product and the plane-wise upsampling round differently at most.
EAGER_ATOL = 1e-5
# OpenVINO f32 against eager torch, relative to each map's range (as test_export).
EXPORT_RTOL = 1e-4


def tiny(shared: bool) -> MGParser:
    torch.manual_seed(0)
    cfg = tiny_cfg("movenet")
    cfg["model"]["shared_decoder"] = shared
    model = build_model(cfg).eval()
    with torch.no_grad():  # a trained-looking spread instead of the init's zeros
        for conv in model.dspf.flow if model.dspf.warping else []:
            conv.weight.normal_(0.0, 0.5)
    return model


def shipped() -> MGParser:
    if not DEFAULT_WEIGHTS.is_file():
        pytest.skip(f"no shipped weights at {DEFAULT_WEIGHTS}")
    return load_model()[0].eval()


def images(size: int, batch: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.rand(batch, 3, size, size, generator=generator)


def training_maps(model: MGParser, x: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return activations(model(x))


def assert_maps_equal(got: dict, ref: dict, atol: float) -> None:
    assert list(got) == NAMES
    for name in NAMES:
        value, expected = np.asarray(got[name]), ref[name].numpy()
        assert value.shape == expected.shape, name
        scale = max(1.0, float(np.abs(expected).max()))
        err = float(np.abs(value - expected).max())
        assert err <= atol * scale, (name, err)


@pytest.mark.parametrize("shared", [False, True])
def test_random_network_maps_equal_the_training_path(shared: bool) -> None:
    model = tiny(shared)
    x = images(64, batch=2)
    with torch.no_grad():
        got = NetworkModel(model)(x)
    assert_maps_equal(got, training_maps(model, x), EAGER_ATOL)


def test_shipped_network_maps_equal_the_training_path() -> None:
    model = shipped()
    x = images(128)
    with torch.no_grad():
        got = NetworkModel(model)(x)
    assert_maps_equal(got, training_maps(model, x), EAGER_ATOL)


@pytest.mark.forked  # OpenVINO in its own process (see tests/bench/test_network_cost)
@pytest.mark.parametrize("which", ["random, own decoders", "random, shared", "shipped"])
def test_exported_maps_equal_the_training_path(which: str, tmp_path: Path) -> None:
    model = shipped() if which == "shipped" else tiny(which.endswith("shared"))
    size = 128 if which == "shipped" else 64
    x = images(size)
    path = export_onnx(NetworkModel(model), tmp_path / "net.onnx", size)
    got = OpenVinoRuntime(path, threads=1).run(x.numpy())
    assert_maps_equal(got, training_maps(model, x), EXPORT_RTOL)


def test_inference_model_decodes_the_inference_maps() -> None:
    torch.manual_seed(0)
    cfg = tiny_cfg("movenet")
    cfg["model"]["shared_decoder"] = True
    model = build_model(cfg).eval()
    x = images(64)
    with torch.no_grad():
        got = InferenceModel(model, cfg)(x)
        ref = decode_fixed(activations(model(x)), cfg, cfg["decode"]["matcher"])
    assert list(got) == list(ref)
    for name, value in ref.items():
        assert torch.equal(got[name], value), name
