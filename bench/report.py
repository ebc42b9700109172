"""Writes a benchmark's generated section into docs/BENCHMARKS.md, leaving prose alone.

Each benchmark owns the text between `<!-- bench:NAME -->` and `<!-- /bench:NAME -->`;
everything outside the markers is written by hand and never touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from configs.extras import require

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"
PLOTS = ROOT / "docs" / "bench"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; floats get 1 decimal (2 below 10)."""

    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def update_section(name: str, body: str, doc: Path = DOC) -> None:
    """Replace (or append) the generated section `name` of the doc with body."""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)


def new_plot(height: float = 4.0) -> tuple[Any, Any]:
    """(figure, axes) of a benchmark plot, drawn off-screen."""
    require("matplotlib", "bench", fatal=True).use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6.4, height))


def save_plot(fig: Any, ax: Any, path: Path, legend: bool = True) -> None:
    """Grid (and legend), then the PNG; the figure is closed."""
    import matplotlib.pyplot as plt

    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
