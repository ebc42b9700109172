"""Dense-to-sparse projection field (paper Sec. 3.2): per person cell, the vector to
the nearest joint of the same person, estimated coarse-to-fine over the pyramid.

With every switch on (the paper's model): D_32 from X_32, then per finer level l
    up   = upsample(X_{l+1});  flow = conv3x3(cat(X_l, up))          (Eq. 4)
    up, Dup = warp(up, flow), warp(2 * upsample(D_{l+1}), flow)         (Eqs. 5-6)
    D_l  = fuse(cat(X_l, up)) + Dup                                    (Eq. 3)
The switches reproduce Table 4: `coarse_to_fine=False` regresses D_4 directly from the
concatenated upsampled levels; `residual=False` predicts the complete D_l from
cat(X_l, up, Dup) (Eq. 2); `warping=False` uses plain bilinear upsampling.
Every D_l is in cells of its own level.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from nets.backbones import ConvBNAct, SeparableConv
from nets.fpn import upsample_to


def warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample x at u + flow(u) (Eq. 6); flow B x 2 x h x w (dx, dy) in cells.

    Zero flow samples every cell at its own centre, i.e. returns x unchanged.
    """
    h, w = flow.shape[-2:]
    gx = (torch.arange(w, dtype=flow.dtype, device=flow.device) + 0.5).view(1, 1, w)
    gy = (torch.arange(h, dtype=flow.dtype, device=flow.device) + 0.5).view(1, h, 1)
    grid = torch.stack(
        [(gx + flow[:, 0]) * (2.0 / w) - 1.0, (gy + flow[:, 1]) * (2.0 / h) - 1.0],
        dim=-1,
    )
    return F.grid_sample(
        x, grid, mode="bilinear", padding_mode="border", align_corners=False
    )


def _regressor(cin: int, channels: int) -> nn.Sequential:
    """Separable 3x3 conv then a 1x1 conv to the 2 field channels."""
    return nn.Sequential(SeparableConv(cin, channels, 3), nn.Conv2d(channels, 2, 1))


class DSPF(nn.Module):
    """[X4, X8, X16, X32] -> [D4, D8, D16, D32], finest first.

    Each level is first projected to `channels` (narrower than the pyramid: the field
    has 2 channels, and the stride-4 stage's concatenations, warps and their backward
    passes otherwise cost about a quarter of a training step on CPU).
    """

    def __init__(
        self,
        in_channels: int,
        channels: int = 32,
        coarse_to_fine: bool = True,
        residual: bool = True,
        warping: bool = True,
        levels: int = 4,
    ):
        super().__init__()
        self.coarse_to_fine, self.residual, self.warping = (
            coarse_to_fine,
            residual,
            warping,
        )
        self.levels = levels
        self.project = nn.ModuleList(
            ConvBNAct(in_channels, channels, 1) for _ in range(levels)
        )
        if not coarse_to_fine:
            self.direct = _regressor(levels * channels, channels)
            return
        self.coarsest = _regressor(channels, channels)
        fuse_in = 2 * channels + (0 if residual else 2)
        self.fuse = nn.ModuleList(
            _regressor(fuse_in, channels) for _ in range(levels - 1)
        )
        if warping:
            self.flow = nn.ModuleList(
                nn.Conv2d(2 * channels, 2, 3, padding=1) for _ in range(levels - 1)
            )
            for conv in self.flow:  # start as plain upsampling, learn the alignment
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)

    def forward(self, pyramid: list[torch.Tensor]) -> list[torch.Tensor]:
        pyramid = [proj(x) for proj, x in zip(self.project, pyramid, strict=True)]
        if not self.coarse_to_fine:
            return self._direct(pyramid)
        field = self.coarsest(pyramid[-1])
        out = [field]
        for level in range(self.levels - 2, -1, -1):
            x = pyramid[level]
            up = upsample_to(pyramid[level + 1], x)
            field_up = 2.0 * upsample_to(field, x)
            if self.warping:
                flow = self.flow[level](torch.cat([x, up], 1))
                up, field_up = warp(up, flow), warp(field_up, flow)
            if self.residual:
                field = self.fuse[level](torch.cat([x, up], 1)) + field_up
            else:
                field = self.fuse[level](torch.cat([x, up, field_up], 1))
            out.insert(0, field)
        return out

    def _direct(self, pyramid: list[torch.Tensor]) -> list[torch.Tensor]:
        """Table 4's baseline: one regression at stride 4; the coarser levels are its
        average-pooled copies (rescaled to their cells) so every level is supervised."""
        finest = pyramid[0]
        feats = [finest] + [upsample_to(x, finest) for x in pyramid[1:]]
        field = self.direct(torch.cat(feats, 1))
        return [field] + [
            F.avg_pool2d(field, 2**i) / 2**i for i in range(1, self.levels)
        ]
