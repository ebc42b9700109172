"""Shared fixtures for the benchmark smoke tests: a tiny model."""

from __future__ import annotations

import pytest

from tests.tiny import save_tiny

TINY_YAML = """\
input_size: 64
model: {width_mult: 0.25, fpn_channels: 16, head_channels: 16, dspf: {channels: 8}}
decode: {top_k: 6, max_people: 4, pgd: {steps: 3, inner_steps: 2, swaps: 1}}
"""


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A narrow 64 px network with a small decode: its config file and checkpoint."""
    return save_tiny(tmp_path_factory.mktemp("tiny"), TINY_YAML)
