"""Training: the loss falls, interrupted runs resume exactly, bad checkpoints are
refused in one line, and two DDP processes compute what one process computes."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from configs import body, load_config
from configs.errors import CheckpointError
from nets.model import build_model, load_checkpoint
from trainers.data import (
    EVAL_SEED_LIMIT,
    BatchPlan,
    TrainScenes,
    heldout_seeds,
    train_seed,
)
from trainers.targets import encode_batch
from trainers.train import Dist, check_parts, lr_at, main, train


def tiny_cfg(**train_keys) -> dict:
    """A network and data small enough for a test: 64 px, 8 channels, 1-3 people."""
    cfg = load_config()
    cfg["input_size"] = 64
    cfg["model"].update(fpn_channels=8, head_channels=8)
    cfg["data"]["people"] = [1, 3]
    cfg["train"].update(
        batch_size=2, step1_iters=2, step2_iters=1, warmup_iters=0, threads=1,
        num_workers=0, checkpoint_every=1, log_every=1, lr=0.003,
    )  # fmt: skip
    cfg["train"].update(train_keys)
    return cfg


def losses(out: Path) -> dict[int, float]:
    with (out / "scalars.csv").open() as f:
        return {int(r["iteration"]): float(r["loss"]) for r in csv.DictReader(f)}


def test_seed_ranges_never_overlap():
    assert train_seed(0) >= EVAL_SEED_LIMIT
    assert max(heldout_seeds(500, EVAL_SEED_LIMIT - 500)) < train_seed(0)
    with pytest.raises(ValueError):
        heldout_seeds(10, EVAL_SEED_LIMIT - 5)


def test_batch_plan_ddp_equals_accumulation():
    """2 processes x 1 micro-batch see the groups 1 process sees in 2 micro-batches."""
    one = list(BatchPlan(8, 3, 5, rank=0, world=1, accumulate=2))
    two = [list(BatchPlan(8, 3, 5, rank=r, world=2, accumulate=1)) for r in (0, 1)]
    assert one == [x for pair in zip(*two, strict=True) for x in pair]
    assert sorted(i for b in one for i in b) == list(range(24, 40))


def test_real_data_mixes_with_synthetic():
    """data.real: COCO's real sample (parts derived from keypoints) beside synthetic
    scenes, by weight, every sample at the input size and encodable."""
    coco = Path(__file__).resolve().parents[3] / "shared" / "data" / "formats" / "coco"
    cfg = tiny_cfg()
    cfg["data"]["real"] = [{"spec": f"coco:{coco / 'test_coco.json'},images={coco}",
                            "weight": 1.0}]  # fmt: skip
    data = TrainScenes(cfg)
    sources = [data.source(i) for i in range(8)]
    assert set(sources) == {0, 1}
    scenes = [data[i] for i in range(8)]
    assert all(s.image.shape == (64, 64, 3) and s.taxonomy == "fine" for s in scenes)
    assert encode_batch(scenes, cfg)["image"].shape == (8, 3, 64, 64)
    cfg["data"]["synthetic"] = False
    assert {TrainScenes(cfg).source(i) for i in range(8)} == {1}


def test_schedules():
    cfg = tiny_cfg(
        lr=0.05,
        schedule="step",
        lr_steps=[0.5],
        lr_gamma=0.1,
        step1_iters=10,
        step2_lr=1e-4,
        step2_schedule="constant",
    )
    assert [round(lr_at(i, cfg), 6) for i in (0, 4, 5, 9, 10, 11)] == [
        0.05, 0.05, 0.005, 0.005, 1e-4, 1e-4]  # fmt: skip
    cfg["train"].update(schedule="cosine", min_lr_ratio=0.0, warmup_iters=2)
    assert lr_at(0, cfg) == pytest.approx(0.025)  # half-way through warm-up
    assert lr_at(5, cfg) == pytest.approx(0.025)  # half-way down the cosine


def test_loss_falls_on_fixed_data(tmp_path):
    """Two fixed scenes (a pool of 2, no augmentation): the loss must go down."""
    cfg = tiny_cfg(
        step1_iters=8, step2_iters=0, lr=0.001, grad_clip=1.0, checkpoint_every=100
    )
    cfg["data"]["pool_size"] = 2
    cfg["augment"].update(flip=0.0, scale=[1.0, 1.0], rotate=0.0, color=0.0)
    train(cfg, tmp_path)
    curve = losses(tmp_path)
    assert sorted(curve) == list(range(1, 9))
    assert (curve[7] + curve[8]) / 2 < 0.8 * curve[1]
    assert (tmp_path / "final.pt").exists() and (tmp_path / "loss.png").exists()


def test_resume_continues_at_the_same_iteration(tmp_path):
    """Stopped after iteration 1 and resumed == never stopped (data, optimizer, both
    training steps), and the checkpoints load as models."""
    cfg = tiny_cfg()
    train(cfg, tmp_path / "whole")
    train(cfg, tmp_path / "split", stop_at=1)
    meta = torch.load(tmp_path / "split" / "last.pt", weights_only=True)["meta"]
    assert meta["iteration"] == 1 and meta["step"] == 1
    assert meta["taxonomy"]["classes"][0] == "background"
    assert meta["limbs"] == body()["limb_names"]  # loaders refuse other limb sets
    assert not (tmp_path / "split" / "final.pt").exists()
    train(cfg, tmp_path / "split", resume=True)
    whole, split = losses(tmp_path / "whole"), losses(tmp_path / "split")
    assert sorted(split) == [1, 2, 3]
    for it in (2, 3):  # 3 is step 2, with the matching loss
        assert split[it] == pytest.approx(whole[it], rel=1e-5, abs=1e-6)
    model, cfg_back = load_checkpoint(tmp_path / "split" / "final.pt", cfg)
    assert cfg_back["model"]["fpn_channels"] == 8
    assert (tmp_path / "split" / "step1.pt").exists()


def test_a_continued_run_keeps_the_learned_loss_weights(tmp_path):
    """`train.init` takes the weights and the learned loss weights s_i of the run it
    continues (they are part of what that run learned), and final.pt holds them."""
    cfg = tiny_cfg(step1_iters=2, step2_iters=0)
    train(cfg, tmp_path / "first")
    first = torch.load(tmp_path / "first" / "final.pt", weights_only=True)["meta"]
    assert first["loss_terms"][0] == "parts"
    assert first["loss_weights"].abs().sum() > 0  # they moved from 0
    train(
        tiny_cfg(
            step1_iters=1,
            step2_iters=0,
            lr=0.0,
            warmup_iters=0,
            weight_decay=0.0,
            init=str(tmp_path / "first" / "final.pt"),
        ),
        tmp_path / "second",
    )
    second = torch.load(tmp_path / "second" / "final.pt", weights_only=True)["meta"]
    assert second["loss_terms"] == first["loss_terms"]
    torch.testing.assert_close(second["loss_weights"], first["loss_weights"])


def test_init_may_teach_other_disks_but_a_resume_may_not(tmp_path):
    """`train.init` takes weights: a run may start from them with other targets (the
    keypoint disks' radius, and with it the Hough radius) and its checkpoint says so;
    resuming the first run with that changed config is a one-line error."""
    train(tiny_cfg(step1_iters=1, step2_iters=0), tmp_path / "first")
    first, _ = load_checkpoint(tmp_path / "first" / "final.pt")
    cfg = tiny_cfg(
        step1_iters=1, step2_iters=0, init=str(tmp_path / "first" / "final.pt")
    )
    cfg["targets"]["disk_radius"] = 8.0
    train(cfg, tmp_path / "smaller")
    second, second_cfg = load_checkpoint(tmp_path / "smaller" / "final.pt")
    assert second_cfg["targets"]["disk_radius"] == 8.0
    assert second.hough_radius == 2.0 and first.hough_radius == 3.0
    with pytest.raises(CheckpointError, match="different model config"):
        train(cfg, tmp_path / "first", resume=True)


def test_a_fresh_part_learns_on_frozen_features(tmp_path):
    """The DSPF ablation's set-up: every part but the DSPF from `init`, frozen (weights
    and BN statistics unchanged); the DSPF built as another variant, fresh, learning."""
    train(tiny_cfg(step1_iters=1, step2_iters=0), tmp_path / "first")
    first, _ = load_checkpoint(tmp_path / "first" / "final.pt")
    frozen = ["backbone", "fpn", "part_head", "pose_head"]
    init = str(tmp_path / "first" / "final.pt")
    cfg = tiny_cfg(
        step1_iters=2, step2_iters=0, init=init, fresh=["dspf"], freeze=frozen
    )
    cfg["model"]["dspf"].update(residual=False, warping=False)
    torch.manual_seed(cfg["train"]["seed"])  # train() builds its network after this
    start = build_model(cfg).dspf.state_dict()
    train(cfg, tmp_path / "probe")
    probe, _ = load_checkpoint(tmp_path / "probe" / "final.pt")
    before, after = first.state_dict(), probe.state_dict()
    for key, value in after.items():
        if key.startswith("dspf."):
            assert (
                key not in before
                or value.shape != before[key].shape
                or not (torch.equal(value, before[key]))
            )
        else:
            torch.testing.assert_close(value, before[key], rtol=0, atol=0)
    moved = [
        k
        for k, v in probe.dspf.state_dict().items()
        if v.is_floating_point() and not torch.equal(v, start[k])
    ]
    assert moved  # the fresh part learned
    assert (
        main(
            [
                "--config",
                str(_yaml(tmp_path, fresh=["head"])),
                "--out",
                str(tmp_path / "bad"),
            ]
        )
        == 2
    )


def test_init_that_does_not_fit_outside_fresh_is_a_one_line_error(tmp_path, capsys):
    train(tiny_cfg(step1_iters=1, step2_iters=0), tmp_path / "first")
    wider = _yaml(tmp_path, init=str(tmp_path / "first" / "final.pt"), fresh=["dspf"])
    wider.write_text(wider.read_text() + "model: {fpn_channels: 16}\n")
    capsys.readouterr()
    assert main(["--config", str(wider), "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not fit this network outside train.fresh" in err[0]


CONFIGS = sorted(
    p
    for p in (Path(__file__).resolve().parents[2] / "configs").glob("*.yaml")
    # tables, not run configs (head_variants' networks: tests/bench/test_network_cost)
    if p.stem not in ("body", "parts", "real_clips", "head_variants")
)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_shipped_config_builds_its_network(path):
    """Configs are data nobody runs in CI (training legs, ablations, the paper's): each
    must load, build its network, and name real parts in train.fresh / freeze."""
    cfg = load_config(path)
    model = build_model(cfg)
    check_parts(model, cfg)
    assert sum(p.numel() for p in model.parameters()) > 0


def _yaml(tmp_path: Path, **train_keys) -> Path:
    default = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"
    path = tmp_path / "cfg.yaml"
    path.write_text(f"base: {default}\ninput_size: 64\ntrain: {train_keys}\n")
    return path


def test_mismatched_checkpoint_is_a_one_line_error(tmp_path, capsys):
    cfg = tiny_cfg(step1_iters=1, step2_iters=0)
    train(cfg, tmp_path / "run", stop_at=1)
    other = tmp_path / "other.yaml"
    default = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"
    other.write_text(f"base: {default}\ninput_size: 64\nmodel: {{fpn_channels: 16}}\n")
    capsys.readouterr()
    code = main(["--config", str(other), "--out", str(tmp_path / "run"), "--resume"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error:") and "checkpoint" in err[0]


def _ddp_worker(rank: int, cfg: dict, out: str, init: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        train(cfg, Path(out), where=Dist(rank=rank, world=2))
    finally:
        dist.destroy_process_group()


def test_ddp_two_processes_equal_one(tmp_path):
    """gloo, 2 CPU processes x 2 scenes == 1 process x 2 accumulated micro-batches of
    2 (same samples, same batch-norm groups): the same loss at every iteration."""
    cfg = tiny_cfg(batch_size=4, accumulate=1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    init = f"file://{tmp_path / 'rendezvous'}"
    mp.start_processes(_ddp_worker, args=(cfg, str(tmp_path / "ddp"), init), nprocs=2,
                       start_method="spawn")  # fmt: skip
    single = tiny_cfg(batch_size=4, accumulate=2)
    train(single, tmp_path / "one")
    ddp, one = losses(tmp_path / "ddp"), losses(tmp_path / "one")
    assert sorted(ddp) == [1, 2, 3]
    for it in ddp:
        assert ddp[it] == pytest.approx(one[it], rel=1e-4)


def test_lr_scale_slows_a_part_alone(tmp_path):
    """train.lr_scale multiplies one part's rate: at 0 the backbone keeps its start
    weights exactly while the heads trained from the same start move."""
    train(tiny_cfg(step1_iters=1, step2_iters=0), tmp_path / "start")
    start, _ = load_checkpoint(tmp_path / "start" / "final.pt")
    cfg = tiny_cfg(
        step1_iters=2, step2_iters=0, init=str(tmp_path / "start" / "final.pt"),
        lr_scale={"backbone": 0.0},
    )  # fmt: skip
    train(cfg, tmp_path / "run")
    after, _ = load_checkpoint(tmp_path / "run" / "final.pt")
    for a, b in zip(
        start.backbone.parameters(), after.backbone.parameters(), strict=True
    ):
        assert torch.equal(a, b)
    moved = [
        not torch.equal(a, b)
        for a, b in zip(
            start.pose_head.parameters(), after.pose_head.parameters(), strict=True
        )
    ]
    assert any(moved)


def test_resume_with_other_parameter_groups_is_one_clear_error(tmp_path):
    """Resuming after train.lr_scale changed the optimizer's groups: a
    CheckpointError naming the checkpoint, not torch's ValueError."""
    train(tiny_cfg(), tmp_path, stop_at=1)
    with pytest.raises(CheckpointError, match="last.pt: its optimizer state"):
        train(tiny_cfg(lr_scale={"backbone": 0.5}), tmp_path, resume=True)
