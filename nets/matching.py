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


def _project_rows(X: Tensor, mask: Tensor, count: Tensor) -> Tensor:
    """Exact Euclidean projection onto {each row sums to <= 1} within the masked pairs.

    The set is a product of half-spaces, one per row, so the projection moves only the
    rows that violate, each by its excess spread evenly over its `count` valid entries
    (the supplement's operator applied row by row rather than to the whole matrix).
    """
    excess = torch.relu((X * mask).sum(-1, keepdim=True) - 1.0)
    return X - excess / count * mask


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
    the result is the mean of the T iterates. Pairs outside the valid rows/columns are
    held at 0 and do not count in the row/column sums.
    """
    mask = _pair_mask(A, valid_rows, valid_cols)
    row_count = mask.sum(-1, keepdim=True).clamp(min=1.0)
    col_count = mask.sum(-2, keepdim=True).clamp(min=1.0)
    step = alpha * A * mask
    Y = torch.zeros_like(A)
    total = torch.zeros_like(A)
    for _ in range(steps):
        X = Y + step
        u1 = torch.zeros_like(A)
        u2 = torch.zeros_like(A)
        u3 = torch.zeros_like(A)
        for _ in range(inner_steps):
            X1 = _project_rows(X + u1, mask, row_count)
            u1 = X + u1 - X1
            Z = X1 + u2
            X2 = _project_rows(
                Z.transpose(-1, -2), mask.transpose(-1, -2), col_count.transpose(-1, -2)
            ).transpose(-1, -2)
            u2 = Z - X2
            X3 = torch.relu(X2 + u3)
            u3 = X2 + u3 - X3
            X = X3
        Y = X
        total = total + Y
    return total / steps


def round_greedy(
    Y: Tensor,
    A: Tensor,
    valid_rows: Tensor | None = None,
    valid_cols: Tensor | None = None,
    tie: float = 1e-3,
) -> Tensor:
    """Binary matching [..., K, K'] (bool) from a relaxed Y, with fixed-size tensors.

    min(K, K') rounds of: take the free pair with the largest Y (+ `tie` * A, so equal
    Y values fall to the higher score) among pairs with A > 0, then close its row and
    column. No data-dependent shapes: exportable and batched over leading dims.
    """
    mask = _pair_mask(A, valid_rows, valid_cols) * (A > 0).to(A.dtype)
    key = Y + tie * A
    neg = torch.finfo(A.dtype).min
    rows, cols = A.shape[-2], A.shape[-1]
    lead = A.shape[:-2]
    row_ids = torch.arange(rows, device=A.device).reshape(rows, 1)
    col_ids = torch.arange(cols, device=A.device).reshape(1, cols)
    free = mask > 0
    chosen = torch.zeros_like(free)
    for _ in range(min(rows, cols)):
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
    A: Tensor, valid_rows: Tensor | None = None, valid_cols: Tensor | None = None
) -> Tensor:
    """OpenPose's matcher: pairs in decreasing score, kept when both ends are free."""
    return round_greedy(A, A, valid_rows, valid_cols, tie=0.0)


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


def matching_weight(A: Tensor, M: Tensor) -> Tensor:
    """Total score of a binary matching, per [K, K'] slice."""
    return (A * M.to(A.dtype)).sum((-1, -2))
