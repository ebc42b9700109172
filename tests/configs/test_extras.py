"""The base install runs run_stream.py: nothing it imports needs an extra, and a tool
that needs one says which in one line."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from configs.extras import MissingExtra, require

ROOT = Path(__file__).resolve().parents[2]

# Packages the extras bring (pyproject.toml), hidden from a child interpreter as if
# only the base install were there.
EXTRA_PACKAGES = ("matplotlib", "tensorboard", "PIL", "openvino", "onnxscript")

BLOCKER = textwrap.dedent(f"""
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {EXTRA_PACKAGES!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}")
    sys.meta_path.insert(0, Block())
""")


def _child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_require_names_the_extra():
    assert require("json", "train").dumps([1]) == "[1]"
    with pytest.raises(MissingExtra, match=r'pip install -e "\.\[train\]"'):
        require("no_such_package_here.sub", "train")
    with pytest.raises(ImportError):  # code that falls back on ImportError still does
        require("no_such_package_here", "bench")
    with pytest.raises(SystemExit, match=r"^error: no_such_package_here is not"):
        require("no_such_package_here", "bench", fatal=True)


def test_everything_run_stream_imports_needs_no_extra():
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for pkg in ("configs", "pipeline", "nets")
        for p in (ROOT / pkg).rglob("*.py")
        if p.name != "__init__.py"
    )
    result = _child(f"""
        import importlib
        for name in {modules + ["trainers.synth"]!r}:
            importlib.import_module(name)
        from nets.runtimes import available_runtimes
        assert available_runtimes()[0] == "onnxruntime", available_runtimes()
        import run_stream
        run_stream.parse_args(["--source", "clip.mp4"])
    """)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("code", "extra"),
    [
        ("import trainers.evaluate", "train"),
        ("import trainers.train", "train"),
        ("import trainers.datasets.coco", "train"),
        ("from bench.report import new_plot; new_plot()", "bench"),
    ],
)
def test_a_tool_without_its_extra_is_one_line(code, extra):
    result = _child(code)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.fullmatch(
        rf'error: (PIL|matplotlib) is not installed: pip install -e "\.\[{extra}\]"',
        lines[0],
    )


def test_openvino_backend_without_its_extra():
    result = _child("""
        from nets.runtimes import OpenVinoRuntime
        try:
            OpenVinoRuntime("model.xml")
        except ImportError as exc:
            print(exc)
    """)
    expected = 'openvino is not installed: pip install -e ".[openvino]"'
    assert result.stdout.strip() == expected
