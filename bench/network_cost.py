"""Where the network's time goes, on the one thread issues 12 and 14 budget for it.

Part of `python -m bench.backends` (its JSON keys `movenet`, `one_thread`, `parts`):

- The network alone (activated maps, no decode) of the shipped model beside MoveNet
  MultiPose (`nets.movenet.load_movenet` on ../shared/models/movenet: its raw head
  maps) and beside slimmer-head variants of the shipped architecture
  (configs/head_variants.yaml: the shipped trunk, random new parts, **speed only,
  untrained**), in OpenVINO (f32, and bf16 where the CPU has it) on one thread. The
  networks run in turns, so their ratios to MoveNet compare like with like on a
  shared CPU: issue 12's budget (12 ms at 256 px, where MoveNet took 11.7) is a ratio
  where bf16 is missing.
- The shipped network cut into its parts (trunk, FPN, the part and pose heads, DSPF,
  Hough voting; the shared decoder too in a model that has one), each exported alone
  with the inputs it gets inside the network and timed in turns with the whole, in
  OpenVINO f32 on one thread. The parts' sum exceeds the whole by each graph's call
  overhead and by the fusions a whole graph allows.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from bench.common import percentiles, time_alternating
from bench.report import table
from configs import CONFIG_DIR, merge
from nets.export import export_onnx
from nets.hough import hough_vote
from nets.model import RANDOM_SEED, MGParser, NetworkModel, build_model
from nets.movenet import load_movenet
from nets.runtimes import OpenVinoRuntime, openvino_bf16_supported
from trainers.teachers.movenet import DEFAULT_MODEL as MOVENET

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = CONFIG_DIR / "head_variants.yaml"
THREADS = 1  # the network's core in the two-core pipeline (issue 14)
SHIPPED, REFERENCE = "shipped", "movenet"
UNTRAINED = "speed only, untrained"
CHANNELS = ("fpn_channels", "head_channels", "dspf_channels", "shared_decoder")


def load_reference(path: Path = MOVENET) -> tuple[nn.Module | None, str]:
    """MoveNet MultiPose (eval mode), or None when its files are absent; and a note
    saying which, for the report."""
    if not path.is_file():
        return None, (
            f"MoveNet MultiPose reference skipped: {path} not found (../shared is "
            "absent), so no network / MoveNet ratios"
        )
    shown = os.path.relpath(path, ROOT)  # ../shared/... in a checkout beside it
    return load_movenet(path), f"MoveNet MultiPose, network only, from {shown}"


def channels(cfg: dict[str, Any]) -> dict[str, Any]:
    """The CHANNELS settings a variant changes, as a row's columns."""
    m = cfg["model"]
    return {
        "fpn_channels": int(m["fpn_channels"]),
        "head_channels": int(m["head_channels"]),
        "dspf_channels": int(m["dspf"]["channels"]),
        "shared_decoder": bool(m["shared_decoder"]),
    }


def networks(
    model: MGParser,
    cfg: dict[str, Any],
    reference: nn.Module | None,
    trained: bool,
    variants: Path = VARIANTS,
) -> dict[str, dict[str, Any]]:
    """name -> {"module", "label", "trained", columns}: the shipped network, each
    variant of `variants` over its config (the shipped trunk, new parts with random
    weights seeded with RANDOM_SEED), and MoveNet when there is a reference."""
    out = {
        SHIPPED: {
            "module": NetworkModel(model).eval(),
            "label": "shipped model",
            "trained": trained,
            **channels(cfg),
        }
    }
    for name, spec in yaml.safe_load(variants.read_text()).items():
        variant = merge(cfg, {"model": {**spec["model"], "backbone_weights": None}})
        torch.manual_seed(RANDOM_SEED)
        net = build_model(variant)
        # The shipped trunk, so a variant differs from the shipped network only in
        # the parts it changes.
        net.backbone.load_state_dict(model.backbone.state_dict())
        out[name] = {
            "module": NetworkModel(net).eval(),
            "label": f"{spec['label']} ({UNTRAINED})",
            "trained": False,
            **channels(variant),
        }
    if reference is not None:
        out[REFERENCE] = {
            "module": reference,
            "label": "MoveNet MultiPose (reference)",
            "trained": True,
        }
    return out


def one_thread_rows(
    nets: dict[str, dict[str, Any]],
    images: np.ndarray,
    repeats: int,
    warmup: int,
    tmp: Path,
) -> list[dict[str, Any]]:
    """Every network of `nets` alone on `images` (1 x 3 x size x size), OpenVINO f32
    (and bf16 where supported) on THREADS threads, timed in turns: p50 / p90 ms and
    the ratios to MoveNet and to the shipped network."""
    size = images.shape[-1]
    paths = {
        name: export_onnx(net["module"], tmp / f"one_{name}_{size}.onnx", size)
        for name, net in nets.items()
    }
    precisions = ["f32"] + (["bf16"] if openvino_bf16_supported() else [])
    rows = []
    for precision in precisions:
        runtimes = {n: OpenVinoRuntime(p, THREADS, precision) for n, p in paths.items()}
        times = time_alternating(
            {n: (lambda rt=rt: rt.run(images)) for n, rt in runtimes.items()},
            repeats,
            warmup,
        )
        p50 = {n: percentiles(ms, (50,))["p50"] for n, ms in times.items()}
        for name, net in nets.items():
            rows.append(
                {
                    "size": size,
                    "backend": f"openvino-{precision}",
                    "threads": THREADS,
                    "network": name,
                    "label": net["label"],
                    "trained": net["trained"],
                    "params_m": round(params(net["module"]) / 1e6, 3),
                    **{k: net.get(k) for k in CHANNELS},
                    "network_ms": p50[name],
                    "p90_ms": percentiles(times[name], (90,))["p90"],
                    "vs_movenet": ratio(p50[name], p50.get(REFERENCE)),
                    "vs_shipped": ratio(p50[name], p50[SHIPPED]),
                }
            )
    return rows


def params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def ratio(ms: float, reference_ms: float | None) -> float | None:
    """ms / reference_ms to 3 decimals, None without a reference."""
    return None if not reference_ms else round(ms / reference_ms, 3)


class Piece(nn.Module):
    """One step of `MGParser.maps` as a module of the tensors it gets there, so it
    can be exported and timed alone."""

    def __init__(self, model: MGParser, step: Callable[..., dict[str, Any]]):
        super().__init__()
        self.model, self.step = model, step

    def forward(self, *inputs: torch.Tensor) -> dict[str, Any]:
        return self.step(self.model, *inputs)


def _heads_in(inputs: tuple[torch.Tensor, ...]) -> Any:
    """A head's input: the pyramid, or the shared decoder's one map."""
    return inputs[0] if len(inputs) == 1 else list(inputs)


def _trunk(m: MGParser, images: torch.Tensor) -> dict[str, Any]:
    return {"features": m.backbone((images - m.mean) / m.std)}


def _fpn(m: MGParser, *features: torch.Tensor) -> dict[str, Any]:
    return {"pyramid": m.fpn(list(features))}


def _shared(m: MGParser, *pyramid: torch.Tensor) -> dict[str, Any]:
    return {"decoded": m.shared_decoder(list(pyramid))}


def _heads(m: MGParser, *inputs: torch.Tensor) -> dict[str, Any]:
    return m.head_maps(_heads_in(inputs))


def _dspf(m: MGParser, *pyramid: torch.Tensor) -> dict[str, Any]:
    return {"dspf": m.dspf(list(pyramid))[0]}


def _hough(m: MGParser, heat: torch.Tensor, offsets: torch.Tensor) -> dict[str, Any]:
    return {"hough": hough_vote(heat, offsets, m.hough_radius)}


def pieces(
    model: MGParser, images: torch.Tensor
) -> list[tuple[str, Piece, tuple[torch.Tensor, ...]]]:
    """(part name, module, its inputs) for each step of `MGParser.maps`, in order;
    the steps' outputs are named as `NetworkModel`'s maps (tests hold them equal).
    "heads" is the part and pose heads together (`MGParser.head_maps`)."""
    out: list[tuple[str, Piece, tuple[torch.Tensor, ...]]] = []

    def step(name: str, fn: Callable[..., dict], *inputs: torch.Tensor) -> dict:
        piece = Piece(model, fn).eval()
        with torch.no_grad():
            result = piece(*inputs)
        out.append((name, piece, inputs))
        return result

    features = step("trunk", _trunk, images)["features"]
    pyramid = step("FPN", _fpn, *features)["pyramid"]
    heads_in = pyramid
    if model.shared_decoder is not None:
        heads_in = [step("shared decoder", _shared, *pyramid)["decoded"]]
    pose = step("heads", _heads, *heads_in)
    step("DSPF", _dspf, *pyramid)
    step("Hough", _hough, pose["heatmap"], pose["offsets"])
    return out


def part_times(
    model: MGParser, images: np.ndarray, repeats: int, warmup: int, tmp: Path
) -> dict[str, Any]:
    """p50 ms of each part of the network and of the whole, OpenVINO f32 on THREADS
    threads, all timed in turns on `images` (1 x 3 x size x size)."""
    size = images.shape[-1]
    runs: dict[str, Callable[[], Any]] = {}
    for i, (name, piece, inputs) in enumerate(pieces(model, torch.from_numpy(images))):
        path = export_onnx(piece, tmp / f"part{i}_{size}.onnx", size, inputs)
        rt = OpenVinoRuntime(path, THREADS, "f32")
        arrays = [x.numpy() for x in inputs]
        runs[name] = lambda rt=rt, arrays=arrays: rt.infer(*arrays)
    whole = OpenVinoRuntime(
        export_onnx(NetworkModel(model), tmp / f"whole_{size}.onnx", size),
        THREADS,
        "f32",
    )
    runs["network"] = lambda: whole.run(images)
    times = time_alternating(runs, repeats, warmup)
    p50 = {name: percentiles(ms, (50,))["p50"] for name, ms in times.items()}
    network = p50.pop("network")
    return {
        "size": size,
        "backend": "openvino-f32",
        "threads": THREADS,
        "parts_ms": p50,
        "sum_ms": round(sum(p50.values()), 3),
        "network_ms": network,
    }


def doc_tables(record: dict[str, Any]) -> list[str]:
    """The Markdown paragraphs and tables of the `movenet`, `one_thread` and `parts`
    records, for bench.backends' section of docs/BENCHMARKS.md."""
    out = [record["movenet"]["note"] + "."]
    rows = record["one_thread"]
    if rows:
        out.append(
            f"The network alone on {THREADS} thread (activated maps, no decode; "
            "MoveNet: its raw head maps), the networks timed in turns, median of "
            f"{record['repeats']} runs. Variants are the shipped architecture with "
            f"slimmer stride-4 heads (configs/head_variants.yaml), **{UNTRAINED}**: "
            "the shipped trunk with random new parts, so their rows say what they "
            "cost, not what they find."
        )
        out.append(
            table(
                [
                    "size",
                    "backend",
                    "network",
                    "FPN / heads / DSPF ch.",
                    "params M",
                    "ms",
                    "p90 ms",
                    "/ MoveNet",
                    "/ shipped",
                ],
                [
                    [
                        r["size"],
                        r["backend"],
                        r["label"],
                        "-"
                        if r["fpn_channels"] is None
                        else f"{r['fpn_channels']} / {r['head_channels']}"
                        f"{' shared' if r['shared_decoder'] else ''} / "
                        f"{r['dspf_channels']}",
                        r["params_m"],
                        r["network_ms"],
                        r["p90_ms"],
                        "-" if r["vs_movenet"] is None else f"{r['vs_movenet']:.2f}",
                        f"{r['vs_shipped']:.2f}",
                    ]
                    for r in rows
                ],
            )
        )
    parts = record["parts"]
    if parts:
        names = list(dict.fromkeys(n for p in parts for n in p["parts_ms"]))
        out.append(
            f"Where the shipped network's time goes: each part exported alone with "
            f"the inputs it gets in the network, OpenVINO f32, {THREADS} thread, "
            "timed in turns with the whole network; ms p50 (share of the parts' "
            "sum). The sum exceeds the whole by each graph's call overhead."
        )
        out.append(
            table(
                ["size", *names, "sum", "whole network"],
                [
                    [
                        p["size"],
                        *(
                            f"{p['parts_ms'][n]:.1f} "
                            f"({100 * p['parts_ms'][n] / p['sum_ms']:.0f} %)"
                            if n in p["parts_ms"]
                            else "-"
                            for n in names
                        ),
                        p["sum_ms"],
                        p["network_ms"],
                    ]
                    for p in parts
                ],
            )
        )
    return out
