"""Smoke test of bench.decode: both engines (native with and without the joint
completion and the vote refinement) timed on small maps, the doc section."""

from __future__ import annotations

import copy

from bench.common import machine
from bench.decode import doc_section, graph_engine, oracle_maps, timed
from configs import load_config
from nets.native import NativeDecoder


def test_engines_are_timed_side_by_side() -> None:
    cfg = load_config()
    cfg["input_size"] = 64
    cfg["decode"].update(top_k=6, max_people=4)
    cfg["decode"]["pgd"] = {"steps": 2, "inner_steps": 2, "alpha": 1.0, "swaps": 1}
    scenes = {"1 person": oracle_maps(cfg, 1), "30 people": oracle_maps(cfg, 3)}
    off = copy.deepcopy(cfg)
    off["decode"]["complete_joints"] = False
    plain = copy.deepcopy(cfg)
    plain["decode"]["vote_refine"] = 0
    native = timed(
        {
            "native": NativeDecoder(cfg),
            "native_no_completion": NativeDecoder(off),
            "native_no_refine": NativeDecoder(plain),
        },
        scenes,
        2,
    )
    graph = timed({"graph": graph_engine(cfg, scenes["1 person"])}, scenes, 1)
    for result in (*native.values(), graph["graph"]):
        assert set(result) == set(scenes)
        for r in result.values():
            assert r["cpu_p50"] > 0 and 0 < r["wall_p50"] <= r["wall_p99"]
    record = {
        "machine": machine(),
        "input_size": 64,
        "top_k": 6,
        "max_people": 4,
        "graph_matcher": "pgd",
        "complete_joints": True,
        "vote_refine": 2,
        "people_found": {"1 person": 1, "30 people": 3},
        "joints_guessed": {"1 person": 0, "30 people": 2},
        "native_first_call_ms": 1.0,
        **native,
        "graph": graph["graph"],
        "native_p50_1": 1.0,
        "native_p50_30": 2.0,
        "native_ratio": 2.0,
    }
    text = doc_section(record)
    assert "| 30 people | 3 | 2 |" in text and "<= 1.05: not met" in text
    assert "completion's share" in text and "vote refinement's (2 steps)" in text
