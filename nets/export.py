"""Export the parser for deployment runtimes.

    python -m nets.export [--checkpoint C] --format onnx|openvino|tensorrt --out PATH
                          [--size 384] [--engine native|graph] [--matcher pgd|greedy]

Exports, for the decode engine (`decode.engine`; auto: native for onnx and openvino,
graph for tensorrt), either `NetworkModel` (engine native: image in, activated maps
out, decoded by `nets.native` outside the graph) or `InferenceModel` (engine graph:
image in, fused decode, five tensors out); fixed batch 1, size x size input. No
checkpoint: the shipped default model (nets/weights/default.pt, random weights with a
warning while it does not exist).

- onnx: opset 17 via the TorchScript exporter. The torch.export-based exporter also
  works but took 456 s instead of 10 s on the unrolled PGD decode here, and cannot
  write opset 17 for this graph (it stays at 18).
- openvino: the ONNX graph converted to OpenVINO IR (PATH.xml + PATH.bin); precision
  (f32/bf16) is chosen when the runtime compiles it (nets.runtimes).
- tensorrt: torch-tensorrt compile of the same module, saved as an ExportedProgram.
  Needs an NVIDIA GPU and torch-tensorrt from NVIDIA's package index.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from configs.cli import add_checkpoint, setup_logging
from configs.errors import CheckpointError
from configs.extras import require
from nets.decode import ENGINES, decode_engine, decode_fixed
from nets.matching import MATCHERS
from nets.model import InferenceModel, NetworkModel, load_model

log = logging.getLogger(__name__)

FORMATS = ("onnx", "openvino", "tensorrt")
OPSET = 17


def flatten_outputs(outputs: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Named tensors of a module's output dict; list entries become name_0, name_1..
    (the names the exported graph's outputs get, so every runtime returns the same
    keys)."""
    flat: dict[str, torch.Tensor] = {}
    for name, value in outputs.items():
        if isinstance(value, (list, tuple)):
            flat.update({f"{name}_{i}": v for i, v in enumerate(value)})
        else:
            flat[name] = value
    return flat


class _Flat(nn.Module):
    """A dict-returning module as a tuple-returning one, for the exporters."""

    def __init__(self, module: nn.Module, names: list[str]):
        super().__init__()
        self.module, self.names = module, names

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        flat = flatten_outputs(self.module(*inputs))
        return tuple(flat[n] for n in self.names)


DECODE_INPUTS = ("parts", "heatmap", "offsets", "limbs", "hough", "dspf")
DECODE_OUTPUTS = ("keypoints", "person_scores", "person_valid", "instances", "parts")


class DecodeGraph(nn.Module):
    """The graph engine's decode alone: the maps in DECODE_INPUTS order in, the
    DECODE_OUTPUTS tensors out (to export and time it apart from the network)."""

    def __init__(self, cfg: dict[str, Any]):
        super().__init__()
        self.cfg = cfg

    def forward(self, *maps: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = decode_fixed(dict(zip(DECODE_INPUTS, maps, strict=True)), self.cfg)
        return tuple(out[k] for k in DECODE_OUTPUTS)


def decode_onnx(cfg: dict[str, Any], maps: tuple[torch.Tensor, ...]) -> bytes:
    """`DecodeGraph` traced on `maps` as ONNX bytes; its inputs are named in_<map>."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and legacy-exporter notices
        torch.onnx.export(
            DecodeGraph(cfg),
            maps,
            buffer,
            input_names=[f"in_{k}" for k in DECODE_INPUTS],
            output_names=list(DECODE_OUTPUTS),
            opset_version=OPSET,
            dynamo=False,
        )
    return buffer.getvalue()


def _example(size: int) -> torch.Tensor:
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))


def export_onnx(
    module: nn.Module,
    path: str | Path,
    size: int,
    inputs: tuple[torch.Tensor, ...] | None = None,
) -> Path:
    """Write `module` (images -> dict of tensors) as ONNX, batch 1, size x size; or,
    given `inputs`, a module of those tensors traced on them (a piece of the network,
    timed alone by bench.network_cost), inputs named input_0, input_1, ..."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    example = (_example(size),) if inputs is None else inputs
    input_names = (
        ["images"] if inputs is None else [f"input_{i}" for i in range(len(inputs))]
    )
    with torch.no_grad():
        names = list(flatten_outputs(module(*example)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer and legacy-exporter notices
            torch.onnx.export(
                # eval: the exporter restores the wrapper's training flag, and a new
                # module's is True, which left `module` in training mode (batch norm
                # on batch statistics) for every eager call after an export
                _Flat(module, names).eval(),
                example,
                str(path),
                input_names=input_names,
                output_names=names,
                opset_version=OPSET,
                dynamo=False,
            )
    return path


def export_openvino(module: nn.Module, path: str | Path, size: int) -> Path:
    """Write OpenVINO IR (path with suffix .xml, plus .bin) through ONNX."""
    ov = require("openvino", "openvino")

    path = Path(path).with_suffix(".xml")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(module, Path(tmp) / "model.onnx", size)
        # read_model: ONNX frontend only (convert_model took 17 s instead of 0.6 s
        # on the decode graph here, for the same IR).
        model = ov.Core().read_model(str(onnx_path))
        ov.save_model(model, str(path), compress_to_fp16=False)
    return path


class TensorRTUnavailable(RuntimeError):
    """torch-tensorrt or a CUDA GPU is missing."""


def import_tensorrt() -> Any:
    """torch_tensorrt, or a clear error saying what it needs."""
    try:
        import torch_tensorrt
    except ImportError as exc:
        raise TensorRTUnavailable(
            "TensorRT needs an NVIDIA GPU and torch-tensorrt from NVIDIA's package "
            "index (pip install torch-tensorrt --extra-index-url "
            "https://download.pytorch.org/whl/cu124); this install has neither"
        ) from exc
    if not torch.cuda.is_available():
        raise TensorRTUnavailable("TensorRT needs a CUDA GPU; none is visible")
    return torch_tensorrt


def export_tensorrt(module: nn.Module, path: str | Path, size: int) -> Path:
    """Compile with torch-tensorrt (fp16 allowed) and save the ExportedProgram."""
    trt = import_tensorrt()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = _example(size).cuda()
    with torch.no_grad():
        names = list(flatten_outputs(module.eval()(images.cpu())))
        flat = _Flat(module, names).cuda().eval()
        compiled = trt.compile(
            flat,
            ir="dynamo",
            inputs=[images],
            enabled_precisions={torch.float32, torch.float16},
        )
        trt.save(compiled, str(path), inputs=[images])
    output_names_file(path).write_text(json.dumps(names))
    return path


def output_names_file(path: str | Path) -> Path:
    """Sidecar JSON with a TensorRT program's output names (its graph has none)."""
    return Path(str(path) + ".names.json")


EXPORTERS = {
    "onnx": export_onnx,
    "openvino": export_openvino,
    "tensorrt": export_tensorrt,
}


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    parser = argparse.ArgumentParser(
        prog="python -m nets.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_checkpoint(parser)
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--out", required=True, help="output file")
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="square input size in px (default: the config's)",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default=None,
        help="decode engine (default: the config's decode.engine; auto is native "
        "for onnx and openvino, graph for tensorrt)",
    )
    parser.add_argument(
        "--matcher",
        choices=[m for m in MATCHERS if m != "hungarian"],
        default=None,
        help="in-graph matcher (default: the config's "
        "unless hungarian, which cannot be exported: then pgd)",
    )
    args = parser.parse_args(argv)
    try:
        model, cfg = load_model(args.checkpoint)
        size = args.size or int(cfg["input_size"])
        if size <= 0 or size % 32:
            raise ValueError(f"--size must be a positive multiple of 32, got {size}")
        device = "cuda" if args.format == "tensorrt" else "cpu"
        engine = args.engine or decode_engine(cfg, device)
        matcher = args.matcher or cfg["decode"]["matcher"]
        if matcher == "hungarian":
            matcher = "pgd"
        module = (
            NetworkModel(model)
            if engine == "native"
            else InferenceModel(model, cfg, matcher)
        )
        out = EXPORTERS[args.format](module, args.out, size)
    except (CheckpointError, TensorRTUnavailable, ValueError, OSError) as exc:
        log.error("%s", exc)
        return 1
    log.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
