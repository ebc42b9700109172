"""Configs are data: YAML files in this folder, loaded into dicts and validated here.

`load_config(path)` merges a file over its `base:` (default.yaml unless named) so one
experiment is one small file of differences; an unknown key is an error, not a no-op.
`load_overrides(path)` is what the file itself asks to change (its `base:` chain short
of default.yaml), for settings that must be laid over another config than the default
(a checkpoint's: `pipeline.stages.infer.resolve_model`).
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the key."""


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"config {path} is not valid YAML: {exc}".splitlines()[0]
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping at the top level")
    return data


# Maps whose keys are the user's (network parts, loss terms), not the schema's: a
# derived config may add to what its base set there.
FREE_FORM = ("train.lr_scale", "train.term_weights")


def merge(
    base: dict[str, Any], over: dict[str, Any], strict: bool = True, where: str = ""
) -> dict[str, Any]:
    """`over` laid over a copy of `base`, nested sections key by key.

    strict: a key `base` lacks is a ConfigError (an experiment file's typo), except
    inside the FREE_FORM maps; lenient (strict=False): such keys are kept, for a
    checkpoint's config filled with keys the defaults gained since it was written.
    """
    out = copy.deepcopy(base)
    for key, value in over.items():
        if strict and key not in base:
            raise ConfigError(f"unknown config key '{where}{key}'")
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            inner = strict and f"{where}{key}" not in FREE_FORM
            out[key] = merge(out[key], value, inner, f"{where}{key}.")
        else:
            out[key] = value
    return out


def load_config(path: str | Path | None = None) -> dict[str, Any]:
    """Load a config file merged over its base; None gives the default config."""
    default = _read_yaml(DEFAULT_CONFIG)
    if path is None or Path(path).resolve() == DEFAULT_CONFIG:
        return default
    path = Path(path)
    data = _read_yaml(path)
    base_name = data.pop("base", None)
    base = load_config(path.parent / base_name) if base_name else default
    return merge(base, data)


def load_overrides(path: str | Path | None) -> dict[str, Any]:
    """The settings a config file sets (itself or through a `base:` other than
    default.yaml), without the defaults `load_config` fills in: a user who writes
    `decode: {limb_threshold: 0.2}` asks for 0.2 even when it is the default value and
    the checkpoint's own is 0.02. Validated as `load_config` validates it."""
    if path is None or Path(path).resolve() == DEFAULT_CONFIG:
        return {}
    load_config(path)
    return _file_settings(Path(path))


def _file_settings(path: Path) -> dict[str, Any]:
    """`path`'s own settings over its bases' short of default.yaml (unvalidated)."""
    if path.resolve() == DEFAULT_CONFIG:
        return {}
    data = _read_yaml(path)
    base_name = data.pop("base", None)
    base = _file_settings(path.parent / base_name) if base_name else {}
    return merge(base, data, strict=False)


@cache
def body() -> dict[str, Any]:
    """The COCO-17 body table (configs/body.yaml) with limbs as index pairs."""
    raw = _read_yaml(CONFIG_DIR / "body.yaml")
    names = raw["keypoints"]
    index = {n: i for i, n in enumerate(names)}
    flip = [
        index[n.replace("left_", "@").replace("right_", "left_").replace("@", "right_")]
        for n in names
    ]
    return {
        "keypoints": names,
        "oks_sigmas": raw["oks_sigmas"],
        "limbs": [(index[a], index[b]) for a, b in raw["limbs"]],
        "redundant_limbs": [(index[a], index[b]) for a, b in raw["redundant_limbs"]],
        # tree then redundant limbs by name: the network's limb channels, in order
        "limb_names": [list(pair) for pair in raw["limbs"] + raw["redundant_limbs"]],
        "limb_lengths": raw["limb_lengths"],
        "flip": flip,
        # fine part -> (from, to) keypoint indices of the limb it runs along
        "part_segments": {
            part: (index[a], index[b]) for part, (a, b) in raw["part_segments"].items()
        },
        "other_keypoints": raw.get("other_keypoints", {}),
    }


@cache
def parts() -> dict[str, Any]:
    """Part taxonomies and mappings (configs/parts.yaml)."""
    return _read_yaml(CONFIG_DIR / "parts.yaml")


@cache
def real_clips() -> dict[str, Any]:
    """Train / validation split of the real footage by clip (real_clips.yaml)."""
    return _read_yaml(CONFIG_DIR / "real_clips.yaml")


def taxonomy(name: str) -> dict[str, Any]:
    """One taxonomy's classes, colours and flip table."""
    table = parts()["taxonomies"]
    if name not in table:
        raise ConfigError(f"unknown part taxonomy '{name}' (known: {', '.join(table)})")
    return table[name]


def mapping(source: str, target: str) -> list[int]:
    """Class-id lookup table from one taxonomy to another (255 = no counterpart)."""
    if source == target:
        return list(range(len(taxonomy(source)["classes"])))
    try:
        return parts()["mappings"][source][target]
    except KeyError as exc:
        raise ConfigError(f"no part mapping from '{source}' to '{target}'") from exc
