"""Optional parts of the install: a package of an extra that is missing is one clear
line naming the extra to install, not a traceback.

The base install (`pip install -e .`) is what `run_stream.py` needs; training,
benchmarks, OpenVINO and a GUI OpenCV come with extras (pyproject.toml).
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtra(ImportError):
    """A package of an optional extra is not installed; the message says how to get
    it. An ImportError, so code that falls back on a missing import still does."""


def require(module: str, extra: str, fatal: bool = False) -> ModuleType:
    """Import `module`, or fail saying `pip install -e ".[extra]"` brings it.

    fatal=True exits with that one line (SystemExit) instead of raising MissingExtra:
    for modules only command-line tools import, where the import happens before any
    main() could catch it. Never in a pipeline worker: a thread ends silently on it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        message = f'{top} is not installed: pip install -e ".[{extra}]"'
        if fatal:
            raise SystemExit(f"error: {message}") from None
        raise MissingExtra(message) from exc
