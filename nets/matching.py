"""Per-limb maximum-weight bipartite matching: the paper's differentiable PGD solver and
the exact and greedy references it is compared with.

`pgd_match` is Algorithm 1 of the supplement (projected gradient descent on Tr(-A Y^T)
with Dykstra's cyclic projection onto {row sums <= 1}, {column sums <= 1}, {Y >= 0},
averaged iterates). Its loops are plain Python over fixed T and N, so autograd
differentiates it and ONNX export unrolls it. `round_greedy` turns the relaxed Y into a
binary matching with fixed-size tensors (in the exported graph); `hungarian_match` is
the exact optimum (scipy, eager only); `greedy_match` is OpenPose's heuristic.

Padding: score matrices are [..., K, K] with K = `decode.top_k`; candidates that do not
exist are marked by `valid_rows` / `valid_cols` and are never matched. A pair with score
<= 0 is never part of a returned matching (it adds no weight).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

Tensor = torch.Tensor


def _pair_mask(
    A: Tensor, valid_rows: Tensor | None, valid_cols: Tensor | None
) -> Tensor:
    """[..., K, K'] float mask of pairs whose both candidates exist."""
    mask = torch.ones_like(A)
    if valid_rows is not None:
        mask = mask * valid_rows.to(A.dtype).unsqueeze(-1)
    if valid_cols is not None:
        mask = mask * valid_cols.to(A.dtype).unsqueeze(-2)
    return mask


def _excess(X: Tensor, spread: Tensor, dim: int) -> Tensor:
    """What the exact Euclidean projection onto {sums along `dim` <= 1} subtracts.

    The set is a product of half-spaces, one per row (dim=-1) or column (dim=-2), so
    the projection moves only the lines that violate, each by its own excess spread
    evenly over its active entries (`spread` = pair mask / active count per line).
    The supplement's operator subtracts the mean excess from the whole matrix once any
    line violates, which also moves lines that satisfy the constraint; per line it is
    the same formula and exact. X is zero outside the active pairs, so plain sums are
    sums over them. The projection is X - excess, and excess is also Dykstra's
    correction for that set.
    """
    return torch.relu(X.sum(dim, keepdim=True) - 1.0) * spread


def pgd_match(
    A: Tensor,
    steps: int = 50,
    inner_steps: int = 5,
    alpha: float = 0.01,
    valid_rows: Tensor | None = None,
    valid_cols: Tensor | None = None,
) -> Tensor:
    """Relaxed assignment Y (same shape as A, [..., K, K']) maximising sum(A * Y).

    Algorithm 1: T = `steps` gradient steps Y + alpha * A (the gradient of Tr(-A Y^T)
    is -A), each followed by `inner_steps` rounds of Dykstra's cyclic projection onto
    C1 (rows), C2 (columns), C3 (Y >= 0) with the correction terms reset every step;
    the result is the mean of the T iterates. Only pairs of valid candidates with
    A > 0 are variables (the others are 0 at an optimum anyway): they are held at 0 and
    do not count in the row and column sums, which also keeps padding from slowing
    the projections down.
    """
    mask = _pair_mask(A, valid_rows, valid_cols) * (A > 0).to(A.dtype)
    spread_rows = mask / mask.sum(-1, keepdim=True).clamp(min=1.0)
    spread_cols = mask / mask.sum(-2, keepdim=True).clamp(min=1.0)
    step = alpha * A * mask
    Y = torch.zeros_like(A)
    total = torch.zeros_like(A)
    for _ in range(steps):
        X = Y + step
        u1 = torch.zeros_like(A)
        u2 = torch.zeros_like(A)
        u3 = torch.zeros_like(A)
        for _ in range(inner_steps):
            Z = X + u1  # C1, rows
            u1 = _excess(Z, spread_rows, -1)
            Z = Z - u1 + u2  # C2, columns
            u2 = _excess(Z, spread_cols, -2)
            Z = Z - u2 + u3  # C3, Y >= 0
            X = torch.relu(Z)
            u3 = Z - X
        Y = X
        total = total + Y
    return total / steps


def round_greedy(
    Y: Tensor,
    A: Tensor,
    valid_rows: Tensor | None = None,
    valid_cols: Tensor | None = None,
    tie: float = 1e-3,
    rounds: int | None = None,
) -> Tensor:
    """Binary matching [..., K, K'] (bool) from a relaxed Y, with fixed-size tensors.

    min(K, K') rounds (or `rounds`, when fewer pairs can be wanted) of: take the free
    pair with the largest Y (+ `tie` * A, so equal Y values fall to the higher score)
    among pairs with A > 0, then close its row and column. No data-dependent shapes:
    exportable and batched over leading dims.
    """
    mask = _pair_mask(A, valid_rows, valid_cols) * (A > 0).to(A.dtype)
    key = Y + tie * A
    neg = torch.finfo(A.dtype).min
    rows, cols = int(A.shape[-2]), int(A.shape[-1])
    lead = A.shape[:-2]
    row_ids = torch.arange(rows, device=A.device).reshape(rows, 1)
    col_ids = torch.arange(cols, device=A.device).reshape(1, cols)
    free = mask > 0
    chosen = torch.zeros_like(free)
    for _ in range(min(rows, cols, rounds or rows)):
        masked = torch.where(free, key, torch.full_like(key, neg))
        flat = masked.reshape(*lead, rows * cols)
        best, index = flat.max(-1)
        ok = (best > neg).reshape(*lead, 1, 1)
        r = (index // cols).reshape(*lead, 1, 1)
        c = (index % cols).reshape(*lead, 1, 1)
        hit_r = row_ids == r
        hit_c = col_ids == c
        chosen = chosen | (hit_r & hit_c & ok)
        free = free & ~((hit_r | hit_c) & ok)
    return chosen


def greedy_match(
    A: Tensor,
    valid_rows: Tensor | None = None,
    valid_cols: Tensor | None = None,
    rounds: int | None = None,
) -> Tensor:
    """OpenPose's matcher: pairs in decreasing score, kept when both ends are free
    (at most `rounds` pairs when given)."""
    return round_greedy(A, A, valid_rows, valid_cols, tie=0.0, rounds=rounds)


def hungarian_match(
    A: Tensor, valid_rows: Tensor | None = None, valid_cols: Tensor | None = None
) -> Tensor:
    """Exact maximum-weight matching per [K, K'] slice (scipy; eager, no autograd)."""
    mask = _pair_mask(A, valid_rows, valid_cols) * (A > 0).to(A.dtype)
    W = (A * mask).detach().cpu().double().numpy()
    flat = W.reshape(-1, *W.shape[-2:])
    out = np.zeros(flat.shape, bool)
    for i, w in enumerate(flat):
        r, c = linear_sum_assignment(w, maximize=True)
        out[i, r, c] = w[r, c] > 0
    return torch.from_numpy(out.reshape(W.shape)).to(A.device)


MATCHERS = ("pgd", "greedy", "hungarian")


def solve(
    A: Tensor,
    valid_rows: Tensor | None = None,
    valid_cols: Tensor | None = None,
    matcher: str = "pgd",
    steps: int = 50,
    inner_steps: int = 5,
    alpha: float = 0.01,
    swaps: int = 0,
) -> Tensor:
    """Binary matching [..., K, K'] by the chosen matcher: what the decode runs.

    "pgd": `round_greedy(pgd_match(...))`, then `swaps` rounds of `improve_swaps`
    (in-graph); "greedy": OpenPose's (in-graph); "hungarian": exact (eager only).
    """
    if matcher == "pgd":
        Y = pgd_match(A, steps, inner_steps, alpha, valid_rows, valid_cols)
        M = round_greedy(Y, A, valid_rows, valid_cols)
        return improve_swaps(M, A, valid_rows, valid_cols, swaps) if swaps else M
    if matcher == "greedy":
        return greedy_match(A, valid_rows, valid_cols)
    if matcher == "hungarian":
        return hungarian_match(A, valid_rows, valid_cols)
    raise ValueError(f"unknown matcher '{matcher}' (known: {', '.join(MATCHERS)})")


def matching_weight(A: Tensor, M: Tensor) -> Tensor:
    """Total score of a binary matching, per [K, K'] slice."""
    return (A * M.to(A.dtype)).sum((-1, -2))


def improve_swaps(
    M: Tensor,
    A: Tensor,
    valid_rows: Tensor | None = None,
    valid_cols: Tensor | None = None,
    rounds: int = 10,
) -> Tensor:
    """Polish a binary matching by exchanges of partners, fixed `rounds` times (3-opt).

    The [..., K, K] matching is completed to a permutation p (free rows paired with
    free columns in order; those pairs score 0 or more, so nothing is lost). Each round
    applies the single best move with positive gain among the rotations of three rows'
    partners, i <- p(j), j <- p(k), k <- p(i), which include the pairwise exchanges
    (j = k): gain = w[i,p(j)] + w[j,p(k)] + w[k,p(i)] minus their current three.
    A move through a free row or column is a re-assignment or a short augmenting path.
    Pairs scoring <= 0 are dropped at the end.
    """
    mask = _pair_mask(A, valid_rows, valid_cols) * (A > 0).to(A.dtype)
    W = A * mask
    n = int(A.shape[-1])
    lead = A.shape[:-2]
    P = M.to(A.dtype)
    # Complete: the r-th free row takes the r-th free column.
    free_r = 1.0 - P.sum(-1)  # [..., K]
    free_c = 1.0 - P.sum(-2)
    rank_r = free_r.cumsum(-1) * free_r
    rank_c = free_c.cumsum(-1) * free_c
    P = P + (
        (rank_r.unsqueeze(-1) == rank_c.unsqueeze(-2)) & (rank_r.unsqueeze(-1) > 0)
    ).to(A.dtype)
    ids = torch.arange(n, device=A.device)
    eye = torch.eye(n, dtype=A.dtype, device=A.device)
    # k == i != j would be written as "swap i, j then swap them back": left out (the
    # same exchange is the move with j == k).
    allowed = ~(
        (ids.view(n, 1, 1) == ids.view(1, 1, n))
        & (ids.view(n, 1, 1) != ids.view(1, n, 1))
    )
    for _ in range(rounds):
        B = W @ P.transpose(-1, -2)  # B[i, j] = w[i, p(j)]
        d = torch.diagonal(B, dim1=-2, dim2=-1)
        gain = (
            B.unsqueeze(-1)  # [i, j, .]
            + B.unsqueeze(-3)  # [., j, k]
            + B.transpose(-1, -2).unsqueeze(-2)  # [i, ., k] = B[k, i]
            - d.view(*lead, n, 1, 1)
            - d.view(*lead, 1, n, 1)
            - d.view(*lead, 1, 1, n)
        )
        gain = torch.where(allowed, gain, torch.full_like(gain, -1.0))
        best, index = gain.reshape(*lead, n * n * n).max(-1)
        do = (best > 1e-7).to(A.dtype).reshape(*lead, 1, 1)
        i = (index // (n * n)).reshape(*lead, 1)
        j = ((index // n) % n).reshape(*lead, 1)
        k = (index % n).reshape(*lead, 1)
        rotated = _swap_rows(_swap_rows(P, i, j, ids, eye), j, k, ids, eye)
        P = do * rotated + (1.0 - do) * P
    return (P > 0.5) & (mask > 0)


def _swap_rows(P: Tensor, a: Tensor, b: Tensor, ids: Tensor, eye: Tensor) -> Tensor:
    """P with rows a and b exchanged (per leading index; a == b leaves P as is)."""
    diff = ((ids == a).to(P.dtype) - (ids == b).to(P.dtype)).unsqueeze(-1)
    return (eye - diff * diff.transpose(-1, -2)) @ P
