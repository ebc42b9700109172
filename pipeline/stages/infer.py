"""Stage 3: the network (and with the graph engine its fused decode), behind
nets.runtimes' one interface.

The decode engine is the run config's `decode.engine` (docs/MATCHING.md, "Two
engines"). On the CPU by default the native one: this stage runs the network-only
graph (`nets.model.NetworkModel`, one thread) and passes its activated maps on to the
decode stage (`pipeline.stages.decode`), which runs with the rest of the pipeline on
the other core. On a GPU the graph one: the decode is fused into the exported graph
(`nets.model.InferenceModel`) and its five outputs (maps on the input grid) leave
here. Backends: torch, ONNX Runtime and OpenVINO on the CPU; TensorRT on NVIDIA GPUs
(not runnable on the machines this was built on). ONNX Runtime and OpenVINO run an
ONNX export; exporting takes seconds, so the file is cached under
~/.cache/partstream keyed by the checkpoint's bytes, the config, the engine and the
network code.

`resolve_model` is what the runner calls up front (in the parent process): it checks
the checkpoint and returns its config, so a bad checkpoint is a one-line error before
any worker starts, and the other stages learn the input size and taxonomy.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from configs.errors import StageError
from configs.letterbox import Letterbox
from pipeline.engine.messages import Message
from pipeline.engine.worker import describe
from pipeline.stages.preprocess import letterbox_tensor

BACKENDS = ("auto", "torch", "onnxruntime", "openvino", "tensorrt")
OUTPUTS = ("keypoints", "person_scores", "person_valid", "instances", "parts")
RANDOM_SEED = 0     # random weights are seeded: every process must build the same net


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "partstream"


def resolve_model(checkpoint: str | None, config: dict[str, Any]) -> dict[str, Any]:
    """The config of the model that will run: the checkpoint's own, or (no checkpoint
    and no shipped weights) `config` for random weights."""
    from configs.errors import CheckpointError
    from nets.model import DEFAULT_WEIGHTS, load_checkpoint

    path = checkpoint or (DEFAULT_WEIGHTS if DEFAULT_WEIGHTS.is_file() else None)
    if path is None:
        return config
    try:
        return load_checkpoint(path)[1]
    except CheckpointError as exc:
        raise StageError(str(exc)) from exc


def _load(checkpoint: str | None, config: dict[str, Any]) -> tuple[Any, dict, str]:
    """(the network, cfg, identity for the export cache)."""
    import torch

    from configs.errors import CheckpointError
    from nets.model import DEFAULT_WEIGHTS, build_model, load_checkpoint

    path = checkpoint or (DEFAULT_WEIGHTS if DEFAULT_WEIGHTS.is_file() else None)
    if path is None:
        print(f"warning: no trained model ({DEFAULT_WEIGHTS} is missing): running "
              "RANDOM weights, the overlay will show noise", file=sys.stderr)
        torch.manual_seed(RANDOM_SEED)
        model, cfg = build_model(config), config
        identity = f"random{RANDOM_SEED}"
    else:
        try:
            model, cfg = load_checkpoint(path)
        except CheckpointError as exc:
            raise StageError(str(exc)) from exc
        identity = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return model.eval(), cfg, identity


def _module(model: Any, cfg: dict[str, Any], engine: str) -> Any:
    """What the backend runs: the network alone (native engine) or with its decode."""
    from nets.model import InferenceModel, NetworkModel

    if engine == "native":
        return NetworkModel(model)
    return InferenceModel(model, cfg, cfg["decode"]["matcher"])


class Infer:
    """`input` (or, on a GPU, `image` + `transform`) -> the five decode outputs
    (graph engine) or the network's activated maps (native engine: `stages.decode`).

    threads: the backend's (None: 1 with the native engine, whose decode and the
    other stages use the second core; 2 with the graph engine)."""

    name = "infer"
    bottleneck = True     # live sources drop frames before this stage, not after

    def __init__(
        self,
        config: dict[str, Any],
        checkpoint: str | None = None,
        backend: str = "auto",
        device: str = "cpu",
        threads: int | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend '{backend}' (use {', '.join(BACKENDS)})")
        self.config, self.checkpoint = config, checkpoint
        self.backend, self.device, self.threads = backend, device, threads
        self.runtime: Any = None
        self.module: Any = None
        self.keys: tuple[str, ...] = OUTPUTS
        self.info: dict[str, Any] = {}

    def open(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise StageError(f"unknown device '{self.device}' (use cpu or cuda)")
        from pipeline.stages.decode import MAPS

        model, cfg, identity = _load(self.checkpoint, self.config)
        self.cfg, self.size = cfg, int(cfg["input_size"])
        engine = engine_for(self.config, self.device)
        self.keys = MAPS if engine == "native" else OUTPUTS
        threads = self.threads or (1 if engine == "native" else 2)
        module = _module(model, cfg, engine)
        backend = self.backend
        if backend == "auto":
            backend = "tensorrt" if self.device == "cuda" else _cpu_default(engine)
        if self.device == "cuda" and backend not in ("torch", "tensorrt"):
            raise StageError(f"--device cuda runs the torch or tensorrt backend, "
                             f"not {backend}")
        self.info = {"backend": backend, "engine": engine, "threads": threads}
        if self.device == "cuda" and backend == "torch":
            self._open_torch_cuda(module)
            return
        from nets.runtimes import make_runtime

        try:
            if backend == "torch":
                self.runtime = make_runtime("torch", module, threads)
            else:
                self.runtime = make_runtime(backend, self._export(module, backend,
                                                                  identity, engine),
                                            threads, size=self.size)
        except (ImportError, RuntimeError, ValueError, OSError) as exc:
            raise StageError(f"backend {backend}: {exc}") from exc

    def _open_torch_cuda(self, module: Any) -> None:
        import torch

        if not torch.cuda.is_available():
            raise StageError("--device cuda: torch sees no CUDA GPU")
        self.module = module.to("cuda")

    def _export(self, module: Any, backend: str, identity: str, engine: str) -> Path:
        """The exported model file for `backend`, from the cache when possible."""
        from nets import export

        key = _cache_key(identity, self.cfg, engine)
        folder = cache_dir() / key
        if backend == "tensorrt":
            path = folder / "model.ep"
            make = export.export_tensorrt
        else:
            path = folder / "model.onnx"
            make = export.export_onnx
        if not path.is_file():
            print(f"exporting the model for {backend} (once; cached in {folder})",
                  file=sys.stderr)
            tmp = folder / f"tmp-{os.getpid()}" / path.name
            try:
                make(module, tmp, self.size)
            except Exception as exc:
                raise StageError(f"exporting the model for {backend} failed: "
                                 f"{describe(exc)}") from exc
            for f in tmp.parent.iterdir():
                f.replace(folder / f.name)
            tmp.parent.rmdir()
        return path

    def process(self, msg: Message) -> Message:
        a = msg.arrays
        if self.module is not None:                  # GPU: letterbox on the device
            import torch

            box = Letterbox.from_dict(msg.header["transform"])
            with torch.inference_mode():
                x = letterbox_tensor(a["image"], box, "cuda")
                out = {k: v.cpu().numpy() for k, v in self.module(x).items()}
        else:
            out = self.runtime.run(a.pop("input")[None])
        for key in self.keys:
            a[key] = np.asarray(out[key][0])
        return msg

    def close(self) -> dict[str, Any] | None:
        return self.info


def engine_for(config: dict[str, Any], device: str) -> str:
    """The decode engine a run config asks for on `device` (a one-line error for an
    unknown one)."""
    from nets.decode import decode_engine

    try:
        return decode_engine(config, device)
    except ValueError as exc:
        raise StageError(str(exc)) from exc


def _cache_key(identity: str, cfg: dict[str, Any], engine: str) -> str:
    """Weights, full config (input size, decode settings), decode engine and the
    network code: an export is reused only if all four are unchanged."""
    import nets

    digest = hashlib.sha256(f"{identity}/{engine}".encode())
    digest.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    for source in sorted(Path(nets.__file__).parent.glob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


# --backend auto on the CPU, best first, per decode engine. Measured here (2 shared
# cores, default model, 384 px, f32). The network alone (native engine), 1 thread,
# AMD EPYC at load average 9: OpenVINO 62 ms/frame and 1 s to compile, ONNX Runtime
# 82 ms (256 px: 34 / 39 ms). With the fused decode (graph engine), 2 threads: ONNX
# Runtime 129 ms/frame and 2.6 s to load; OpenVINO 121 ms/frame but 9.5 s to compile;
# eager torch 1050 ms/frame (docs/PIPELINE.md).
CPU_PREFERENCE = {"native": ("openvino", "onnxruntime", "torch"),
                  "graph": ("onnxruntime", "openvino", "torch")}


def check_backend(backend: str, device: str) -> None:
    """One line before the model loads if an explicitly chosen backend's package is
    missing (TensorRT without torch-tensorrt or a GPU, OpenVINO without its extra)."""
    from nets.export import TensorRTUnavailable, import_tensorrt

    try:
        if backend == "tensorrt" or (backend == "auto" and device == "cuda"):
            import_tensorrt()
        elif backend == "openvino":
            from configs.extras import require

            require("openvino", "openvino")
    except (ImportError, TensorRTUnavailable) as exc:
        raise StageError(f"backend {backend}: {exc}") from exc


def _cpu_default(engine: str) -> str:
    """The preferred CPU backend for `engine` among those that import here."""
    from nets.runtimes import available_runtimes

    have = available_runtimes()
    return next(name for name in CPU_PREFERENCE[engine] if name in have)
