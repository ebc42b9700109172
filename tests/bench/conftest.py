"""Shared fixtures for the benchmark smoke tests: a tiny model config file."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_YAML = """\
input_size: 64
model: {width_mult: 0.25, fpn_channels: 16, head_channels: 16, dspf: {channels: 8}}
decode: {top_k: 6, max_people: 4, pgd: {steps: 3, inner_steps: 2, swaps: 1}}
"""


@pytest.fixture
def tiny_config(tmp_path: Path) -> str:
    """A config file over the default one: a narrow 64 px network, a small decode."""
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_YAML)
    return str(path)
