"""Output files never cost the user an earlier result: each is written under a
temporary name beside its final path and moved into place (one atomic rename) only
when the run produced something, so a run that fails before its first frame (a
refused source, a bad backend, Ctrl-C during start-up) leaves an existing file as it
was. `check_writable` runs before the model loads, so an unwritable path fails at
once.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from configs.errors import StageError


def partial_path(path: Path) -> Path:
    """Where `path` is written until it is complete: hidden, same folder (so the move
    is a rename), same suffix (FFmpeg picks the container from it)."""
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")


def check_writable(path: Path) -> None:
    """One line if `path` cannot be written (its folder is made if missing)."""
    if path.is_dir():
        raise StageError(f"cannot write {path}: it is a folder")
    above = next(p for p in path.parents if p.exists())
    if not above.is_dir():
        raise StageError(f"cannot write {path}: {above} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".partstream-"):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise StageError(f"cannot write {path}: {why}") from exc


def finish(partial: Path, path: Path, keep: bool) -> None:
    """Move a complete `partial` into place, or drop it (`keep` False: nothing was
    produced, and whatever `path` held stays)."""
    if keep:
        os.replace(partial, path)
    else:
        partial.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    """A whole text file, written as above."""
    path = Path(path)
    check_writable(path)
    partial = partial_path(path)
    partial.write_text(text)
    finish(partial, path, keep=True)
