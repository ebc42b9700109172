"""Stage 3: the network (and with the graph engine its fused decode), behind
nets.runtimes' one interface.

The decode engine is the run config's `decode.engine` (docs/MATCHING.md, "Two
engines"). On the CPU by default the native one: this stage runs the network-only
graph (`nets.model.NetworkModel`, one thread) and passes its activated maps on to the
decode stage (`pipeline.stages.decode`), which runs with the rest of the pipeline on
the other core. On a GPU the graph one: the decode is fused into the exported graph
(`nets.model.InferenceModel`) and its five outputs (maps on the input grid) leave
here. Backends: torch, ONNX Runtime and OpenVINO on the CPU; TensorRT on NVIDIA GPUs
(with torch-tensorrt installed); "auto" is `nets.runtimes.auto_runtime`. ONNX Runtime
and OpenVINO run an ONNX export; exporting takes seconds, so the file is cached under
~/.cache/partstream keyed by the checkpoint's bytes, the config, the engine and the
network code.

`resolve_model` is what the runner calls up front (in the parent process): it checks
the checkpoint and returns its config, so a bad checkpoint is a one-line error before
any worker starts, and the other stages learn the input size and taxonomy. The network
is the checkpoint's; how it is run is the user's: `--input-size`, and the `decode`
settings a `--config` file sets (`configs.load_overrides`), are laid over the
checkpoint's config in both processes (`_run_config`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from configs.constants import BACKENDS
from configs.errors import StageError
from configs.letterbox import Letterbox
from pipeline.engine.messages import Message, ModelPeople
from pipeline.engine.worker import describe
from pipeline.stages.preprocess import letterbox_tensor

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "partstream"


def resolve_model(
    checkpoint: str | None,
    config: dict[str, Any],
    input_size: int | None = None,
    decode: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The config of the model that will run: the checkpoint's own, or (no checkpoint
    and no shipped weights) `config` for random weights; at `input_size` and with the
    `decode` settings given (`_run_config`)."""
    from configs.errors import CheckpointError
    from nets.model import load_checkpoint, weights_path

    path = weights_path(checkpoint)
    if path is None:
        return _run_config(config, input_size, decode)
    try:
        return _run_config(load_checkpoint(path)[1], input_size, decode)
    except CheckpointError as exc:
        raise StageError(str(exc)) from exc


def _run_config(
    cfg: dict[str, Any], input_size: int | None, decode: dict[str, Any] | None
) -> dict[str, Any]:
    """`cfg` with the network input at `input_size` (None: as it is; the network is
    fully convolutional, so any multiple of 32 runs the same weights) and `decode`'s
    settings over its own (thresholds, person slots: how the maps are read, not what
    the weights are)."""
    if input_size is not None:
        cfg = {**cfg, "input_size": int(input_size)}
    if decode:
        cfg = {**cfg, "decode": {**cfg["decode"], **decode}}
    return cfg


def _load(
    checkpoint: str | None,
    config: dict[str, Any],
    input_size: int | None,
    decode: dict[str, Any] | None,
) -> tuple[Any, dict, str]:
    """(the network, its run config (`_run_config`), identity for the export cache)."""
    from configs.errors import CheckpointError
    from nets.model import RANDOM_SEED, load_model, weights_path

    path = weights_path(checkpoint)
    try:
        model, cfg = load_model(checkpoint, config)
    except CheckpointError as exc:
        raise StageError(str(exc)) from exc
    cfg = _run_config(cfg, input_size, decode)
    identity = (
        f"random{RANDOM_SEED}"
        if path is None
        else hashlib.sha256(path.read_bytes()).hexdigest()
    )
    return model.eval(), cfg, identity


def _module(model: Any, cfg: dict[str, Any], engine: str) -> Any:
    """What the backend runs: the network alone (native engine) or with its decode."""
    from nets.model import InferenceModel, NetworkModel

    if engine == "native":
        return NetworkModel(model)
    return InferenceModel(model, cfg, cfg["decode"]["matcher"])


class Infer:
    """`msg.input` (or, on a GPU, `msg.image` + header `transform`) -> `msg.model`,
    the five decode outputs (graph engine), or `msg.maps`, the network's activated
    maps (native engine: `stages.decode`).

    threads: the backend's (None: 1 with the native engine, whose decode and the
    other stages use the second core; 2 with the graph engine)."""

    name = "infer"
    bottleneck = True  # live sources drop frames before this stage, not after
    info: dict[str, Any] | None = None

    def __init__(
        self,
        config: dict[str, Any],
        checkpoint: str | None = None,
        backend: str = "auto",
        device: str = "cpu",
        threads: int | None = None,
        input_size: int | None = None,
        decode: dict[str, Any] | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend '{backend}' (use {', '.join(BACKENDS)})")
        self.config, self.checkpoint, self.input_size = config, checkpoint, input_size
        self.decode = decode
        self.backend, self.device, self.threads = backend, device, threads
        self.runtime: Any = None
        self.module: Any = None
        self.native = False

    def open(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise StageError(f"unknown device '{self.device}' (use cpu or cuda)")
        model, cfg, identity = _load(
            self.checkpoint, self.config, self.input_size, self.decode
        )
        self.cfg, self.size = cfg, int(cfg["input_size"])
        engine = engine_for(self.config, self.device)
        self.native = engine == "native"
        threads = self.threads or (1 if engine == "native" else 2)
        module = _module(model, cfg, engine)
        backend = self.backend
        if backend == "auto":
            from nets.runtimes import auto_runtime

            backend = auto_runtime(self.device, engine)
        if self.device == "cuda" and backend not in ("torch", "tensorrt"):
            raise StageError(
                f"--device cuda runs the torch or tensorrt backend, not {backend}"
            )
        self.info = {
            "backend": backend,
            "engine": engine,
            "threads": threads,
            "input_size": self.size,
        }
        if self.device == "cuda" and backend == "torch":
            self._open_torch_cuda(module)
            return
        from nets.runtimes import make_runtime

        try:
            if backend == "torch":
                self.runtime = make_runtime("torch", module, threads)
            else:
                self.runtime = make_runtime(
                    backend,
                    self._export(module, backend, identity, engine),
                    threads,
                    size=self.size,
                )
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
            log.info("exporting the model for %s (once; cached in %s)", backend, folder)
            tmp = folder / f"tmp-{os.getpid()}" / path.name
            try:
                make(module, tmp, self.size)
            except Exception as exc:
                raise StageError(
                    f"exporting the model for {backend} failed: {describe(exc)}"
                ) from exc
            for f in tmp.parent.iterdir():
                f.replace(folder / f.name)
            tmp.parent.rmdir()
        return path

    def process(self, msg: Message) -> Message:
        if self.module is not None:  # GPU: letterbox on the device
            import torch

            box = Letterbox.from_dict(msg.header["transform"])
            with torch.inference_mode():
                x = letterbox_tensor(msg.pixels("image"), box, "cuda")
                out = {k: v.cpu().numpy() for k, v in self.module(x).items()}
        else:
            out = self.runtime.run(msg.input[None])
            msg.input = None
        if self.native:
            msg.maps = {key: np.asarray(maps[0]) for key, maps in out.items()}
        else:
            msg.model = ModelPeople.from_outputs(out)
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
