"""Errors a user can fix, raised in any package and shown by the CLIs as one line.

They live here, beside the shared tables, so a stage, a data set or a checkpoint loader
can raise them without importing the code that happens to catch them.
"""

from __future__ import annotations


class StageError(Exception):
    """A problem the user can fix (bad file, missing camera...): shown as one line."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is one line saying why."""


class DatasetError(ValueError):
    """A data set that cannot be read; the message names the file and what is wrong."""
