"""Config files laid over their base: typos fail, the user's own maps may grow."""

from __future__ import annotations

from pathlib import Path

import pytest

from configs import ConfigError, load_config


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_a_derived_config_adds_a_part_to_its_bases_lr_scale(tmp_path: Path) -> None:
    _write(tmp_path, "base.yaml", "train:\n  lr_scale: {backbone: 0.05}\n")
    child = _write(
        tmp_path, "child.yaml", "base: base.yaml\ntrain:\n  lr_scale: {dspf: 4.0}\n"
    )
    assert load_config(child)["train"]["lr_scale"] == {"backbone": 0.05, "dspf": 4.0}


def test_a_typo_in_a_schema_section_is_still_an_error(tmp_path: Path) -> None:
    _write(tmp_path, "base.yaml", "train:\n  lr_scale: {backbone: 0.05}\n")
    child = _write(tmp_path, "child.yaml", "base: base.yaml\ndecode:\n  topk: 3\n")
    with pytest.raises(ConfigError, match="decode.topk"):
        load_config(child)
