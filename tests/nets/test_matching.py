"""Matching: Algorithm 1's feasibility and gradients, rounding, and agreement with the
Hungarian optimum on random and structured (permutation + noise) problems."""

import itertools

import numpy as np
import pytest
import torch

from configs import load_config
from nets.matching import (
    greedy_match,
    hungarian_match,
    improve_swaps,
    matching_weight,
    pgd_match,
    round_greedy,
    solve,
)
from tests.nets.matching_problems import structured_problems as structured
from tests.nets.matching_problems import uniform_problems as uniform


def is_matching(M: torch.Tensor, A: torch.Tensor, rows, cols) -> bool:
    inside = rows.unsqueeze(-1) & cols.unsqueeze(-2) & (A > 0)
    return bool(
        (M.sum(-1) <= 1).all() and (M.sum(-2) <= 1).all() and not (M & ~inside).any()
    )


def inference_settings() -> dict:
    return load_config()["decode"]["pgd"]


@pytest.mark.parametrize("k", [1, 4, 30])
@pytest.mark.parametrize("kind", ["structured", "uniform"])
def test_pgd_solution_is_feasible(k, kind):
    rng = np.random.default_rng(k)
    A, rows, cols = (structured if kind == "structured" else uniform)(rng, k, 16)
    Y = pgd_match(A.double(), 50, 5, 0.01, rows, cols)  # the paper's training setting
    assert (Y >= 0).all()
    assert (Y.sum(-1) <= 1 + 1e-6).all() and (Y.sum(-2) <= 1 + 1e-6).all()
    outside = ~(rows.unsqueeze(-1) & cols.unsqueeze(-2))
    assert (Y[outside] == 0).all()


def test_dykstra_projection_converges_to_the_feasible_set():
    """With many inner steps a large step is projected back onto the constraints."""
    A, rows, cols = uniform(np.random.default_rng(0), 8, 8)
    Y = pgd_match(A.double(), 3, 400, 1.0, rows, cols)
    assert (Y.sum(-1) <= 1 + 1e-3).all() and (Y.sum(-2) <= 1 + 1e-3).all()


def test_pgd_gradcheck():
    torch.manual_seed(0)
    A = (torch.rand(2, 3, 3, dtype=torch.float64) * 0.9 + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(lambda a: pgd_match(a, 6, 3, 0.3), (A,))


def test_pgd_gradcheck_with_padding():
    torch.manual_seed(1)
    A = (torch.rand(1, 4, 3, dtype=torch.float64) * 0.9 + 0.1).requires_grad_()
    rows = torch.tensor([[True, True, True, False]])
    cols = torch.tensor([[True, True, False]])
    assert torch.autograd.gradcheck(lambda a: pgd_match(a, 5, 3, 0.5, rows, cols), (A,))


def brute_force(A: np.ndarray) -> float:
    """Best matching weight by enumerating the injections of rows into columns."""
    k = A.shape[0]
    best = 0.0
    for cols in itertools.permutations(range(k)):
        best = max(best, float(sum(max(A[r, c], 0) for r, c in enumerate(cols))))
    return best


def test_hungarian_is_exact():
    rng = np.random.default_rng(3)
    A, rows, cols = structured(rng, 5, 20)
    H = hungarian_match(A, rows, cols)
    assert is_matching(H, A, rows, cols)
    for a, w in zip(A.numpy(), matching_weight(A.double(), H), strict=True):
        assert w.item() == pytest.approx(brute_force(a.astype(np.float64)), abs=1e-9)


def openpose_greedy(a: np.ndarray) -> set:
    """Reference: pairs by decreasing score, kept when both ends are free."""
    taken_r, taken_c, out = set(), set(), set()
    for flat in np.argsort(-a, axis=None, kind="stable"):
        r, c = divmod(int(flat), a.shape[1])
        if a[r, c] > 0 and r not in taken_r and c not in taken_c:
            out.add((r, c))
            taken_r.add(r)
            taken_c.add(c)
    return out


def test_greedy_matches_openpose_reference():
    A, rows, cols = uniform(np.random.default_rng(4), 12, 10)
    G = greedy_match(A, rows, cols)
    for a, g in zip(A.numpy(), G, strict=True):
        assert {tuple(p) for p in g.nonzero().tolist()} == openpose_greedy(a)
    # Capped at 3 rounds: the first 3 pairs OpenPose's order takes, and no others.
    for a, g, c in zip(A.numpy(), G, greedy_match(A, rows, cols, 3), strict=True):
        taken = sorted(g.nonzero().tolist(), key=lambda rc: -a[rc[0], rc[1]])
        assert sorted(c.nonzero().tolist()) == sorted(taken[:3])


def test_round_greedy_returns_a_matching_on_valid_positive_pairs():
    A, rows, cols = structured(np.random.default_rng(5), 9, 32)
    Y = torch.rand(A.shape, generator=torch.Generator().manual_seed(0))
    M = round_greedy(Y, A, rows, cols)
    assert is_matching(M, A, rows, cols)
    # Maximal: no valid positive pair with both ends free is left out.
    free = ~M.any(-1, keepdim=True) & ~M.any(-2, keepdim=True)
    assert not (free & (A > 0) & rows.unsqueeze(-1) & cols.unsqueeze(-2)).any()


def test_improve_swaps_never_loses_weight():
    A, rows, cols = uniform(np.random.default_rng(6), 10, 64)
    G = greedy_match(A, rows, cols)
    S = improve_swaps(G, A, rows, cols, 5)
    assert is_matching(S, A, rows, cols)
    assert (matching_weight(A, S) >= matching_weight(A, G) - 1e-6).all()


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 13, 20, 30])
def test_inference_reaches_hungarian_optimum_on_separated_problems(k):
    """True pairs outscore every conflict (only leftover candidates compete)."""
    A, rows, cols = structured(np.random.default_rng(100 + k), k, 40, margin=0.1)
    M = solve(A, rows, cols, "pgd", **inference_settings())
    assert is_matching(M, A, rows, cols)
    best = matching_weight(A.double(), hungarian_match(A, rows, cols))
    got = matching_weight(A.double(), M)
    assert (got >= best - 1e-5).double().mean() >= (1.0 if k <= 13 else 0.95)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 13, 20, 30])
def test_inference_agreement_on_structured_and_random_problems(k):
    """Harder problems (conflicts scoring like true pairs, double detections, dense
    random scores): the in-graph path reaches the optimum at least as often as
    OpenPose's greedy, mostly (docs/MATCHING.md), and is never far from it."""
    rng = np.random.default_rng(200 + k)
    for make, floor in ((structured, 0.85), (uniform, 0.5)):
        A, rows, cols = make(rng, k, 40)
        best = matching_weight(A.double(), hungarian_match(A, rows, cols))
        got = matching_weight(
            A.double(), solve(A, rows, cols, "pgd", **inference_settings())
        )
        greedy = matching_weight(A.double(), greedy_match(A, rows, cols))
        reached = (got >= best - 1e-5).float().mean().item()
        assert reached >= (greedy >= best - 1e-5).float().mean().item()
        assert reached >= (1.0 if k <= 3 else floor)
        assert (got >= 0.95 * best - 1e-6).all()


def test_inference_reaches_optimum_on_decode_score_matrices():
    """The decode's own limb-score matrices from network-like (degraded) maps."""
    from tests.nets.matching_problems import decode_problems

    A, rows, cols = decode_problems(6, seed=11)
    best = matching_weight(A.double(), hungarian_match(A, rows, cols))
    got = matching_weight(
        A.double(), solve(A, rows, cols, "pgd", **inference_settings())
    )
    greedy = matching_weight(A.double(), greedy_match(A, rows, cols))
    reached = (got >= best - 1e-5).double().mean()
    assert len(A) > 30
    assert reached >= 0.98
    assert reached >= (greedy >= best - 1e-5).double().mean()
