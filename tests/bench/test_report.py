"""bench.report and bench.common: generated doc sections and the shared helpers."""

from __future__ import annotations

from pathlib import Path

from bench.common import machine, machine_line, percentiles
from bench.report import table, update_section


def test_update_section_replaces_only_its_block(tmp_path: Path) -> None:
    doc = tmp_path / "B.md"
    doc.write_text("# Benchmarks\n\nhand-written prose\n")
    update_section("a", "first", doc)
    update_section("b", "other", doc)
    update_section("a", "second", doc)
    text = doc.read_text()
    assert "hand-written prose" in text and "other" in text
    assert "second" in text and "first" not in text
    assert text.count("<!-- bench:a -->") == 1
    assert text.index("bench:a") < text.index("bench:b")


def test_table_and_percentiles() -> None:
    assert table(["x", "y"], [[1, 2.345], [3, 123.45]]).splitlines() == [
        "| x | y |",
        "|---|---|",
        "| 1 | 2.35 |",
        "| 3 | 123.5 |",
    ]
    assert percentiles([1.0, 2.0, 3.0]) == {"p50": 2.0, "p99": 2.98}
    assert percentiles([]) == {"p50": 0.0, "p99": 0.0}


def test_machine_line_says_when_the_cpu_was_shared() -> None:
    info = machine()
    assert info["nproc"] >= 1 and info["cpu"]
    assert "shared" in machine_line({**info, "shared_cpu": True})
    assert "shared" not in machine_line({**info, "shared_cpu": False})
