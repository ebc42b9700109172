"""A tiny network saved as a checkpoint, for the tests that run whole programs
(pipeline, benchmarks): seeded random weights, so they never depend on the shipped
model."""

from __future__ import annotations

from pathlib import Path


def save_tiny(folder: Path, config_text: str) -> dict[str, str]:
    """Write `config_text` as tiny.yaml and a seeded model built from it as tiny.pt."""
    import torch

    from configs import load_config
    from nets.model import build_model, save_checkpoint

    (folder / "tiny.yaml").write_text(config_text)
    cfg = load_config(folder / "tiny.yaml")
    torch.manual_seed(0)
    save_checkpoint(folder / "tiny.pt", build_model(cfg), cfg)
    return {"config": str(folder / "tiny.yaml"), "checkpoint": str(folder / "tiny.pt")}
