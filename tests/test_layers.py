"""The packages' layering, read from every module's imports (ast, nothing imported).

configs/ holds what everyone shares and imports none of the others; nets/ (the network)
knows nothing of training or streaming; trainers/ nothing of streaming; bench/ is a
leaf only bench/ and its tests may import. Inside pipeline/, the engine knows no stage
or adapter, and the stages know no adapter nor the assembly. A forbidden import fails
here with its file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ("pipeline.runner", "pipeline.evaluate")
# folder (or top-level file) -> module prefixes it must not import
FORBIDDEN = {
    "configs": ("nets", "trainers", "pipeline", "bench"),
    "nets": ("trainers", "pipeline", "bench"),
    "trainers": ("pipeline", "bench"),
    "pipeline": ("bench",),
    "pipeline/engine": ("pipeline.stages", "pipeline.io", *APP),
    "pipeline/stages": ("pipeline.io", *APP),
    "pipeline/io": APP,
    "run_stream.py": ("bench",),
    "tests": ("bench",),
}


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in a file, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def sources(owner: str) -> list[Path]:
    if owner.endswith(".py"):
        return [ROOT / owner]
    files = sorted((ROOT / owner).rglob("*.py"))
    if owner == "tests":  # bench's own tests may import what they test
        files = [f for f in files if "bench" not in f.relative_to(ROOT / "tests").parts]
    return files


def violations(owner: str) -> list[str]:
    out = []
    for path in sources(owner):
        for line, module in imports(path):
            if any(within(module, bad) for bad in FORBIDDEN[owner]):
                where = path.relative_to(ROOT).as_posix()
                out.append(f"{where}:{line} imports {module}")
    return out


@pytest.mark.parametrize("owner", list(FORBIDDEN))
def test_no_forbidden_imports(owner):
    assert sources(owner), f"nothing found for {owner}"
    assert violations(owner) == []


def test_a_forbidden_import_is_seen(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom trainers.x import y\ndef f():\n  import bench\n")
    assert imports(module) == [(1, "os"), (2, "trainers.x"), (4, "bench")]
    assert within("pipeline.io.feed", "pipeline.io")
    assert not within("pipeline.iox", "pipeline.io")
