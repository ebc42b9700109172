"""Smoke test of bench.matching's decode timing: every matcher on both scenes, in
turns."""

from __future__ import annotations

from bench.matching import decode_times


def test_decode_times_cover_every_matcher_and_scene() -> None:
    times = decode_times(1)
    assert set(times) == {
        f"{people} people, {matcher}"
        for matcher in ("pgd", "greedy", "hungarian")
        for people in (1, 30)
    }
    assert all(ms > 0 for ms in times.values())
