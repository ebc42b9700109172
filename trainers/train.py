"""Two-step training (paper Sec. 4): step 1 without the matching loss, step 2 fine-tunes
with the differentiable matching. Schedules are config data (`train:` in the config).

    python -m trainers.train --config configs/train_cpu.yaml [--out runs/X] [--resume]
    torchrun --nproc_per_node 2 -m trainers.train --config ...  # DDP (gloo on CPU)

Iterations count across both steps: [0, step1_iters) is step 1, then step2_iters more.
`last.pt` is written atomically every `train.checkpoint_every` iterations;
`--resume` continues from it at the same iteration with the same data (trainers.data).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import logging
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from configs import ConfigError, body, load_config, taxonomy
from configs.cli import setup_logging
from configs.errors import CheckpointError
from configs.extras import require
from nets.losses import MGLoss
from nets.model import MGParser, build_model, load_checkpoint_meta, save_checkpoint
from trainers.data import build_pool, make_loader
from trainers.plots import loss_curve

logger = logging.getLogger(__name__)


@dataclass
class Dist:
    """Where this process sits in a (possibly one-process) DDP job."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Dist:
    """Join the torchrun job if there is one (gloo on CPU, nccl on GPUs)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if world <= 1:
        return Dist(device=device)
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), device)


# ---------------------------------------------------------------- schedules


def step_of(iteration: int, cfg: dict[str, Any]) -> int:
    return 1 if iteration < cfg["train"]["step1_iters"] else 2


def lr_at(iteration: int, cfg: dict[str, Any]) -> float:
    """Learning rate of a global iteration: warm-up, then the step's schedule."""
    t = cfg["train"]
    n1 = t["step1_iters"]
    if iteration >= n1:
        if t["step2_schedule"] == "constant":
            return float(t["step2_lr"])
        progress = (iteration - n1) / max(1, t["step2_iters"])
        return float(t["step2_lr"]) * 0.5 * (1 + math.cos(math.pi * progress))
    base = float(t["lr"])
    warm = min(1.0, (iteration + 1) / t["warmup_iters"]) if t["warmup_iters"] else 1.0
    progress = iteration / max(1, n1)
    if t["schedule"] == "cosine":
        floor = t["min_lr_ratio"]
        factor = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    elif t["schedule"] == "step":
        factor = t["lr_gamma"] ** sum(progress >= f for f in t["lr_steps"])
    else:
        raise ConfigError(f"unknown train.schedule '{t['schedule']}' (cosine | step)")
    return base * warm * factor


def param_groups(runner: nn.Module, cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """The runner's parameters grouped by `train.lr_scale` (part name -> factor on the
    schedule's rate): a pretrained trunk can learn slower than new heads without
    forgetting what it knew (unscaled, a MoveNet trunk lost it, docs/MODEL.md)."""
    scales = cfg["train"]["lr_scale"] or {}
    scale_of = {
        id(p): float(scales[name])
        for name, part in _unwrap(runner).model.named_children()
        if name in scales
        for p in part.parameters()
    }
    groups: dict[float, list[nn.Parameter]] = {}
    for p in runner.parameters():
        groups.setdefault(scale_of.get(id(p), 1.0), []).append(p)
    return [{"params": ps, "lr_scale": s} for s, ps in groups.items()]


def build_optimizer(runner: nn.Module, cfg: dict[str, Any]) -> torch.optim.Optimizer:
    t = cfg["train"]
    params = param_groups(runner, cfg)
    if t["optimizer"] == "sgd":
        return torch.optim.SGD(
            params, lr=t["lr"], momentum=t["momentum"], weight_decay=t["weight_decay"]
        )
    if t["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=t["lr"], weight_decay=t["weight_decay"])
    raise ConfigError(f"unknown train.optimizer '{t['optimizer']}' (adamw | sgd)")


# ---------------------------------------------------------------- checkpoints


def read_resume_state(path: Path, cfg: dict[str, Any]) -> tuple[nn.Module, dict]:
    """(weights, meta) of a checkpoint; a one-line CheckpointError if it does not fit
    `cfg` (another architecture or taxonomy) or is not a checkpoint."""
    model, _, meta = load_checkpoint_meta(path, expect_cfg=cfg)
    return model, meta


def start_from(model: MGParser, path: Path, cfg: dict[str, Any]) -> dict:
    """Load `train.init`'s weights into `model`, except the parts in `train.fresh`,
    which keep their new initialisation (and may be built differently from the
    checkpoint's); returns the checkpoint's meta. One-line CheckpointError when the
    other parts do not fit. The targets may differ (e.g. `targets.disk_radius`: the
    same weights taught other disks), unlike a resumed run's."""
    fresh = set(cfg["train"]["fresh"])
    weights, _, meta = load_checkpoint_meta(path)
    own = model.state_dict()
    theirs = weights.state_dict()
    keep = {k: v for k, v in theirs.items() if k.split(".")[0] not in fresh}
    wanted = {k for k in own if k.split(".")[0] not in fresh}
    bad = sorted(k for k in wanted if k not in keep or keep[k].shape != own[k].shape)
    if bad or keep.keys() != wanted:
        first = (bad or sorted(keep.keys() ^ wanted))[0]
        raise CheckpointError(
            f"checkpoint {path} does not fit this network outside train.fresh "
            f"(first difference: {first})"
        )
    model.load_state_dict(keep, strict=False)
    return meta


def apply_freeze(model: MGParser, cfg: dict[str, Any]) -> None:
    """Stop the parts in `train.freeze` from learning: no gradients, and batch norm
    in eval mode (call after every `model.train()`)."""
    for name in cfg["train"]["freeze"]:
        getattr(model, name).requires_grad_(False).eval()


def check_parts(model: MGParser, cfg: dict[str, Any]) -> None:
    """`train.fresh`, `train.freeze` and `train.lr_scale` name top-level parts."""
    known = [name for name, _ in model.named_children()]
    for key in ("fresh", "freeze", "lr_scale"):
        unknown = [n for n in cfg["train"][key] or () if n not in known]
        if unknown:
            raise ConfigError(
                f"train.{key}: unknown part {unknown[0]!r} (known: {', '.join(known)})"
            )


def checkpoint_meta(cfg: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """What a checkpoint says about itself: taxonomy, body and progress."""
    tax = taxonomy(cfg["model"]["taxonomy"])
    return {
        "taxonomy": {
            "name": cfg["model"]["taxonomy"],
            "classes": tax["classes"],
            "colors": tax["colors"],
            "flip": tax["flip"],
        },
        "keypoints": body()["keypoints"],
        "limbs": body()["limb_names"],
        "torch": str(torch.__version__),
        **extra,
    }


# ---------------------------------------------------------------- model pieces


class TrainStep(nn.Module):
    """Network + loss as one module, so DDP also averages the learned loss weights."""

    def __init__(self, model: nn.Module, criterion: nn.Module):
        super().__init__()
        self.model, self.criterion = model, criterion

    def forward(self, images: torch.Tensor, batch: dict[str, torch.Tensor]):
        return self.criterion(self.model(images), batch)


def _loss_state(criterion: nn.Module) -> dict[str, Any]:
    return {
        "loss_terms": list(criterion.terms),
        "loss_weights": criterion.log_vars.detach().clone(),
    }


def _loss_only(state: dict[str, Any]) -> dict[str, Any]:
    """The learned loss weights of a saved state (no optimizer), if it has them."""
    return {k: state[k] for k in ("loss_terms", "loss_weights") if k in state}


def carry_loss_weights(criterion: nn.Module, state: dict[str, Any]) -> None:
    """Start each learned loss weight where it was, by term name (step 2 adds the
    matching term, which starts at 0)."""
    old = dict(
        zip(state.get("loss_terms", []), state.get("loss_weights", []), strict=True)
    )
    with torch.no_grad():
        for i, name in enumerate(criterion.terms):
            if name in old:
                criterion.log_vars[i] = old[name]


def freeze_batchnorm(model: nn.Module) -> None:
    """Keep BN running statistics fixed (paper: the pretrained ImageNet values)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def should_freeze_bn(cfg: dict[str, Any]) -> bool:
    mode = cfg["train"]["freeze_bn"]
    return bool(cfg["model"]["backbone_weights"]) if mode == "auto" else bool(mode)


def _split_loss(result: Any) -> tuple[torch.Tensor, dict[str, float]]:
    """(total, terms) from what the criterion returns: a tensor or (tensor, dict)."""
    if isinstance(result, torch.Tensor):
        return result, {}
    total, terms = result
    return total, {k: float(v) for k, v in terms.items()}


# ---------------------------------------------------------------- logging


class ScalarLog:
    """Scalars to TensorBoard and a CSV (main process only); resume drops stale rows."""

    def __init__(self, out: Path, start: int):
        require("tensorboard", "train", fatal=True)
        from torch.utils.tensorboard import SummaryWriter

        self.path = out / "scalars.csv"
        self.rows: list[dict[str, Any]] = []
        if self.path.exists():
            with self.path.open() as f:
                self.rows = [
                    r for r in csv.DictReader(f) if int(r["iteration"]) <= start
                ]
        self.tb = SummaryWriter(str(out / "tb"), purge_step=start)

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        for key, value in row.items():
            if key not in ("iteration", "unix_time"):
                self.tb.add_scalar(key, value, row["iteration"])
        keys = list(dict.fromkeys(k for r in self.rows for k in r))
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, keys)
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.path)

    def close(self) -> None:
        self.tb.close()


# ---------------------------------------------------------------- the loop


def train(
    cfg: dict[str, Any],
    out: Path,
    resume: bool = False,
    where: Dist | None = None,
    stop_at: int | None = None,
) -> dict[str, Any]:
    """Run (or continue) training; returns the last logged row.

    stop_at: leave after that iteration with a checkpoint (a planned interruption:
    `--resume` continues exactly where it stopped).
    """
    where = where or Dist()
    t = cfg["train"]
    torch.set_num_threads(int(t["threads"]))
    torch.manual_seed(int(t["seed"]))
    total = int(t["step1_iters"]) + int(t["step2_iters"])
    end = total if stop_at is None else min(total, stop_at)
    fmt = torch.channels_last if t["channels_last"] else torch.contiguous_format
    model = build_model(cfg)
    check_parts(model, cfg)
    start, resumed, carried = 0, {}, {}
    last = out / "last.pt"
    if resume and last.exists():
        weights, meta = read_resume_state(last, cfg)
        model.load_state_dict(weights.state_dict())
        start, resumed = int(meta["iteration"]), meta
    elif t["init"]:
        init_meta = start_from(model, Path(t["init"]), cfg)
        # the learned loss weights go on from where that run left them
        carried = _loss_only(init_meta.get("resume") or init_meta)
    apply_freeze(model, cfg)
    model = model.to(where.device).to(memory_format=fmt)
    if where.main:
        out.mkdir(parents=True, exist_ok=True)
        note = f"resuming at iteration {start}" if resumed else "starting"
        logger.info("%s of %d -> %s", note, total, out)
    size = int(cfg["data"]["pool_size"])
    pool = build_pool(cfg, size) if size else None
    log = ScalarLog(out, start) if where.main else None
    row: dict[str, Any] = {}
    state = resumed.get("resume", carried)
    iteration = start
    try:
        while iteration < end:
            step = step_of(iteration, cfg)
            stop = min(end, int(t["step1_iters"]) if step == 1 else total)
            criterion = MGLoss(cfg, with_matching=step == 2).to(where.device)
            carry_loss_weights(criterion, state)
            runner: nn.Module = TrainStep(model, criterion)
            if where.world > 1:
                runner = nn.parallel.DistributedDataParallel(
                    runner, find_unused_parameters=True
                )
            optimizer = build_optimizer(runner, cfg)
            if resumed.get("step") == step and state.get("optimizer"):
                _load_optimizer(optimizer, state["optimizer"], last)
            loader = make_loader(
                data_config(cfg, step), iteration, stop, where.rank, where.world, pool
            )
            iteration, row = _run_step(
                runner, optimizer, loader, cfg, iteration, stop, step, out, where, log
            )
            state, resumed = _loss_state(criterion), {}
            if where.main and iteration == int(t["step1_iters"]):
                _save(out / "step1.pt", runner, optimizer, cfg, iteration, step)
    except KeyboardInterrupt:
        if where.main:
            print(
                f"interrupted at iteration {iteration}; --resume continues from "
                "the last checkpoint",
                file=sys.stderr,
            )
        raise
    finally:
        if log:
            log.close()
    if where.main and iteration == total:
        meta = checkpoint_meta(cfg, iteration=iteration, step=2, **_loss_only(state))
        save_checkpoint(out / "final.pt", model, cfg, meta)
    if where.main:
        loss_curve(out / "scalars.csv", out / "loss.png")
    return row


def data_config(cfg: dict[str, Any], step: int) -> dict[str, Any]:
    """The config the data of a step is made with: step 1 may use a smaller input
    (`train.step1_input_size`); the network is fully convolutional."""
    size = cfg["train"]["step1_input_size"]
    if step != 1 or not size or size == cfg["input_size"]:
        return cfg
    return {**cfg, "input_size": int(size)}


def _load_optimizer(
    optimizer: torch.optim.Optimizer, state: dict[str, Any], path: Path
) -> None:
    """The saved optimizer state, or a one-line CheckpointError when the config now
    groups the parameters differently (train.lr_scale or train.freeze changed)."""
    try:
        optimizer.load_state_dict(state)
    except ValueError as err:
        raise CheckpointError(
            f"{path}: its optimizer state does not fit this config's parameter groups "
            "(train.lr_scale or train.freeze changed?); set them back or train into a "
            "new --out with train.init"
        ) from err


def _save(
    path: Path,
    runner: nn.Module,
    optimizer: torch.optim.Optimizer,
    cfg: dict[str, Any],
    iteration: int,
    step: int,
) -> None:
    """A resumable checkpoint: weights + config, with loss weights and optimizer
    state under meta["resume"] (dropped from the shipped final.pt)."""
    inner = _unwrap(runner)
    resume = {**_loss_state(inner.criterion), "optimizer": optimizer.state_dict()}
    meta = checkpoint_meta(cfg, iteration=iteration, step=step, resume=resume)
    save_checkpoint(path, inner.model, cfg, meta)


def _run_step(
    runner: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: Any,
    cfg: dict[str, Any],
    iteration: int,
    stop: int,
    step: int,
    out: Path,
    where: Dist,
    log: ScalarLog | None,
) -> tuple[int, dict[str, Any]]:
    """Iterations [iteration, stop) of one training step."""
    t = cfg["train"]
    accumulate = int(t["accumulate"])
    fmt = torch.channels_last if t["channels_last"] else torch.contiguous_format
    frozen_bn = should_freeze_bn(cfg)
    params = [p for p in runner.parameters() if p.requires_grad]
    bar = tqdm(
        total=stop - iteration,
        desc=f"step {step}",
        disable=not where.main,
        dynamic_ncols=True,
    )
    batches = iter(loader)
    tic, seen, logged, row = time.perf_counter(), 0, 0, {}
    sums: dict[str, float] = {}
    while iteration < stop:
        runner.train()
        if frozen_bn:
            freeze_batchnorm(runner)
        apply_freeze(_unwrap(runner).model, cfg)
        lr = lr_at(iteration, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        optimizer.zero_grad(set_to_none=True)
        values: dict[str, float] = {}
        for micro in range(accumulate):
            batch = next(batches)
            images = batch.pop("image").to(where.device).contiguous(memory_format=fmt)
            batch = {k: v.to(where.device) for k, v in batch.items()}
            defer = where.world > 1 and micro < accumulate - 1
            with runner.no_sync() if defer else contextlib.nullcontext():
                loss, terms = _split_loss(runner(images, batch))
                (loss / accumulate).backward()
            for k, v in {"loss": float(loss.detach()), **terms}.items():
                values[k] = values.get(k, 0.0) + v / accumulate
            seen += images.shape[0] * where.world
        if t["grad_clip"]:
            torch.nn.utils.clip_grad_norm_(params, float(t["grad_clip"]))
        optimizer.step()
        values = _mean_over_processes(values, where)
        if not math.isfinite(values["loss"]):
            raise FloatingPointError(
                f"loss is {values['loss']} at iteration {iteration}"
            )
        iteration += 1
        logged += 1
        bar.update(1)
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v
        if iteration % int(t["log_every"]) == 0 or iteration == stop:
            elapsed = time.perf_counter() - tic
            row = {
                "iteration": iteration,
                "step": step,
                "lr": lr,
                **{k: v / logged for k, v in sums.items()},
                "img_per_s": seen / max(elapsed, 1e-9),
                "unix_time": time.time(),
            }
            if log:
                log.add(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}", ips=f"{row['img_per_s']:.1f}")
            tic, seen, logged, sums = time.perf_counter(), 0, 0, {}
        if where.main and (
            iteration % int(t["checkpoint_every"]) == 0 or iteration == stop
        ):
            _save(out / "last.pt", runner, optimizer, cfg, iteration, step)
    bar.close()
    return iteration, row


def _unwrap(runner: nn.Module) -> TrainStep:
    return (
        runner.module
        if isinstance(runner, nn.parallel.DistributedDataParallel)
        else runner
    )


def _mean_over_processes(values: dict[str, float], where: Dist) -> dict[str, float]:
    """Average logged scalars over DDP processes (what one process would log)."""
    if where.world == 1:
        return values
    keys = sorted(values)
    buf = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    dist.all_reduce(buf)
    return {k: float(v) / where.world for k, v in zip(keys, buf, strict=True)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trainers.train", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--config", required=True, help="YAML config (configs/*.yaml)")
    parser.add_argument(
        "--out", default=None, help="run folder (default runs/<config name>)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from <out>/last.pt if it exists"
    )
    parser.add_argument(
        "--stop-at",
        type=int,
        default=None,
        metavar="N",
        help="stop after iteration N with a checkpoint (--resume continues)",
    )
    args = parser.parse_args(argv)
    setup_logging()
    where = None
    try:
        cfg = load_config(args.config)
        out = Path(args.out or Path("runs") / Path(args.config).stem)
        where = setup_distributed()
        train(cfg, out, args.resume, where, args.stop_at)
    except (ConfigError, CheckpointError) as exc:
        logger.error("%s", exc)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        if where and where.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
