"""Differentiable Hough voting (paper Eq. 8) as bilinear splatting.

    H(u) = sum_u' M(u') / (pi R^2) * bilinear(u' + O(u') - u)

Every cell u' casts a vote of weight M(u') / (pi R^2) at u' + O(u'), split over the 4
cells around that point with bilinear weights and accumulated with scatter_add (ONNX
ScatterElements with reduction "add", opset >= 16). A disk of radius R whose offsets all
point at one cell therefore sums to ~1 there. The vote is differentiable in M (weights)
and in O (through the bilinear fractions). Votes landing outside the map are dropped.
"""

from __future__ import annotations

import math
from typing import Any

import torch


def disk_radius_cells(cfg: dict[str, Any]) -> float:
    """The keypoint disks' radius R in cells (`targets.disk_radius` /
    `output_stride`): what the vote divides by, and the reach of a joint's votes."""
    return float(cfg["targets"]["disk_radius"]) / float(cfg["output_stride"])


def hough_vote(
    heat: torch.Tensor, offsets: torch.Tensor, radius: float
) -> torch.Tensor:
    """Hough score maps B x K x h x w.

    Args:
        heat: B x K x h x w disk probabilities M in [0, 1].
        offsets: B x K x 2 x h x w (dx, dy) from each cell to its keypoint, in cells.
        radius: disk radius R in cells (targets.disk_radius / output_stride).
    """
    b, k, h, w = heat.shape
    dtype, device = heat.dtype, heat.device
    cols = torch.arange(w, dtype=dtype, device=device).view(1, 1, 1, w)
    rows = torch.arange(h, dtype=dtype, device=device).view(1, 1, h, 1)
    # Splat into a map with a 1-cell border so all 4 corners of every vote are in
    # range (no masks); targets beyond the border are clamped onto it and cropped away.
    tx = (cols + offsets[:, :, 0]).clamp(-1.0, float(w)) + 1.0
    ty = (rows + offsets[:, :, 1]).clamp(-1.0, float(h)) + 1.0
    x0 = torch.floor(tx).clamp(max=float(w))  # the +1 corner stays inside the border
    y0 = torch.floor(ty).clamp(max=float(h))
    fx, fy = tx - x0, ty - y0
    weight = heat * (1.0 / (math.pi * radius * radius))
    wx0, wx1 = weight * (1.0 - fx), weight * fx
    pw = w + 2
    plane = torch.arange(b * k, device=device).view(b, k, 1, 1) * ((h + 2) * pw)
    corner = (plane + y0.long() * pw + x0.long()).reshape(-1)
    out = torch.zeros(b * k * (h + 2) * pw, dtype=dtype, device=device)
    for shift, vote in (
        (0, wx0 * (1.0 - fy)),
        (1, wx1 * (1.0 - fy)),
        (pw, wx0 * fy),
        (pw + 1, wx1 * fy),
    ):
        out = out.scatter_add(0, corner + shift, vote.reshape(-1))
    return out.view(b, k, h + 2, pw)[:, :, 1:-1, 1:-1]
