"""One interface over the inference backends: `Runtime.run(images) -> named arrays`.

    rt = make_runtime("auto", "model.onnx")          # or a module, or a checkpoint .pt
    out = rt.run(images)                              # images: 1 x 3 x H x W float32

Outputs are named as `nets.export.flatten_outputs` names them, identically for every
backend. "auto" is `auto_runtime`: configs.constants.CPU_PREFERENCE on the CPU.
Backends given an nn.Module where they need a file export it to a temporary one.

The native decode engine: `NativeDecoded(make_runtime(name, network_graph), cfg)`
runs the network-only graph (`nets.model.NetworkModel`) and decodes its maps with
`nets.native`; its outputs are the decode's, like an `InferenceModel` graph's.
"""

from __future__ import annotations

import json
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from configs.constants import BACKENDS, CPU_PREFERENCE
from configs.extras import require
from nets.export import (
    export_onnx,
    flatten_outputs,
    import_tensorrt,
    output_names_file,
)
from nets.model import InferenceModel, load_checkpoint

PRECISIONS = ("f32", "bf16", "auto")


class Runtime(ABC):
    """A loaded model that maps a batch of images to named numpy outputs."""

    name: str

    @abstractmethod
    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """images: B x 3 x H x W float32 RGB in [0, 1] (B = 1 for exported graphs)."""


class TorchRuntime(Runtime):
    """Eager torch; channels_last is 1.5-2x faster for convolutions on CPU."""

    name = "torch"

    def __init__(self, module: nn.Module, threads: int = 2, channels_last: bool = True):
        torch.set_num_threads(threads)
        self.channels_last = channels_last
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.module = module.eval().to(memory_format=fmt)

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            out = flatten_outputs(self.module(x))
        return {k: v.numpy() for k, v in out.items()}


class OnnxRuntime(Runtime):
    """ONNX Runtime on the CPU with `threads` intra-op threads that sleep when idle
    (no spinning: the cores are shared with the pipeline's other stages)."""

    name = "onnxruntime"

    def __init__(self, path: str | Path, threads: int = 2):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self.input = self.session.get_inputs()[0].name
        self.names = [o.name for o in self.session.get_outputs()]

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        x = np.ascontiguousarray(images, dtype=np.float32)
        return dict(
            zip(self.names, self.session.run(None, {self.input: x}), strict=True)
        )


class NativeDecoded(Runtime):
    """A runtime of the network-only graph, then the native decode of its maps: the
    decode outputs (`nets.native.NativeDecoder`, maps on the cell grid)."""

    def __init__(self, network: Runtime, cfg: dict[str, Any]):
        from nets.native import NativeDecoder

        self.network = network
        self.decoder = NativeDecoder(cfg)
        self.decoder.warm_up()
        self.name = f"{network.name}+native"

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return self.decoder(self.network.run(images))


def openvino_bf16_supported() -> bool:
    """Whether OpenVINO's CPU plugin reports native bf16 on this CPU."""
    ov = require("openvino", "openvino")

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OpenVinoRuntime(Runtime):
    """OpenVINO CPU plugin on an .onnx or .xml model.

    precision: "f32" (matches torch to float rounding), "bf16" (faster where the CPU
    has bf16 instructions; ~1% relative error on the maps), or "auto" (bf16 if
    supported, else f32). Asking for bf16 on a CPU without it is an error.
    """

    name = "openvino"

    def __init__(self, path: str | Path, threads: int = 2, precision: str = "f32"):
        ov = require("openvino", "openvino")

        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision '{precision}' (known: {PRECISIONS})")
        bf16 = openvino_bf16_supported()
        if precision == "bf16" and not bf16:
            raise ValueError("this CPU has no bf16 support in OpenVINO; use f32")
        if precision == "auto":
            precision = "bf16" if bf16 else "f32"
        self.precision = precision
        self.compiled = ov.Core().compile_model(
            str(path),
            "CPU",
            {
                "INFERENCE_NUM_THREADS": threads,
                "INFERENCE_PRECISION_HINT": precision,
                "PERFORMANCE_HINT": "LATENCY",
            },
        )
        self.request = self.compiled.create_infer_request()
        self.names = [o.get_any_name() for o in self.compiled.outputs]

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        return self.infer(images)

    def infer(self, *inputs: np.ndarray) -> dict[str, np.ndarray]:
        """`run` for a graph of any number of float32 inputs, in the graph's order
        (a piece of the network exported alone: bench.network_cost)."""
        feed = {
            i: np.ascontiguousarray(x, dtype=np.float32) for i, x in enumerate(inputs)
        }
        result = self.request.infer(feed)
        return {
            n: np.array(result[o])
            for n, o in zip(self.names, self.compiled.outputs, strict=True)
        }


class TensorRTRuntime(Runtime):
    """A torch-tensorrt ExportedProgram from `nets.export --format tensorrt`, on GPU.

    Needs a CUDA GPU and torch-tensorrt; without them the constructor says so in one
    line.
    """

    name = "tensorrt"

    def __init__(self, path: str | Path):
        trt = import_tensorrt()
        self.program = trt.load(str(path)).module()
        self.names = json.loads(output_names_file(path).read_text())

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).cuda()
        with torch.inference_mode():
            out = self.program(x)
        return {n: v.cpu().numpy() for n, v in zip(self.names, out, strict=True)}


def available_runtimes(engine: str = "graph") -> list[str]:
    """CPU backends that import here, best first for the decode `engine`
    (configs.constants.CPU_PREFERENCE; torch always)."""
    names = []
    for name in CPU_PREFERENCE[engine]:
        try:
            __import__(name)
            names.append(name)
        except ImportError:
            continue
    return names


def auto_runtime(device: str = "cpu", engine: str = "graph") -> str:
    """What "auto" runs: TensorRT on a GPU, else the preferred CPU backend here for
    the decode `engine` ("graph": the exported graph holds the decode)."""
    return "tensorrt" if device == "cuda" else available_runtimes(engine)[0]


def make_runtime(
    name: str,
    model: str | Path | nn.Module,
    threads: int = 2,
    precision: str = "f32",
    size: int = 384,
    keep_dir: str | Path | None = None,
) -> Runtime:
    """A runtime by name for a model file or module.

    model: an .onnx/.xml file (onnxruntime/openvino), a checkpoint .pt (torch; wrapped
    in InferenceModel), a TensorRT program (tensorrt), or an nn.Module (any backend:
    exported to ONNX at `size` px first, into `keep_dir` or a temporary directory).
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown runtime '{name}' (known: {', '.join(BACKENDS)})")
    if name == "auto":
        name = auto_runtime()
    if name == "tensorrt":
        return TensorRTRuntime(model)  # type: ignore[arg-type]
    if name == "torch":
        if not isinstance(model, nn.Module):
            module, cfg = load_checkpoint(model)
            model = InferenceModel(module, cfg)
        return TorchRuntime(model, threads)
    if isinstance(model, nn.Module):
        if keep_dir is not None:
            model = export_onnx(model, Path(keep_dir) / "model.onnx", size)
        else:  # the backends read the whole file when they load it
            with tempfile.TemporaryDirectory(prefix="partstream-") as tmp:
                onnx_path = export_onnx(model, Path(tmp) / "model.onnx", size)
                return _file_runtime(name, onnx_path, threads, precision)
    return _file_runtime(name, Path(model), threads, precision)


def _file_runtime(name: str, path: Path, threads: int, precision: str) -> Runtime:
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    if name == "onnxruntime":
        return OnnxRuntime(path, threads)
    return OpenVinoRuntime(path, threads, precision)
