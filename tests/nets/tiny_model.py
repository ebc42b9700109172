"""Small configs shared by the nets tests: narrow networks and a small fixed-size
decode, so forward/backward passes and exports take fractions of a second."""

from __future__ import annotations

from typing import Any

from configs import load_config

TINY_WIDTH = {
    "mobilenetv3_small": 0.25,
    "mobilenetv3_large": 0.25,
    "resnet50": 0.125,
    "resnet101": 0.125,
    "movenet": 0.25,
}


def tiny_cfg(backbone: str = "mobilenetv3_small", size: int = 64) -> dict[str, Any]:
    """The default config with a narrow network, `size` px input, small decode."""
    cfg = load_config()
    cfg["input_size"] = size
    cfg["model"].update(
        backbone=backbone,
        width_mult=TINY_WIDTH[backbone],
        fpn_channels=16,
        head_channels=16,
    )
    cfg["model"]["dspf"]["channels"] = 8
    cfg["decode"].update(top_k=6, max_people=4)
    cfg["decode"]["pgd"].update(steps=3, inner_steps=2, swaps=1)
    return cfg
