"""Feature pyramid (Lin et al.): 4 levels at strides 4..32, all `channels` wide.

Lateral 1x1 convs, a top-down path of bilinear upsampling and addition, and one 3x3
depthwise-separable conv per level (a full 3x3 conv at stride 4 would cost more than
the whole MobileNet backbone on CPU).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from nets.backbones import ConvBNAct, SeparableConv


def upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of x to like's size (align_corners=False: cell centres)."""
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class FPN(nn.Module):
    """[C4, C8, C16, C32] backbone maps -> [X4, X8, X16, X32], finest first."""

    def __init__(self, in_channels: list[int], channels: int):
        super().__init__()
        self.lateral = nn.ModuleList(
            ConvBNAct(c, channels, 1, act=None) for c in in_channels
        )
        self.smooth = nn.ModuleList(
            SeparableConv(channels, channels, 3) for _ in in_channels
        )

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        top = self.lateral[-1](feats[-1])
        out = [self.smooth[-1](top)]
        for i in range(len(feats) - 2, -1, -1):
            top = self.lateral[i](feats[i]) + upsample_to(top, feats[i])
            out.insert(0, self.smooth[i](top))
        return out
