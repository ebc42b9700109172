"""Part-segmentation and pose heads on the feature pyramid (paper Eqs. 1 and 7).

Both decoders are DeepLabv3+-style: start from the coarsest pyramid level and, at each
upsampling stage, join the upsampled map with the finer pyramid level and apply a single
5x5 depthwise-separable conv (paper Sec. 3.4), ending at stride 4. With
`model.shared_decoder` the two heads read one decoder's map instead of each running its
own (the stride-4 decoders are most of the heads' cost: issue 14); a head built with
`own_decoder=False` then takes that map in place of the pyramid.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from configs.constants import NUM_KEYPOINTS
from nets.backbones import SeparableConv
from nets.fpn import upsample_to

# Initial sigmoid output of the heatmap and limb logits: targets are mostly 0, so
# starting near the prior keeps the first BCE steps from being spent on the bias.
PRIOR = 0.02


class Decoder(nn.Module):
    """[X4, X8, X16, X32] -> B x channels x h4 x w4.

    The skip joins by addition rather than DeepLabv3+'s concatenation: on this CPU the
    5x5 depthwise conv's backward pass dominates training time and scales with its
    input width, and adding keeps it at `channels` (measured 1.3x faster training
    steps for the whole model than concatenating).
    """

    def __init__(self, fpn_channels: int, channels: int, levels: int = 4):
        super().__init__()
        self.project = (
            nn.Identity()
            if fpn_channels == channels
            else nn.Conv2d(fpn_channels, channels, 1)
        )
        self.skips = nn.ModuleList(
            nn.Identity()
            if fpn_channels == channels
            else nn.Conv2d(fpn_channels, channels, 1)
            for _ in range(levels - 1)
        )
        self.stages = nn.ModuleList(
            SeparableConv(channels, channels, 5) for _ in range(levels - 1)
        )

    def forward(self, pyramid: list[torch.Tensor]) -> torch.Tensor:
        x = self.project(pyramid[-1])
        for stage, skip, finer in zip(
            self.stages, self.skips, reversed(pyramid[:-1]), strict=True
        ):
            x = stage(upsample_to(x, finer) + skip(finer))
        return x


def _decoder(fpn_channels: int, channels: int, own: bool) -> nn.Module:
    """A head's own decoder, or a pass-through for the shared decoder's map."""
    return Decoder(fpn_channels, channels) if own else nn.Identity()


def _prior_conv(cin: int, cout: int) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 1)
    nn.init.constant_(conv.bias, -math.log((1 - PRIOR) / PRIOR))
    return conv


class PartHead(nn.Module):
    """Part logits B x C x h x w (paper Eq. 1)."""

    def __init__(
        self,
        fpn_channels: int,
        channels: int,
        num_classes: int,
        own_decoder: bool = True,
    ):
        super().__init__()
        self.decoder = _decoder(fpn_channels, channels, own_decoder)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """features: the pyramid, or the shared decoder's map (own_decoder=False)."""
        return self.classifier(self.decoder(features))


class PoseHead(nn.Module):
    """Pose features P (paper Eq. 7) -> keypoint disk logits, offsets, limb logits."""

    def __init__(
        self,
        fpn_channels: int,
        channels: int,
        num_limbs: int,
        own_decoder: bool = True,
    ):
        super().__init__()
        self.decoder = _decoder(fpn_channels, channels, own_decoder)
        self.heatmap = _prior_conv(channels, NUM_KEYPOINTS)
        self.offsets = nn.Conv2d(channels, NUM_KEYPOINTS * 2, 1)
        self.limbs = _prior_conv(channels, num_limbs)

    def forward(
        self, features: list[torch.Tensor] | torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """features: the pyramid, or the shared decoder's map (own_decoder=False)."""
        p = self.decoder(features)
        return self.named(*(conv(p) for conv in self.convs))

    @property
    def convs(self) -> list[nn.Conv2d]:
        """The output convs, in `named`'s order."""
        return [self.heatmap, self.offsets, self.limbs]

    @staticmethod
    def named(
        heatmap: torch.Tensor, offsets: torch.Tensor, limbs: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """The output convs' maps as the head's outputs (offsets B x 17 x 2 x h x w)."""
        return {
            "heatmap": heatmap,
            "offsets": offsets.unflatten(1, (NUM_KEYPOINTS, 2)),
            "limbs": limbs,
        }


def joint_1x1(x: torch.Tensor, convs: Sequence[nn.Conv2d]) -> list[torch.Tensor]:
    """`[conv(x).flatten(2) for conv in convs]` for 1x1 convs (B x C x h*w each),
    computed as one matrix product; inference only (`MGParser.maps`).

    Why: OpenVINO's CPU plugin keeps conv outputs channels-last and converts each
    graph output to the planar NCHW layout it returns. As convs, the heads' outputs
    paid that conversion per head, a slow generic reorder at 24-64 channels (at 256
    px, 1 thread: 0.2-0.5 ms each, 1.5 ms together, more than the convs). Here the
    weights (all heads' rows) multiply the channels-last map read as its transpose
    (the permute costs nothing on that layout), so the product comes out planar: no
    conversion at all.
    """
    weight = torch.cat([c.weight.flatten(1) for c in convs])
    bias = torch.cat([c.bias for c in convs])
    b, c, h, w = x.shape
    cells = x.permute(0, 2, 3, 1).reshape(b, h * w, c)
    joint = torch.matmul(weight, cells.transpose(1, 2)) + bias.view(-1, 1)
    return list(joint.split([c.out_channels for c in convs], 1))
