import warnings

import numpy as np
import onnxruntime as ort
import openvino as ov
import pytest
import torch
from torch import nn

from nets.decode import decode_engine, decode_fixed
from nets.export import OPSET, TensorRTUnavailable, export_onnx, export_openvino, main
from nets.hough import hough_vote
from nets.model import InferenceModel, NetworkModel, build_model, save_checkpoint
from nets.native import NativeDecoder
from nets.runtimes import (
    NativeDecoded,
    OnnxRuntime,
    OpenVinoRuntime,
    TorchRuntime,
    available_runtimes,
    make_runtime,
    openvino_bf16_supported,
)
from tests.nets.tiny_model import tiny_cfg
from trainers.data import synthetic_scene
from trainers.targets import encode_batch

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def parser():
    torch.manual_seed(0)
    cfg = tiny_cfg()
    return build_model(cfg).eval(), cfg


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)


@pytest.fixture(scope="module")
def maps_onnx(parser, tmp_path_factory):
    return export_onnx(parser[0], tmp_path_factory.mktemp("x") / "maps.onnx", 64)


def assert_close(out, ref, rtol):
    assert set(out) == set(ref)
    for name, value in ref.items():
        scale = max(1.0, float(np.abs(value).max()))
        err = float(np.abs(out[name].astype(np.float64) - value).max())
        assert err <= rtol * scale, (name, err, scale)


def test_network_maps_match_torch_in_onnxruntime_and_openvino(
    parser, images, maps_onnx
):
    ref = TorchRuntime(parser[0], threads=1).run(images)
    assert {"parts", "hough", "dspf_0", "dspf_3"} <= set(ref)
    assert_close(OnnxRuntime(maps_onnx, threads=1).run(images), ref, 1e-4)
    assert_close(OpenVinoRuntime(maps_onnx, threads=1).run(images), ref, 1e-4)


@pytest.mark.skipif(not openvino_bf16_supported(), reason="no bf16 on this CPU")
def test_openvino_bf16_stays_close(parser, images, maps_onnx):
    ref = TorchRuntime(parser[0], threads=1).run(images)
    runtime = OpenVinoRuntime(maps_onnx, threads=1, precision="bf16")
    assert runtime.precision == "bf16"
    assert_close(runtime.run(images), ref, 0.05)


def test_export_leaves_the_module_in_eval_mode(tmp_path):
    torch.manual_seed(0)
    model = build_model(tiny_cfg()).eval()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)["parts"]
        export_onnx(model, tmp_path / "m.onnx", 64)
        assert not any(m.training for m in model.modules())
        assert torch.equal(model(x)["parts"], before)


def test_onnx_graph_opset_and_names(maps_onnx):
    session = ort.InferenceSession(str(maps_onnx), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    assert session.get_inputs()[0].shape == [1, 3, 64, 64]
    import onnx

    assert onnx.load(str(maps_onnx)).opset_import[0].version == OPSET


class DecodeGraph(nn.Module):
    """The fused decode alone, fed activated maps (how the decode oracle feeds it)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg

    def forward(self, parts, heatmap, offsets, limbs, hough, dspf):
        maps = dict(parts=parts, heatmap=heatmap, offsets=offsets, limbs=limbs)
        out = decode_fixed(dict(maps, hough=hough, dspf=dspf), self.cfg)
        return tuple(out[k] for k in OUTPUTS)


OUTPUTS = ["keypoints", "person_scores", "person_valid", "instances", "parts"]


def test_fused_decode_matches_torch_on_ground_truth_maps(tmp_path):
    cfg = tiny_cfg(size=128)
    cfg["data"]["people"] = [2, 3]
    batch = encode_batch([synthetic_scene(1, cfg)], cfg)
    radius = cfg["targets"]["disk_radius"] / cfg["output_stride"]
    parts = torch.nn.functional.one_hot(batch["parts"].clamp(max=15), 16)
    inputs = (
        parts.permute(0, 3, 1, 2).float(),
        batch["heatmap"],
        batch["offsets"],
        batch["limbs"],
        hough_vote(batch["heatmap"], batch["offsets"], radius),
        batch["dspf_4"],
    )
    graph = DecodeGraph(cfg)
    with torch.no_grad():
        ref = [t.numpy() for t in graph(*inputs)]
    assert (
        ref[2].sum() >= 1
    )  # the decode finds people, so the comparison means something
    path = tmp_path / "decode.onnx"
    names = ["in_parts", "heatmap", "offsets", "limbs", "hough", "dspf"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            inputs,
            str(path),
            input_names=names,
            output_names=OUTPUTS,
            opset_version=OPSET,
            dynamo=False,
        )
    feed = {n: t.numpy() for n, t in zip(names, inputs, strict=True)}
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ort_out = session.run(OUTPUTS, {i.name: feed[i.name] for i in session.get_inputs()})
    compiled = ov.Core().compile_model(
        str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"}
    )
    ov_feed = [feed[i.get_any_name()] for i in compiled.inputs]  # unused maps pruned
    ov_out = compiled(ov_feed)
    for got in (ort_out, [ov_out[o] for o in compiled.outputs]):
        for name, a, b in zip(OUTPUTS, got, ref, strict=True):
            if a.dtype.kind == "f":
                assert np.allclose(a, b, atol=1e-3), name
            else:
                assert np.array_equal(a, b), name


@pytest.fixture(scope="module")
def inference_onnx(parser, tmp_path_factory):
    """InferenceModel exported by the CLI from a checkpoint (greedy: smaller graph)."""
    model, cfg = parser
    folder = tmp_path_factory.mktemp("cli")
    save_checkpoint(folder / "c.pt", model, cfg)
    out = folder / "m.onnx"
    args = ["--checkpoint", str(folder / "c.pt"), "--format", "onnx", "--out", str(out)]
    args += ["--size", "64", "--engine", "graph", "--matcher", "greedy"]
    assert main(args) == 0
    return out


def test_inference_model_runs_the_same_in_every_runtime(parser, images, inference_onnx):
    model, cfg = parser
    ref = make_runtime("torch", InferenceModel(model, cfg, "greedy"), threads=1).run(
        images
    )
    assert set(ref) == set(OUTPUTS)
    for name in ("onnxruntime", "openvino"):
        out = make_runtime(name, inference_onnx, threads=1).run(images)
        for key in OUTPUTS:
            assert np.allclose(out[key], ref[key], atol=1e-4), (name, key)


def test_openvino_ir_export(parser, images, tmp_path):
    path = export_openvino(parser[0], tmp_path / "maps", 64)
    assert path.suffix == ".xml" and path.with_suffix(".bin").is_file()
    ref = TorchRuntime(parser[0], threads=1).run(images)
    assert_close(OpenVinoRuntime(path, threads=1).run(images), ref, 1e-4)


def test_cli_reports_bad_input_in_one_line(inference_onnx, tmp_path, capsys):
    ckpt = str(inference_onnx.with_name("c.pt"))
    out = ["--out", str(tmp_path / "x.onnx")]
    assert (
        main(["--checkpoint", str(tmp_path / "none.pt"), "--format", "onnx", *out]) == 1
    )
    assert "checkpoint not found" in capsys.readouterr().err
    assert main(["--checkpoint", ckpt, "--format", "onnx", *out, "--size", "50"]) == 1
    assert "multiple of 32" in capsys.readouterr().err
    assert main(["--checkpoint", ckpt, "--format", "tensorrt", *out]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "GPU" in err


def test_runtime_choice(maps_onnx):
    assert available_runtimes() == ["onnxruntime", "openvino", "torch"]
    assert make_runtime("auto", maps_onnx, threads=1).name == "onnxruntime"
    with pytest.raises(ValueError, match="unknown runtime"):
        make_runtime("tflite", maps_onnx)
    with pytest.raises(FileNotFoundError):
        make_runtime("onnxruntime", maps_onnx.with_name("missing.onnx"))
    with pytest.raises(TensorRTUnavailable, match="GPU"):
        make_runtime("tensorrt", maps_onnx)


def test_native_engine_exports_the_network_decoded_outside(parser, images, tmp_path):
    """--engine native writes the network-only graph; NativeDecoded over any runtime
    of it gives the native decode of torch's own maps."""
    model, cfg = parser
    save_checkpoint(tmp_path / "c.pt", model, cfg)
    out = tmp_path / "net.onnx"
    args = ["--checkpoint", str(tmp_path / "c.pt"), "--format", "onnx"]
    assert main([*args, "--out", str(out), "--size", "64", "--engine", "native"]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert {o.name for o in session.get_outputs()} == {
        "parts", "heatmap", "offsets", "limbs", "hough", "dspf"
    }  # fmt: skip
    with torch.inference_mode():
        maps = NetworkModel(model)(torch.from_numpy(images))
    ref = NativeDecoder(cfg)({k: v.numpy() for k, v in maps.items()})
    for name in ("onnxruntime", "openvino"):
        runtime = NativeDecoded(make_runtime(name, out, threads=1), cfg)
        assert runtime.name == f"{name}+native"
        got = runtime.run(images)
        assert set(got) == set(OUTPUTS)
        assert got["instances"].shape == (1, 16, 16)  # the cell grid
        for key in ("person_valid", "person_scores", "keypoints"):
            assert np.allclose(got[key], ref[key], atol=1e-3), (name, key)


def test_decode_engine_by_device():
    cfg = tiny_cfg()
    assert decode_engine(cfg, "cpu") == "native"
    assert decode_engine(cfg, "cuda") == "graph"
    cfg["decode"]["engine"] = "graph"
    assert decode_engine(cfg, "cpu") == "graph"
    cfg["decode"]["engine"] = "fast"
    with pytest.raises(ValueError, match="decode.engine"):
        decode_engine(cfg)
