"""The tiny network the end-to-end pipeline tests run (independent of the shipped
weights)."""

import pytest

from tests.pipeline.helpers import TINY_CONFIG
from tests.tiny import save_tiny


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, str]:
    """A tiny network (random weights, seeded) as a checkpoint, and its config."""
    return save_tiny(tmp_path_factory.mktemp("tiny"), TINY_CONFIG)


def cli(tiny: dict[str, str]) -> list[str]:
    """run_stream.py arguments that select the tiny network on eager torch."""
    return [
        "--config",
        tiny["config"],
        "--checkpoint",
        tiny["checkpoint"],
        "--backend",
        "torch",
    ]
