"""The original MoveNet as a live teacher: its joint maps on each training batch.

Why: fine-tuned on pseudo-labels, the student's trunk drifts from what made MoveNet
place joints precisely (docs/MODEL.md, "Eleventh round": MoveNet's own sub-cell heads
on the student's trunk lost 11.4 -> 10.8 OKS AP where on MoveNet's they gained 3.6).
Taught on every augmented batch, the student's copies of those heads
(`model.joint_refine`) keep that skill, and the trunk under them keeps what it needs.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from nets.movenet import load_movenet


class TeacherJoints(nn.Module):
    """images B x 3 x H x W in [0, 1] -> {"teacher_heatmap": probabilities B x 17,
    "teacher_offset": (dy, dx) per joint B x 34}, at stride 4, without gradients."""

    def __init__(self, path: str | Path):
        super().__init__()
        self.net = load_movenet(path).requires_grad_(False)

    def train(self, mode: bool = True) -> TeacherJoints:
        """Always evaluating: the teacher never learns."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x4 = self.net.stride4(images)
        heads = self.net.heads
        return {
            "teacher_heatmap": torch.sigmoid(heads["kpt_heatmap"](x4)),
            "teacher_offset": heads["kpt_offset"](x4),
        }
