"""The multi-granularity parser: backbone -> FPN -> part head, pose head, DSPF, Hough.

`build_model(cfg)` gives the training/eval network (outputs in docs/ARCHITECTURE.md,
"Model"); `InferenceModel(model, cfg)` is what is exported and deployed with the graph
decode engine: image in, activations, the fused fixed-size decode
(`nets.decode.decode_fixed`), five tensors out. `NetworkModel(model)` is the graph of
the native engine: image in, activated maps out (`nets.native` decodes them).

Checkpoint format (shared with trainers/): a `torch.save`d dict
    {"config": cfg (the full config dict the model was built from),
     "model": MGParser.state_dict(),
     "meta": free-form dict (e.g. step, metrics, time, taxonomy, git commit)}
`save_checkpoint` writes it, `load_checkpoint` rebuilds the model from the embedded
config, failing with a one-line `CheckpointError` for a missing or corrupt file or
weights that do not fit the config.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from configs import body, load_config, merge, taxonomy
from configs.constants import OUTPUT_STRIDE
from configs.errors import CheckpointError
from nets.backbones import build_backbone, load_backbone_weights
from nets.decode import decode_fixed
from nets.dspf import DSPF
from nets.fpn import FPN
from nets.heads import Decoder, PartHead, PoseHead, joint_1x1
from nets.hough import disk_radius_cells, hough_vote
from nets.matching import MATCHERS

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "default.pt"
RANDOM_SEED = 0  # random weights are seeded: every process must build the same net

log = logging.getLogger(__name__)


class MGParser(nn.Module):
    """images B x 3 x H x W RGB in [0, 1] (H, W multiples of 32) -> dict of maps."""

    def __init__(
        self,
        backbone: nn.Module,
        fpn_channels: int,
        head_channels: int,
        num_classes: int,
        num_limbs: int,
        hough_radius: float,
        dspf: dict[str, Any],
        shared_decoder: bool = False,
    ):
        super().__init__()
        mean = getattr(backbone, "input_mean", IMAGENET_MEAN)  # what it was trained on
        std = getattr(backbone, "input_std", IMAGENET_STD)
        self.register_buffer(
            "mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "std", torch.tensor(std).view(1, 3, 1, 1), persistent=False
        )
        self.backbone = backbone
        self.fpn = FPN(backbone.channels, fpn_channels)
        # One stride-4 decoder for both heads, or one each (nets/heads.py).
        self.shared_decoder = (
            Decoder(fpn_channels, head_channels) if shared_decoder else None
        )
        own = not shared_decoder
        self.part_head = PartHead(fpn_channels, head_channels, num_classes, own)
        self.pose_head = PoseHead(fpn_channels, head_channels, num_limbs, own)
        self.dspf = DSPF(fpn_channels, **dspf)
        self.hough_radius = hough_radius

    def features(
        self, images: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor] | torch.Tensor]:
        """(FPN pyramid, what the part and pose heads read: the pyramid, or the
        shared decoder's map), shared by training's `forward` and inference's `maps`."""
        pyramid = self.fpn(self.backbone((images - self.mean) / self.std))
        heads_in = (
            pyramid if self.shared_decoder is None else self.shared_decoder(pyramid)
        )
        return pyramid, heads_in

    def forward(self, images: torch.Tensor) -> dict[str, Any]:
        pyramid, heads_in = self.features(images)
        out: dict[str, Any] = {"parts": self.part_head(heads_in)}
        out.update(self.pose_head(heads_in))
        out["hough"] = hough_vote(
            torch.sigmoid(out["heatmap"]), out["offsets"], self.hough_radius
        )
        out["dspf"] = self.dspf(pyramid)
        return out

    def maps(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """`activations(self(images))`, computed the way inference wants it
        (`NetworkModel`, `InferenceModel`): see `head_maps`; the Hough vote reuses
        the heatmap's sigmoid. Equal to the training forward's maps up to float
        rounding (tests/nets/test_maps.py)."""
        pyramid, heads_in = self.features(images)
        maps = self.head_maps(heads_in)
        maps["hough"] = hough_vote(maps["heatmap"], maps["offsets"], self.hough_radius)
        maps["dspf"] = self.dspf(pyramid)[0]
        return maps

    def head_maps(
        self, heads_in: list[torch.Tensor] | torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The part and pose heads' activated maps from their input (the pyramid,
        or the shared decoder's map), the 1x1 output convs that read one map run as
        one matrix product that OpenVINO writes in the outputs' planar layout
        (`nets.heads.joint_1x1`: no layout conversion per head; their layers took
        2.2 ms before, 0.75 now, at 256 px on one thread)."""
        convs, classifier = self.pose_head.convs, self.part_head.classifier
        if self.shared_decoder is None:
            (parts,) = joint_1x1(self.part_head.decoder(heads_in), [classifier])
            decoded = self.pose_head.decoder(heads_in)
            pose = joint_1x1(decoded, convs)
        else:
            decoded = heads_in
            parts, *pose = joint_1x1(decoded, [classifier, *convs])
        flat = activated_heads({"parts": parts, **self.pose_head.named(*pose)})
        h, w = decoded.shape[-2:]
        return {k: v.unflatten(-1, (h, w)) for k, v in flat.items()}


def build_model(cfg: dict[str, Any]) -> MGParser:
    """The network a config describes; loads `model.backbone_weights` if set."""
    m = cfg["model"]
    if cfg["output_stride"] != OUTPUT_STRIDE:
        raise ValueError(
            f"output_stride must be {OUTPUT_STRIDE} (the heads' stride), "
            f"got {cfg['output_stride']}"
        )
    b = body()
    backbone = build_backbone(m["backbone"], float(m["width_mult"]))
    if m["backbone_weights"]:
        report = load_backbone_weights(backbone, m["backbone_weights"])
        log.info(
            "backbone weights %s: %s",
            m["backbone_weights"],
            "; ".join(
                f"{len(v)} {k}" + (f" (e.g. {', '.join(v[:3])})" if v else "")
                for k, v in report.items()
            ),
        )
    return MGParser(
        backbone,
        fpn_channels=int(m["fpn_channels"]),
        head_channels=int(m["head_channels"]),
        num_classes=len(taxonomy(m["taxonomy"])["classes"]),
        num_limbs=len(b["limbs"]) + len(b["redundant_limbs"]),
        hough_radius=disk_radius_cells(cfg),
        dspf=dict(m["dspf"]),
        shared_decoder=bool(m["shared_decoder"]),
    )


def activations(outputs: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Network outputs -> the activated maps the decode takes (ARCHITECTURE.md,
    "Decode input"): probabilities for parts, heatmap and limbs, finest DSPF."""
    return {
        **activated_heads(outputs),
        "hough": outputs["hough"],
        "dspf": outputs["dspf"][0],
    }


def activated_heads(outputs: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The part and pose heads' maps of `outputs`, activated (channels on dim 1)."""
    return {
        "parts": torch.softmax(outputs["parts"], 1),
        "heatmap": torch.sigmoid(outputs["heatmap"]),
        "offsets": outputs["offsets"],
        "limbs": torch.sigmoid(outputs["limbs"]),
    }


class NetworkModel(nn.Module):
    """images -> the activated maps (`MGParser.maps`): the network-only graph that
    the native decode engine (`nets.native`) reads."""

    def __init__(self, model: MGParser):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model.maps(images)


class InferenceModel(nn.Module):
    """images B x 3 x H x W in [0, 1] -> keypoints, person_scores, person_valid,
    instances, parts (ARCHITECTURE.md, "Decode"): the exported graph.

    `matcher` (pgd | greedy | hungarian) defaults to the config's `decode.matcher`;
    hungarian runs scipy and works in eager torch only.
    """

    def __init__(
        self, model: MGParser, cfg: dict[str, Any], matcher: str | None = None
    ):
        super().__init__()
        self.model = model
        self.cfg = cfg
        self.matcher = matcher or cfg["decode"]["matcher"]
        if self.matcher not in MATCHERS:
            raise ValueError(
                f"unknown matcher '{self.matcher}' (known: {', '.join(MATCHERS)})"
            )

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return decode_fixed(self.model.maps(images), self.cfg, self.matcher)


def save_checkpoint(
    path: str | Path,
    model: MGParser,
    cfg: dict[str, Any],
    meta: dict[str, Any] | None = None,
) -> None:
    """Write the checkpoint format in this module's docstring (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"config": cfg, "model": model.state_dict(), "meta": meta or {}}, tmp)
    tmp.replace(path)


def _model_section(cfg: dict[str, Any]) -> dict[str, Any]:
    """The part of a config that decides the weights' shapes."""
    m = {k: v for k, v in cfg["model"].items() if k != "backbone_weights"}
    return {"model": m, "disk_radius": cfg["targets"]["disk_radius"]}


def load_checkpoint(
    path: str | Path, expect_cfg: dict[str, Any] | None = None
) -> tuple[MGParser, dict]:
    """Rebuild (model, cfg) from a checkpoint; `expect_cfg` (e.g. the config a run is
    resumed with) must describe the same network or this raises CheckpointError."""
    model, cfg, _ = load_checkpoint_meta(path, expect_cfg)
    return model, cfg


def load_checkpoint_meta(
    path: str | Path, expect_cfg: dict[str, Any] | None = None
) -> tuple[MGParser, dict, dict]:
    """`load_checkpoint` and the checkpoint's meta (training progress, limbs; {} when
    it has none), from one read of the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets this message
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a checkpoint: {reason}"
        ) from exc
    if not isinstance(ckpt, dict) or not {"config", "model"} <= ckpt.keys():
        raise CheckpointError(f"checkpoint {path} lacks 'config' and 'model' entries")
    limbs = (ckpt.get("meta") or {}).get("limbs", body()["limb_names"])
    if limbs != body()["limb_names"]:
        raise CheckpointError(
            f"checkpoint {path} predicts other limbs than configs/body.yaml "
            f"({len(limbs)} vs {len(body()['limb_names'])}): retrain or restore its "
            "body.yaml"
        )
    cfg = copy.deepcopy(ckpt["config"])
    try:
        # Fill keys added since the checkpoint was written from the default config.
        cfg = merge(load_config(), cfg, strict=False)
        cfg["model"]["backbone_weights"] = None  # the checkpoint holds all weights
        model = build_model(cfg)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {path} has an unusable config: {exc}"
        ) from exc
    if expect_cfg is not None and _model_section(expect_cfg) != _model_section(cfg):
        raise CheckpointError(
            f"checkpoint {path} was trained with a different model "
            f"config: {_model_section(cfg)} vs "
            f"{_model_section(expect_cfg)}"
        )
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        first = str(exc).splitlines()
        detail = " ".join(line.strip() for line in first[1:3])
        raise CheckpointError(
            f"checkpoint {path} weights do not match its config: {detail}"[:400]
        ) from exc
    return model, cfg, ckpt.get("meta") or {}


def weights_path(checkpoint: str | Path | None) -> Path | None:
    """The checkpoint a tool runs: the one given, else the shipped weights, else None
    (random weights)."""
    if checkpoint:
        return Path(checkpoint)
    return DEFAULT_WEIGHTS if DEFAULT_WEIGHTS.is_file() else None


def load_model(
    checkpoint: str | Path | None = None, config: dict[str, Any] | None = None
) -> tuple[MGParser, dict[str, Any]]:
    """The one "checkpoint or shipped model" loader: (model, cfg) of `checkpoint`, else
    of the shipped weights (nets/weights/default.pt), else random weights (seeded with
    RANDOM_SEED, so every process builds the same network) for `config` (default: the
    default config) with a warning on stderr. Raises CheckpointError."""
    path = weights_path(checkpoint)
    if path is not None:
        return load_checkpoint(path)
    log.warning(
        "no trained model (%s is missing): running RANDOM weights, the outputs "
        "will be noise",
        DEFAULT_WEIGHTS,
    )
    cfg = config if config is not None else load_config()
    torch.manual_seed(RANDOM_SEED)
    return build_model(cfg), cfg
