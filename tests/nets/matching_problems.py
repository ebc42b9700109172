"""Matching problem sets [count, K, K] with their row and column validity masks, for
the matcher's tests and bench/matching.py: structured (limb-score-like), uniform random,
and the decode's own score matrices on synthetic scenes.

bench/ imports this module (bench runs from a checkout); nothing here imports bench/.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from configs import load_config
from nets.decode import candidates, limb_pairs, limb_scores
from nets.hough import hough_vote

Problems = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def structured_problems(
    rng: np.random.Generator, k: int, count: int, margin: float = 0.0
) -> Problems:
    """Limb-score-like problems [count, k, k] with their validity masks.

    1..k valid candidates on each side; between half and all of the possible true
    pairs (people seen at both ends of the limb) score 0.4..1; 30% of the other pairs
    score 0.05..0.5 - margin (conflicts: neighbouring people, limbs crossing); up to
    two candidates are double detections of a true one (its row, perturbed by 0.05);
    scores under 0.05 are 0. With margin >= 0.1 every true pair outscores every
    conflict and the optimum is the set of true pairs.
    """
    A = np.zeros((count, k, k), np.float32)
    rows = np.zeros((count, k), bool)
    cols = np.zeros((count, k), bool)
    for i in range(count):
        m, n = rng.integers(1, k + 1, size=2)
        rows[i, :m], cols[i, :n] = True, True
        noise = rng.uniform(0.05, 0.5 - margin, (m, n))
        A[i, :m, :n] = noise * (rng.uniform(size=(m, n)) < 0.3)
        most = min(m, n)
        pairs = int(rng.integers(max(1, most // 2), most + 1))
        r, c = rng.permutation(m)[:pairs], rng.permutation(n)[:pairs]
        A[i, r, c] = rng.uniform(0.4 + margin, 1.0, pairs)
        spare = np.setdiff1d(np.arange(m), r)
        for _ in range(int(rng.integers(0, 3)) if margin == 0 else 0):
            if len(spare):
                dst, spare = spare[0], spare[1:]
                row = A[i, r[rng.integers(pairs)], :n] + rng.normal(0, 0.05, n)
                A[i, dst, :n] = np.clip(row, 0, 1)
    A[A < 0.05] = 0
    return torch.from_numpy(A), torch.from_numpy(rows), torch.from_numpy(cols)


def uniform_problems(rng: np.random.Generator, k: int, count: int) -> Problems:
    """Dense uniform [0, 1] scores with 1..k valid candidates on each side."""
    A = torch.from_numpy(rng.uniform(size=(count, k, k)).astype(np.float32))
    m = torch.from_numpy(rng.integers(1, k + 1, size=(count, 1)))
    n = torch.from_numpy(rng.integers(1, k + 1, size=(count, 1)))
    rows, cols = torch.arange(k) < m, torch.arange(k) < n
    return A * (rows.unsqueeze(-1) & cols.unsqueeze(-2)), rows, cols


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    taps = torch.exp(-0.5 * (torch.arange(-3.0, 4.0) / sigma) ** 2)
    taps = taps / taps.sum()
    c = x.shape[1]
    x = F.conv2d(x, taps.view(1, 1, 1, 7).repeat(c, 1, 1, 1), padding=(0, 3), groups=c)
    return F.conv2d(
        x, taps.view(1, 1, 7, 1).repeat(c, 1, 1, 1), padding=(3, 0), groups=c
    )


def decode_problems(count: int, seed: int = 0, noisy: bool = True) -> Problems:
    """The decode's own score matrices (K = decode.top_k) on synthetic scenes, from
    ground-truth maps made network-like when `noisy`: blurred, rescaled by 0.5..1 per
    channel, speckled, offsets jittered by 0.4 cells."""
    from trainers.synth import generate_scene
    from trainers.targets import encode

    cfg = load_config()
    d = cfg["decode"]
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in tqdm(range(count), desc="decode problems", leave=False):
        t = encode(generate_scene(seed * 100_000 + i, size=cfg["input_size"]), cfg)
        heat = torch.from_numpy(t["heatmap"])[None]
        off = torch.from_numpy(t["offsets"])[None]
        limbs = torch.from_numpy(t["limbs"])[None]
        if noisy:
            gain = torch.empty(1, 17, 1, 1).uniform_(0.5, 1.0, generator=gen)
            heat = (_blur(heat, 1.0) * gain).clamp(0, 1)
            off = off + 0.4 * torch.randn(off.shape, generator=gen)
            gain = torch.empty(1, len(limbs[0]), 1, 1).uniform_(0.5, 1, generator=gen)
            speckle = 0.25 * torch.rand(limbs.shape, generator=gen) ** 3
            limbs = (_blur(limbs, 1.0) * gain + speckle).clamp(0, 1)
        radius = cfg["targets"]["disk_radius"] / cfg["output_stride"]
        cand = candidates(
            hough_vote(heat, off, radius),
            off,
            d["top_k"],
            d["candidate_threshold"],
            cfg["output_stride"],
            heat,
            d["dedup_radius"],
        )
        A = limb_scores(
            limbs, cand, d["limb_samples"], cfg["output_stride"], d["limb_extend"]
        )
        A = torch.where(A > d["limb_threshold"], A, torch.zeros_like(A))  # noqa: SIM300
        pairs = limb_pairs()
        out.append((A[0], cand.valid[0, pairs[:, 0]], cand.valid[0, pairs[:, 1]]))
    A, rows, cols = (torch.cat([o[i] for o in out]) for i in range(3))
    busy = (A > 0).flatten(1).sum(1) > 1  # problems with a choice to make
    return A[busy], rows[busy], cols[busy]
