"""Backbones in plain torch: each returns 4 feature maps at strides 4, 8, 16, 32.

Module and parameter names follow torchvision's `mobilenet_v3_*` and `resnet*` so a
state_dict a user already has (e.g. ImageNet weights) loads by name; nothing here
downloads anything. `movenet` is MoveNet MultiPose's MobileNetV2 + FPN (nets.movenet,
trained on real people); its weights load by name from the TF.js `.json` + `.bin`.
A backbone may set `input_mean` / `input_std` (RGB, for [0, 1] images) when it was
trained on another normalisation than ImageNet's. `width_mult` scales every channel
count (tiny widths make tests fast; shapes then no longer match torchvision weights,
which `load_backbone_weights` reports instead of failing).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F


def make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's channel rounding, so width multipliers give the same shapes."""
    out = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if out < 0.9 * value:
        out += divisor
    return out


class ConvBNAct(nn.Sequential):
    """conv -> BN -> activation (torchvision's Conv2dNormActivation layout: 0, 1, 2)."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        act: Callable[[], nn.Module] | None = nn.ReLU,
    ):
        layers: list[nn.Module] = [
            nn.Conv2d(
                cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False
            ),
            nn.BatchNorm2d(cout),
        ]
        if act is not None:
            layers.append(act())
        super().__init__(*layers)


class SeparableConv(nn.Sequential):
    """kxk depthwise -> BN -> ReLU -> 1x1 pointwise -> BN -> ReLU: the cheap conv of
    the pyramid and heads (the paper's 5x5 depthwise-separable decoder stages)."""

    def __init__(self, cin: int, cout: int, kernel: int):
        super().__init__(
            ConvBNAct(cin, cin, kernel, groups=cin), ConvBNAct(cin, cout, 1)
        )


class SqueezeExcitation(nn.Module):
    """MobileNetV3 channel attention: pool -> fc1 -> ReLU -> fc2 -> hardsigmoid."""

    def __init__(self, channels: int, squeeze: int):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s


class InvertedResidual(nn.Module):
    """MobileNetV3 block: 1x1 expand -> kxk depthwise -> (SE) -> 1x1 project."""

    def __init__(
        self,
        cin: int,
        kernel: int,
        expand: int,
        cout: int,
        se: bool,
        act: Callable[[], nn.Module],
        stride: int,
    ):
        super().__init__()
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != cin:
            layers.append(ConvBNAct(cin, expand, 1, act=act))
        layers.append(ConvBNAct(expand, expand, kernel, stride, groups=expand, act=act))
        if se:
            layers.append(SqueezeExcitation(expand, make_divisible(expand // 4)))
        layers.append(ConvBNAct(expand, cout, 1, act=None))
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_res else out


RE, HS = nn.ReLU, nn.Hardswish
# (kernel, expand, out, SE, activation, stride) per block, from the MobileNetV3 paper.
MOBILENET_V3 = {
    "mobilenetv3_small": {
        "blocks": [
            (3, 16, 16, True, RE, 2),
            (3, 72, 24, False, RE, 2),
            (3, 88, 24, False, RE, 1),
            (5, 96, 40, True, HS, 2),
            (5, 240, 40, True, HS, 1),
            (5, 240, 40, True, HS, 1),
            (5, 120, 48, True, HS, 1),
            (5, 144, 48, True, HS, 1),
            (5, 288, 96, True, HS, 2),
            (5, 576, 96, True, HS, 1),
            (5, 576, 96, True, HS, 1),
        ],
        "taps": (1, 3, 8, 12),  # indices into `features` ending at strides 4..32
    },
    "mobilenetv3_large": {
        "blocks": [
            (3, 16, 16, False, RE, 1),
            (3, 64, 24, False, RE, 2),
            (3, 72, 24, False, RE, 1),
            (5, 72, 40, True, RE, 2),
            (5, 120, 40, True, RE, 1),
            (5, 120, 40, True, RE, 1),
            (3, 240, 80, False, HS, 2),
            (3, 200, 80, False, HS, 1),
            (3, 184, 80, False, HS, 1),
            (3, 184, 80, False, HS, 1),
            (3, 480, 112, True, HS, 1),
            (3, 672, 112, True, HS, 1),
            (5, 672, 160, True, HS, 2),
            (5, 960, 160, True, HS, 1),
            (5, 960, 160, True, HS, 1),
        ],
        "taps": (3, 6, 12, 16),
    },
}


class MobileNetV3(nn.Module):
    """MobileNetV3 feature extractor (stem, inverted residuals, final 1x1 conv)."""

    def __init__(self, name: str, width_mult: float = 1.0):
        super().__init__()
        spec = MOBILENET_V3[name]

        def ch(c: int) -> int:
            return make_divisible(c * width_mult)

        cin = ch(16)
        layers: list[nn.Module] = [ConvBNAct(3, cin, 3, 2, act=HS)]
        for kernel, expand, cout, se, act, stride in spec["blocks"]:
            layers.append(
                InvertedResidual(cin, kernel, ch(expand), ch(cout), se, act, stride)
            )
            cin = ch(cout)
        layers.append(ConvBNAct(cin, 6 * cin, 1, act=HS))
        self.features = nn.Sequential(*layers)
        self.taps = spec["taps"]
        self.channels = [self._out_channels(self.features[i]) for i in self.taps]

    @staticmethod
    def _out_channels(layer: nn.Module) -> int:
        convs = [m for m in layer.modules() if isinstance(m, nn.Conv2d)]
        return convs[-1].out_channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
        return out


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride on the 3x3 conv), torchvision's names."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


RESNET_DEPTHS = {"resnet50": (3, 4, 6, 3), "resnet101": (3, 4, 23, 3)}


class ResNet(nn.Module):
    """ResNet-50/101 trunk; layer1..layer4 end at strides 4, 8, 16, 32."""

    def __init__(self, name: str, width_mult: float = 1.0):
        super().__init__()
        base = make_divisible(64 * width_mult)
        self.conv1 = nn.Conv2d(3, base, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(base)
        cin = base
        self.channels = []
        for i, depth in enumerate(RESNET_DEPTHS[name]):
            planes = base * 2**i
            blocks = []
            for j in range(depth):
                blocks.append(Bottleneck(cin, planes, 2 if (j == 0 and i > 0) else 1))
                cin = planes * Bottleneck.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            self.channels.append(cin)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        out = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            out.append(x)
        return out


def _movenet(name: str, width_mult: float) -> nn.Module:
    """MoveNet's trunk; `width_mult` is MobileNetV2's alpha (1.5 = MoveNet's own)."""
    from nets.movenet import MoveNetTrunk  # nets.movenet builds on this module

    return MoveNetTrunk(width_mult)


BACKBONES: dict[str, Callable[[str, float], nn.Module]] = {
    "mobilenetv3_small": MobileNetV3,
    "mobilenetv3_large": MobileNetV3,
    "resnet50": ResNet,
    "resnet101": ResNet,
    "movenet": _movenet,
}


class BackboneWeightsError(ValueError):
    """A backbone weights file that cannot be used; the message says why."""


def build_backbone(name: str, width_mult: float = 1.0) -> nn.Module:
    """A backbone by config name; `.channels` lists its 4 output channel counts."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone '{name}' (known: {', '.join(BACKBONES)})")
    return BACKBONES[name](name, width_mult)


def load_backbone_weights(
    backbone: nn.Module, path: str | Path
) -> dict[str, list[str]]:
    """Load a local state_dict by name (strict=False) and say what did not fit.

    A `.json` path is a TF.js graph model (MoveNet's), read by name via nets.movenet.
    Returns {"missing": [...], "unexpected": [...], "mismatched": [...]}: keys the
    backbone has but the file lacks, keys the file has that the backbone does not use
    (e.g. a classifier), and keys present in both with different shapes (skipped).
    """
    path = Path(path)
    if not path.is_file():
        raise BackboneWeightsError(f"backbone weights file not found: {path}")
    if path.suffix == ".json":
        from nets.movenet import MoveNetWeightsError, trunk_state

        try:
            state = trunk_state(path)
        except MoveNetWeightsError as exc:
            raise BackboneWeightsError(str(exc)) from None
        return _load_state(backbone, state)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same message
        raise BackboneWeightsError(
            f"cannot read backbone weights {path}: {exc}"
        ) from exc
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise BackboneWeightsError(
            f"backbone weights {path} are not a state_dict (a dict of name -> tensor)"
        )
    return _load_state(backbone, state)


def _load_state(
    backbone: nn.Module, state: dict[str, torch.Tensor]
) -> dict[str, list[str]]:
    """load_state_dict(strict=False), skipping shape mismatches; what did not fit."""
    own = backbone.state_dict()
    mismatched = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    fitting = {k: v for k, v in state.items() if k not in mismatched}
    result = backbone.load_state_dict(fitting, strict=False)
    return {
        "missing": sorted(set(result.missing_keys) - set(mismatched)),
        "unexpected": sorted(result.unexpected_keys),
        "mismatched": sorted(mismatched),
    }
