"""What every command-line tool shares: the `--checkpoint` flag (one declaration, one
meaning: the model `nets.model.load_model` loads) and the logging setup, so messages
go through `logging` with one format whichever tool runs them."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from configs import ConfigError

CHECKPOINT_HELP = "trained model .pt (default: the shipped nets/weights/default.pt)"


def add_checkpoint(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Declare `--checkpoint PATH` on a parser or argument group."""
    parser.add_argument("--checkpoint", metavar="PATH", help=CHECKPOINT_HELP)


def check_input_size(size: int) -> int:
    """A network input size: a positive multiple of 32 (the trunk's coarsest stride),
    else a ConfigError; shared by every tool that runs the network at another size."""
    if size <= 0 or size % 32:
        raise ConfigError(f"--input-size {size} is not a positive multiple of 32")
    return size


def still_input_size(model_cfg: dict[str, Any], pipeline_cfg: dict[str, Any]) -> int:
    """The input side for still images: `pipeline.still_scale` x the model's streaming
    side (`input_size`), to a multiple of 32. Why: a photograph has no frame rate to
    keep, and its small people need the pixels (docs/MODEL.md, "Twelfth round")."""
    size = int(model_cfg["input_size"]) * float(pipeline_cfg["still_scale"])
    return max(32, round(size / 32) * 32)


PACKAGES = (
    "configs",
    "nets",
    "trainers",
    "pipeline",
    "bench",
    "run_stream",
    "__main__",
)


def setup_logging(level: int = logging.INFO) -> None:
    """The tools' messages to stderr: info lines bare, warnings and errors prefixed by
    their level ("warning: ..."), as one format for every tool. Called by each tool's
    main; calling it again adds nothing. Only this project's loggers are raised to
    `level`: other libraries stay at their default (warnings only)."""
    root = logging.getLogger()
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(_Format())
        root.addHandler(handler)
    for name in PACKAGES:
        logging.getLogger(name).setLevel(level)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a record comes (a test's capture too)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # noqa: ANN201 - logging.StreamHandler's attribute
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # noqa: ANN001
        pass


class _Format(logging.Formatter):
    """INFO bare, WARNING and above prefixed by their level ("warning: ...")."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {text}"
        return text
