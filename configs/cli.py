"""What every command-line tool shares: the `--checkpoint` flag (one declaration, one
meaning: the model `nets.model.load_model` loads) and the logging setup, so messages
go through `logging` with one format whichever tool runs them."""

from __future__ import annotations

import argparse
import logging
import sys

CHECKPOINT_HELP = "trained model .pt (default: the shipped nets/weights/default.pt)"


def add_checkpoint(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Declare `--checkpoint PATH` on a parser or argument group."""
    parser.add_argument("--checkpoint", metavar="PATH", help=CHECKPOINT_HELP)


def setup_logging(level: int = logging.INFO) -> None:
    """Messages to stderr as `warning: ...` / plain info lines, as the tools printed
    them; called once by each tool's main."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Format())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class _Format(logging.Formatter):
    """INFO bare, WARNING and above prefixed by their level ("warning: ...")."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {text}"
        return text
