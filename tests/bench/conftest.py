"""Shared fixtures for the benchmark smoke tests: a tiny model and a runner on it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.tiny import save_tiny

ROOT = Path(__file__).resolve().parents[2]

TINY_YAML = """\
input_size: 64
model: {width_mult: 0.25, fpn_channels: 16, head_channels: 16, dspf: {channels: 8}}
decode: {top_k: 6, max_people: 4, pgd: {steps: 3, inner_steps: 2, swaps: 1}}
"""


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A narrow 64 px network with a small decode: its config file and checkpoint."""
    return save_tiny(tmp_path_factory.mktemp("tiny"), TINY_YAML)


@pytest.fixture(scope="session")
def run_bench(tiny: dict[str, str]) -> Callable[..., None]:
    """Run `python -m bench.<module> *args` on the tiny torch model; fail on failure."""

    def run(module: str, *args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", f"bench.{module}", *args, "--backend", "torch"]
            + ["--config", tiny["config"], "--checkpoint", tiny["checkpoint"]],
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=300,
        )

    return run
