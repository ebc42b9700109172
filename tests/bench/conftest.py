"""Shared fixtures for the benchmark smoke tests: a tiny model."""

from __future__ import annotations

import pytest
import torch

from configs import load_config
from nets.model import build_model, save_checkpoint

TINY_YAML = """\
input_size: 64
model: {width_mult: 0.25, fpn_channels: 16, head_channels: 16, dspf: {channels: 8}}
decode: {top_k: 6, max_people: 4, pgd: {steps: 3, inner_steps: 2, swaps: 1}}
"""


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A narrow 64 px network with a small decode (seeded random weights): its config
    file and a checkpoint, so runs do not depend on the shipped model."""
    folder = tmp_path_factory.mktemp("tiny")
    (folder / "tiny.yaml").write_text(TINY_YAML)
    cfg = load_config(folder / "tiny.yaml")
    torch.manual_seed(0)
    save_checkpoint(folder / "tiny.pt", build_model(cfg), cfg)
    return {"config": str(folder / "tiny.yaml"), "checkpoint": str(folder / "tiny.pt")}
