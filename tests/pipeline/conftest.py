"""The tiny network the end-to-end pipeline tests run (independent of the shipped
weights)."""

import pytest

from tests.pipeline.helpers import TINY_CONFIG


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, str]:
    """A tiny network (random weights, seeded) as a checkpoint, and its config."""
    import torch

    from configs import load_config
    from nets.model import build_model, save_checkpoint

    folder = tmp_path_factory.mktemp("tiny")
    (folder / "tiny.yaml").write_text(TINY_CONFIG)
    cfg = load_config(folder / "tiny.yaml")
    torch.manual_seed(0)
    save_checkpoint(folder / "tiny.pt", build_model(cfg), cfg)
    return {"config": str(folder / "tiny.yaml"), "checkpoint": str(folder / "tiny.pt")}


def cli(tiny: dict[str, str]) -> list[str]:
    """run_stream.py arguments that select the tiny network on eager torch."""
    return ["--config", tiny["config"], "--checkpoint", tiny["checkpoint"],
            "--backend", "torch"]
