"""Training data: a global sample index -> an augmented scene -> a batch of targets.

Seed ranges live here and nowhere else, so held-out scenes are never trained on:
synthetic training scene `i` uses seed `TRAIN_SEED_BASE + i` (>= 1_000_000); held-out
evaluation uses seeds below `EVAL_SEED_LIMIT` (< 1_000_000).

Every sample is a pure function of its index (scene seed, source choice and augmentation
all derive from it), and `BatchPlan` hands out indices by iteration, so a resumed run
sees exactly the batches an uninterrupted run would have seen, and two DDP processes see
the same samples one process sees with gradient accumulation.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Dataset, Sampler

from configs import ConfigError
from configs.records import Scene
from trainers.augment import augment
from trainers.datasets import open_dataset
from trainers.datasets.common import map_parts
from trainers.synth import generate_scene
from trainers.targets import encode_batch

TRAIN_SEED_BASE = 1_000_000
EVAL_SEED_LIMIT = 1_000_000


def train_seed(index: int) -> int:
    """Synthetic scene seed of training sample `index`."""
    return TRAIN_SEED_BASE + int(index)


def heldout_seeds(count: int, start: int = 0) -> range:
    """Seeds of `count` held-out evaluation scenes; never overlaps training seeds."""
    if start < 0 or start + count > EVAL_SEED_LIMIT:
        raise ConfigError(
            f"held-out seeds must lie in [0, {EVAL_SEED_LIMIT}): "
            f"got {start}..{start + count}"
        )
    return range(start, start + count)


def synthetic_scene(seed: int, cfg: dict[str, Any]) -> Scene:
    """One synthetic scene at the network input size with the configured crowd."""
    data = cfg["data"]
    return generate_scene(
        seed, cfg["input_size"], tuple(data["people"]), **data["synth"]
    )


def to_taxonomy(scene: Scene, name: str) -> Scene:
    """The scene with its part ids mapped into taxonomy `name` (255 stays ignore)."""
    if scene.taxonomy == name:
        return scene
    parts = map_parts(scene.parts, scene.taxonomy, name)
    return Scene(
        scene.image,
        parts,
        scene.instances,
        scene.keypoints,
        scene.track_ids,
        name,
        scene.ignore,
    )


class TrainScenes(Dataset):
    """Index -> augmented training scene: synthetic (on the fly or from a pool) or real.

    Real data sets (`data.real`: specs opened by `trainers.datasets.open_dataset`) are
    mixed with synthetic scenes by weight; the choice and the augmentation draw from a
    generator seeded by (train.seed, index).
    """

    def __init__(self, cfg: dict[str, Any], pool: Sequence[Scene] | None = None):
        self.cfg = cfg
        self.pool = pool
        self.taxonomy = cfg["model"]["taxonomy"]
        real = cfg["data"].get("real") or []
        self.real = [open_dataset(item["spec"]) for item in real]
        weights = [cfg["data"]["synthetic_weight"] if cfg["data"]["synthetic"] else 0.0]
        weights += [float(item.get("weight", 1.0)) for item in real]
        total = sum(weights)
        if total <= 0:
            raise ConfigError("data: no source has a positive weight")
        self.cumulative = np.cumsum(weights) / total

    def __len__(self) -> int:
        return 2**31 - 1 - TRAIN_SEED_BASE

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.cfg["train"]["seed"], int(index)])

    def source(self, index: int) -> int:
        """0 for a synthetic sample, k for the k-th entry of `data.real`."""
        return int(np.searchsorted(self.cumulative, self._rng(index).random(), "right"))

    def __getitem__(self, index: int) -> Scene:
        rng = self._rng(index)
        source = int(np.searchsorted(self.cumulative, rng.random(), side="right"))
        if source == 0:
            scene = (
                self.pool[index % len(self.pool)]
                if self.pool
                else synthetic_scene(train_seed(index), self.cfg)
            )
        else:
            data = self.real[source - 1]
            scene = data[int(rng.integers(len(data)))]
        return augment(to_taxonomy(scene, self.taxonomy), rng, self.cfg)


class BatchPlan(Sampler[list[int]]):
    """Index lists of this process's micro-batches for iterations [start, stop).

    Iteration `it` owns global samples [it * B, (it + 1) * B), split in
    `world * accumulate` equal chunks; micro-batch m of rank r gets chunk
    m * world + r. So (world=2, accumulate=1) and (world=1, accumulate=2) see the same
    samples in the same groups.
    """

    def __init__(
        self,
        batch_size: int,
        start: int,
        stop: int,
        rank: int = 0,
        world: int = 1,
        accumulate: int = 1,
    ):
        chunks = world * accumulate
        if batch_size % chunks:
            raise ConfigError(
                f"train.batch_size {batch_size} is not divisible by processes x "
                f"accumulate = {chunks}"
            )
        self.batch, self.micro = batch_size, batch_size // chunks
        self.start, self.stop = start, stop
        self.rank, self.world, self.accumulate = rank, world, accumulate

    def __len__(self) -> int:
        return max(0, self.stop - self.start) * self.accumulate

    def __iter__(self) -> Iterator[list[int]]:
        for it in range(self.start, self.stop):
            for m in range(self.accumulate):
                first = it * self.batch + (m * self.world + self.rank) * self.micro
                yield list(range(first, first + self.micro))


def build_pool(cfg: dict[str, Any], size: int, processes: int = 2) -> list[Scene]:
    """Pre-generate training scenes 0..size-1 (seeds as in `train_seed`) in parallel."""
    seeds = [train_seed(i) for i in range(size)]
    if processes <= 1 or size < 64:  # starting workers costs more than a few scenes
        return [synthetic_scene(s, cfg) for s in seeds]
    with multiprocessing.get_context("spawn").Pool(processes) as workers:
        return workers.map(partial(synthetic_scene, cfg=cfg), seeds, chunksize=16)


def make_loader(
    cfg: dict[str, Any],
    start: int,
    stop: int,
    rank: int = 0,
    world: int = 1,
    pool: Sequence[Scene] | None = None,
) -> DataLoader:
    """Loader over iterations [start, stop) of this process; yields micro-batches."""
    train = cfg["train"]
    plan = BatchPlan(train["batch_size"], start, stop, rank, world, train["accumulate"])
    workers = int(train["num_workers"])
    return DataLoader(
        TrainScenes(cfg, pool),
        batch_sampler=plan,
        num_workers=workers,
        collate_fn=partial(encode_batch, cfg=cfg),
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
        multiprocessing_context="fork" if workers else None,
    )
