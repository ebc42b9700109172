"""bench.network_cost on tiny networks: the parts compose to the network, the
one-thread rows name every network and their ratios, the doc tables render."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from bench.common import time_alternating
from bench.network_cost import (
    REFERENCE,
    SHIPPED,
    UNTRAINED,
    VARIANTS,
    doc_tables,
    load_reference,
    networks,
    one_thread_rows,
    part_times,
    pieces,
)
from nets.model import NetworkModel, build_model
from nets.movenet import MoveNet
from tests.nets.tiny_model import tiny_cfg

torch.set_num_threads(1)
PARTS = ["trunk", "FPN", "heads", "DSPF", "Hough"]


def tiny(shared: bool = False) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(0)
    cfg = tiny_cfg("movenet")
    cfg["model"]["shared_decoder"] = shared
    return build_model(cfg).eval(), cfg


@pytest.mark.parametrize("shared", [False, True])
def test_pieces_compose_to_the_network(shared: bool) -> None:
    model, _ = tiny(shared)
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    steps = pieces(model, images)
    names = [name for name, _, _ in steps]
    assert names == PARTS[:2] + ["shared decoder"] * shared + PARTS[2:]
    got: dict = {}
    with torch.no_grad():
        for _, piece, inputs in steps:
            got.update(piece(*inputs))
        ref = NetworkModel(model)(images)
    for key, value in ref.items():
        assert torch.allclose(got[key], value, atol=1e-6), key


@pytest.mark.forked  # its own process: after its OpenVINO models, a later in-process
# SIGINT test (tests/pipeline/test_runner.py) crashed the interpreter 4 times in 5
def test_one_thread_rows_parts_and_doc(tmp_path: Path) -> None:
    model, cfg = tiny(shared=True)
    torch.manual_seed(0)
    nets = networks(model, cfg, MoveNet(0.25).eval(), trained=False)
    variants = [n for n in nets if n not in (SHIPPED, REFERENCE)]
    assert variants and all(UNTRAINED in nets[n]["label"] for n in variants)
    assert nets["own_decoders"]["module"].model.shared_decoder is None
    assert nets["slim_24_shared"]["module"].model.shared_decoder is not None
    assert nets["wide_64"]["head_channels"] == 64
    trunk = nets["wide_64"]["module"].model.backbone.state_dict()
    assert all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in trunk.items())
    images = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    rows = one_thread_rows(nets, images, repeats=2, warmup=1, tmp=tmp_path)
    by_name = {r["network"]: r for r in rows if r["backend"] == "openvino-f32"}
    assert list(by_name) == list(nets)
    assert by_name[SHIPPED]["vs_shipped"] == 1.0
    assert by_name[REFERENCE]["vs_movenet"] == 1.0
    assert by_name[REFERENCE]["fpn_channels"] is None
    reference = {r["backend"]: r for r in rows if r["network"] == REFERENCE}
    for r in rows:  # each precision (f32, and bf16 where the CPU has it) on its own
        assert r["threads"] == 1 and 0 < r["network_ms"] <= r["p90_ms"]
        assert r["vs_movenet"] == round(
            r["network_ms"] / reference[r["backend"]]["network_ms"], 3
        )
    parts = part_times(tiny()[0], images, repeats=2, warmup=1, tmp=tmp_path)
    assert list(parts["parts_ms"]) == PARTS  # a decoder each: no shared-decoder part
    assert parts["sum_ms"] == pytest.approx(sum(parts["parts_ms"].values()), 1e-3)
    record = {
        "movenet": {"available": True, "note": "reference"},
        "repeats": 2,
        "one_thread": rows,
        "parts": [parts],
    }
    text = "\n".join(doc_tables(record))
    assert (
        f"**{UNTRAINED}**" in text and "| 64 | openvino-f32 | shipped model |" in text
    )
    assert "| size | trunk | FPN | heads |" in text


@pytest.mark.forked  # OpenVINO in its own process, as above: with bf16 rows (a CPU
# that has bf16) the SIGINT test crashed after it in every run, 6 of 6
def test_without_movenet_the_rows_have_no_ratio(tmp_path: Path) -> None:
    reference, note = load_reference(tmp_path / "movenet-multipose.json")
    assert reference is None and "skipped" in note
    model, cfg = tiny()
    nets = networks(model, cfg, None, trained=True, variants=VARIANTS)
    assert REFERENCE not in nets and nets[SHIPPED]["trained"]
    images = np.zeros((1, 3, 64, 64), np.float32)
    rows = one_thread_rows(
        {SHIPPED: nets[SHIPPED]}, images, repeats=1, warmup=0, tmp=tmp_path
    )
    assert [r["vs_movenet"] for r in rows] == [None] * len(rows)


def test_time_alternating_runs_each_in_turn() -> None:
    calls: list[str] = []
    times = time_alternating(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3, 1
    )
    assert calls == ["a", "b"] + ["a", "b"] * 3
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}
