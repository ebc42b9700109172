"""Evaluation: a tiny random model on a few held-out synthetic scenes writes the
JSON (every metric a fraction), the table and the worst-case overlays; bad input gives
a one-line error."""

from __future__ import annotations

import json

import pytest
import torch

from configs import load_config
from nets.model import build_model, save_checkpoint
from trainers.evaluate import TABLES, format_table, main


def tiny_checkpoint(path):
    cfg = load_config()
    cfg["input_size"] = 64
    cfg["model"].update(fpn_channels=8, head_channels=8)
    cfg["data"]["people"] = [1, 3]
    torch.manual_seed(0)
    save_checkpoint(path, build_model(cfg), cfg, {})
    return path


def test_evaluate_writes_metrics_and_overlays(tmp_path, capsys):
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    out = tmp_path / "metrics.json"
    code = main([
        "--checkpoint", str(ckpt), "--data", "synthetic", "--count", "3", "--seed", "7",
        "--json", str(out), "--overlays", str(tmp_path / "worst"), "--worst", "2",
        "--threads", "1",
    ])  # fmt: skip
    assert code == 0
    metrics = json.loads(out.read_text())
    for key in ("mIoU", "APp50", "APpvol", "PCP50", "APr50", "OKS_AP"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["scenes"] == 3
    assert len(list((tmp_path / "worst").glob("worst*.png"))) == 2
    printed = capsys.readouterr().out
    assert "AP^p_50" in printed and "OKS AP" in printed


def test_output_grid_and_matcher_options(tmp_path):
    ckpt = tiny_checkpoint(tmp_path / "tiny.pt")
    out = tmp_path / "metrics.json"
    args = ["--checkpoint", str(ckpt), "--count", "2", "--threads", "1"]
    assert main([*args, "--grid", "output", "--json", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["grid"] == "output" and 0.0 <= metrics["mIoU"] <= 1.0
    assert metrics["matcher"] == "pgd"  # the checkpoint's decode.matcher
    assert main([*args, "--matcher", "greedy", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["matcher"] == "greedy"
    assert main([*args, "--input-size", "96", "--json", str(out)]) == 0  # 64 trained
    assert main([*args, "--input-size", "100"]) == 2  # not a multiple of 32
    assert json.loads(out.read_text())["protocol"] == "ours"
    assert main([*args, "--protocol", "official", "--json", str(out)]) == 0
    official = json.loads(out.read_text())
    assert official["protocol"] == "official" and 0.0 <= official["mIoU"] <= 1.0
    with pytest.raises(SystemExit):  # argparse: usage line and exit code 2
        main([*args, "--grid", "pixels"])


def test_table_layout():
    metrics = {key: 0.5 for _, cols in TABLES for key, _ in cols}
    metrics["mIoU"] = 0.123
    table = format_table(metrics)
    assert "12.3" in table and table.count("50.0") == 8


def test_bad_input_is_one_line(tmp_path, capsys):
    tiny = str(tiny_checkpoint(tmp_path / "t.pt"))
    for args in (
        ["--checkpoint", str(tmp_path / "none.pt")],
        ["--checkpoint", tiny, "--data", "nosuchkind:x"],
        ["--checkpoint", tiny, "--seed", "999999"],  # would reach training seeds
    ):
        assert main([*args, "--count", "5"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:"), err


def test_oracle_maps_replace_the_network(tmp_path):
    """With every map group from the ground truth the random network has no say: the
    decode oracle, scored on the output grid, finds the parts exactly; with the DSPF
    left to the network the parts stay exact and only the person assignment moves."""
    ckpt = str(tiny_checkpoint(tmp_path / "tiny.pt"))
    out = tmp_path / "metrics.json"
    args = ["--checkpoint", ckpt, "--count", "3", "--threads", "1", "--grid", "output"]
    everything = ["parts", "keypoints", "limbs", "dspf"]
    assert main([*args, "--oracle", *everything, "--json", str(out)]) == 0
    perfect = json.loads(out.read_text())
    assert perfect["oracle"] == everything
    assert perfect["mIoU"] == pytest.approx(1.0) and perfect["OKS_AP"] > 0.9
    assert main([*args, "--oracle", *everything[:3], "--json", str(out)]) == 0
    dspf_only = json.loads(out.read_text())
    assert dspf_only["mIoU"] == pytest.approx(1.0)
    assert dspf_only["OKS_AP"] == pytest.approx(perfect["OKS_AP"])
    assert dspf_only["APp50"] < perfect["APp50"]
    assert main([*args, "--json", str(out)]) == 0
    assert json.loads(out.read_text())["mIoU"] < 0.9
