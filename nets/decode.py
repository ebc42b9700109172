"""Fixed-size decode: activated maps -> people, keypoints, instance and part maps.

Everything runs on tensors whose shapes depend only on the config (K = `decode.top_k`
candidates per keypoint type, P = `decode.max_people` person slots), with no Python
branching on values, so the decode is part of the exported graph and costs the same for
one person as for thirty (docs/ARCHITECTURE.md, "Decode" and "Decode input").

This is the "graph" engine; `nets.native` is the "native" one (numba, outside the
graph, exact matching, maps on the cell grid). `decode.engine` chooses between them
(`decode_engine`).

Steps: Hough-map peaks -> candidates (`candidates`); limb maps sampled along every
candidate pair -> score matrices (`limb_scores`); one-partner-per-limb matching
(`nets.matching`); candidates joined into people over the tree limbs, then pieces
of a person missing a tree joint re-joined over the redundant limbs (`assemble`); the
P best people (`select_people`), less those duplicating a better one
(`drop_duplicates`); part probabilities upsampled bilinearly to the input
resolution (`upsample_parts`); each foreground cell given to a person by the paper's
Eq. 17 (`assign_pixels`) and its pixels labelled with that person; then, with
`decode.complete_joints`, each person's absent joints guessed from the Hough maps
around it, scored at most `KP_MIN_SCORE` (`complete_joints`). Part and instance
maps come out at the network input's resolution.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from configs import body
from configs.records import Prediction
from nets.hough import disk_radius_cells
from nets.matching import greedy_match, hungarian_match, improve_swaps, solve
from nets.similarity import FAR, KP_MIN_SCORE, duplicates

Tensor = torch.Tensor
# Joining pieces of people over a redundant limb: few pieces are open at once, so a
# short greedy and one polish round do (decode oracle unchanged, MATCHING.md).
JOIN_ROUNDS = 8  # joins per redundant limb and image, at most
JOIN_SWAPS = 1  # polish rounds
# Cutting stretched limbs (`prune_stretched`): a person's scale needs this many limbs,
# and is re-measured on the piece kept this many times.
MIN_SCALE_LIMBS = 3
PRUNE_ROUNDS = 3
# Limb scores x (1 + this x the two candidates' scores): equal pairs go to the
# stronger candidates, in both engines alike (`limb_scores`).
TIE_BREAK = 1e-3


ENGINES = ("native", "graph")
ENGINE_CHOICES = ("auto", *ENGINES)


def decode_engine(cfg: dict[str, Any], device: str = "cpu") -> str:
    """The engine `decode.engine` asks for on `device` (cpu | cuda): native or graph.

    auto: native on the CPU (the fused decode is thousands of tiny graph nodes there,
    docs/MATCHING.md), graph on a GPU (TensorRT fuses it into a few kernels).
    """
    engine = cfg["decode"].get("engine", "auto")
    if engine not in ENGINE_CHOICES:
        raise ValueError(
            f"unknown decode.engine '{engine}' (known: {', '.join(ENGINE_CHOICES)})"
        )
    if engine == "auto":
        return "graph" if device == "cuda" else "native"
    return engine


class Candidates(NamedTuple):
    """Top-K keypoint candidates per type: xy [B, J, K, 2] input px, score and valid
    [B, J, K] (score 0 where invalid)."""

    xy: Tensor
    score: Tensor
    valid: Tensor


def top_k(x: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The k largest along the last dim, equal values in index order (lowest first).

    Exported, `topk` becomes ONNX TopK, whose specification breaks ties by the lower
    index (compiled, e.g. for TensorRT, `topk` too: its sort kernels cap k); eager
    `topk` leaves their order to the sort it uses, so there a stable sort gives the
    same order. The engines then keep the same one of two equal-score candidates (the
    oracle maps have exact ties) and find the same people.
    """
    if torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling():
        return x.topk(k, dim=-1)
    values, index = x.sort(dim=-1, descending=True, stable=True)
    return values[..., :k], index[..., :k]


def vote_mass(hough: Tensor) -> Tensor:
    """[B, J, h, w] Hough votes in each cell's 3x3 window (zero padding): how much of
    a keypoint's disk voted there (a full disk sums to ~1)."""
    return F.avg_pool2d(hough, 3, 1, 1, count_include_pad=True) * 9.0


def cell_positions(
    index: Tensor, w: int, offsets: Tensor | None, dtype: torch.dtype
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(row, col, x, y) of flat cell indices [B, J, N] of maps w cells wide: x, y in
    cells, the cell centre moved by the offset of the index's type there (offsets
    [B, J, 2, h, w]; None: the centre)."""
    row = torch.div(index, w, rounding_mode="floor")
    col = index - row * w
    x = col.to(dtype) + 0.5
    y = row.to(dtype) + 0.5
    if offsets is not None:
        b, j = offsets.shape[:2]
        flat = offsets.reshape(b, j, 2, -1)
        x = x + flat[:, :, 0].gather(-1, index)
        y = y + flat[:, :, 1].gather(-1, index)
    return row, col, x, y


def refine_setting(cfg: dict[str, Any]) -> tuple[int, int, float]:
    """`candidates`' refine argument from a config: (decode.vote_refine iterations,
    the window that holds every cell whose disk reaches within the radius, the radius
    decode.vote_refine_radius in cells)."""
    stride = float(cfg["output_stride"])
    radius = float(cfg["decode"]["vote_refine_radius"]) / stride
    reach = disk_radius_cells(cfg) + radius
    return int(cfg["decode"]["vote_refine"]), math.ceil(reach), radius


def candidate_pool(cfg: dict[str, Any]) -> tuple[bool, float]:
    """(whether the completion follows the limbs, the threshold the candidates are
    taken at): decode.candidate_threshold, or decode.complete_threshold below it where
    the limb-guided completion draws its options from the same pool (`above` then
    gives the decode's candidates)."""
    d = cfg["decode"]
    guided = bool(d["complete_joints"] and d["complete_by_limbs"])
    threshold = float(d["candidate_threshold"])
    if guided:
        threshold = min(threshold, float(d["complete_threshold"]))
    return guided, threshold


def vote_centroid(
    x: Tensor,
    y: Tensor,
    heatmap: Tensor,
    offsets: Tensor,
    iterations: int,
    window: int,
    radius: float,
) -> tuple[Tensor, Tensor]:
    """Positions x, y [B, J, K] (cells) moved onto the votes around them: the
    heat-weighted mean of the points u + O(u) that the cells u of a (2 window + 1)^2
    window voted for within `radius` cells of the position, `iterations` times (a
    mean shift; kept where no vote lands near).

    One cell's offset is one noisy estimate of the joint; its disk casts ~pi R^2 of
    them, and their mean near the peak is a steadier one (docs/MATCHING.md).
    """
    b, j, h, w = heatmap.shape
    span = torch.arange(-window, window + 1, device=heatmap.device)
    dy, dx = (v.reshape(-1) for v in torch.meshgrid(span, span, indexing="ij"))
    heat = heatmap.reshape(b, j, h * w)
    ox, oy = offsets[:, :, 0].reshape(b, j, h * w), offsets[:, :, 1].reshape(b, j, -1)
    for _ in range(iterations):
        cx = x.floor().long().unsqueeze(-1) + dx  # B, J, K, N
        cy = y.floor().long().unsqueeze(-1) + dy
        inside = (cx >= 0) & (cx < w) & (cy >= 0) & (cy < h)
        cx, cy = cx.clamp(0, w - 1), cy.clamp(0, h - 1)
        flat = (cy * w + cx).reshape(b, j, -1)
        tx, ty, weight = (m.gather(-1, flat).reshape(cx.shape) for m in (ox, oy, heat))
        tx = tx + cx.to(x.dtype) + 0.5
        ty = ty + cy.to(y.dtype) + 0.5
        near = (tx - x.unsqueeze(-1)) ** 2 + (ty - y.unsqueeze(-1)) ** 2 < radius**2
        weight = weight * (near & inside).to(x.dtype)
        total = weight.sum(-1)
        found = total > 1e-6
        total = total.clamp(min=1e-6)
        x = torch.where(found, (weight * tx).sum(-1) / total, x)
        y = torch.where(found, (weight * ty).sum(-1) / total, y)
    return x, y


def candidates(
    hough: Tensor,
    offsets: Tensor | None,
    k: int,
    threshold: float,
    stride: int = 4,
    heatmap: Tensor | None = None,
    dedup: float = 2.0,
    refine: tuple[int, int, float] = (0, 0, 0.0),
) -> Candidates:
    """Keypoint candidates from the Hough maps [B, J, h, w], best K per type.

    A cell is a candidate when it equals its 3x3 max, or (given offsets and the disk
    heatmap) when it lies inside a disk (heatmap > 0.5) and its offset points inside
    the cell itself: two people's same keypoints a cell or two apart merge into one
    Hough peak but still each own the cell they fall in. The score is the vote mass in
    the 3x3 window (the bilinear splat spreads one keypoint's votes over up to 4 cells;
    a full disk sums to ~1), clamped to [0, 1]; the position is the cell centre moved
    by the offset there. Duplicates (one keypoint found twice: refined positions less
    than `dedup` px apart, or without offsets two peaks in one 3x3 window) keep the
    best-scored one. Then, given the heatmap and `refine` = (iterations, window,
    radius) with iterations > 0, each position moves onto its votes (`vote_centroid`;
    after the duplicates are found: two cells of one joint start apart and may settle
    apart).
    """
    b, j, h, w = hough.shape
    peak = hough >= F.max_pool2d(hough, 3, 1, 1)
    if offsets is not None and heatmap is not None:
        inside = (offsets.abs() <= 0.5).all(2) & (heatmap > 0.5)
        peak = peak | inside
    mass = vote_mass(hough)
    ranked = torch.where(peak, mass, torch.zeros_like(mass)).reshape(b, j, h * w)
    score, index = top_k(ranked, k)
    row, col, x, y = cell_positions(index, w, offsets, hough.dtype)
    if offsets is not None:
        dx, dy = x.unsqueeze(-1) - x.unsqueeze(-2), y.unsqueeze(-1) - y.unsqueeze(-2)
        near = (dx * dx + dy * dy) * stride**2 < dedup**2
    else:
        near = ((row.unsqueeze(-1) - row.unsqueeze(-2)).abs() <= 1) & (
            (col.unsqueeze(-1) - col.unsqueeze(-2)).abs() <= 1
        )
    earlier = torch.ones(k, k, dtype=torch.bool, device=hough.device).tril(-1)
    duplicate = (near & earlier).any(-1)
    valid = (score > threshold) & ~duplicate
    score = torch.where(valid, score.clamp(max=1.0), torch.zeros_like(score))
    if offsets is not None and heatmap is not None and refine[0] > 0:
        x, y = vote_centroid(x, y, heatmap, offsets, *refine)
    return Candidates(torch.stack([x, y], -1) * stride, score, valid)


def limb_pairs() -> Tensor:
    """[L, 2] keypoint types: the tree limbs, then the redundant ones (body.yaml)."""
    table = body()
    return torch.tensor(table["limbs"] + table["redundant_limbs"], dtype=torch.long)


def limb_profile(samples: int, extend: float) -> tuple[np.ndarray, ...]:
    """Where a limb is sampled and what a true limb looks like there, shared by both
    engines: t [S] from -`extend` to 1 + `extend` along the segment, the profile a
    true limb draws there, exp(-(2t - 1)^2 / 2), and 1 where t lies on the segment
    (float32)."""
    t = np.linspace(-extend, 1.0 + extend, samples).astype(np.float32)
    expect = np.exp(-0.5 * (2 * t - 1) ** 2).astype(np.float32)
    return t, expect, ((t >= 0) & (t <= 1)).astype(np.float32)


def sample_segments(
    planes: Tensor, start: Tensor, end: Tensor, t: Tensor, stride: int = 4
) -> Tensor:
    """[B, L, N, M, S] bilinear samples (zero off the map) at the points t [S] along
    each segment from start [B, L, N, 2] to end [B, L, M, 2] (input px; t 0 at the
    start, 1 at the end) of planes [B, C, h, w]: one plane a limb (C = L) or one for
    all (C = 1). Input px map to the normalised grid as x / (w * stride) * 2 - 1."""
    b, c, h, w = planes.shape
    n_limbs, n, m = start.shape[1], start.shape[2], end.shape[2]
    tt = t.view(1, 1, 1, 1, -1, 1)
    pts = start[:, :, :, None, None] * (1 - tt) + end[:, :, None, :, None] * tt
    scale = torch.tensor(
        [2.0 / (w * stride), 2.0 / (h * stride)],
        dtype=planes.dtype,
        device=planes.device,
    )
    sampled = F.grid_sample(
        planes.reshape(b * c, 1, h, w),
        (pts * scale - 1.0).reshape(b * c, n_limbs // c * n * m, len(t), 2),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    return sampled.reshape(b, n_limbs, n, m, len(t))


def segment_scores(
    limbs: Tensor,
    start: Tensor,
    end: Tensor,
    samples: int,
    stride: int = 4,
    extend: float = 0.25,
) -> Tensor:
    """[B, L, N, M] how much limb l's map [B, L, h, w] looks like a true limb from
    each start [B, L, N, 2] to each end [B, L, M, 2] (input px); `limb_scores`."""
    t, expect, inner = (
        torch.from_numpy(a).to(limbs.device, limbs.dtype)
        for a in limb_profile(samples, extend)
    )
    sampled = sample_segments(limbs, start, end, t, stride)
    on_segment = (sampled * inner).sum(-1) / inner.sum()
    fit = 1 - (sampled - expect).abs().mean(-1) / expect.mean()
    return on_segment * fit.clamp(min=0)


def limb_scores(
    limbs: Tensor,
    cand: Candidates,
    samples: int,
    stride: int = 4,
    extend: float = 0.25,
    foreground: Tensor | None = None,
    floor: float | None = None,
) -> Tensor:
    """Score matrices A [B, L, K, K] for candidate n of limb l's first type and m of its
    second; 0 for invalid pairs.

    The limb map is sampled (bilinear, grid_sample) at `samples` points from -`extend`
    to 1 + `extend` along the segment. The score is the mean over the segment itself
    times how well the whole profile fits the one a true limb draws, exp(-(2t - 1)^2/2)
    (the target ellipse's major sigma is half the limb length): fit = 1 - mean|Q - e| /
    mean(e), floored at 0. In crowds the limb map is the max over people, so a wrong
    pair running over other people's limbs can average as high as a true one; it rarely
    has a true limb's bell shape, peaking mid-way and fading past both ends. Input px
    map to the limb map's normalised grid as x / (w * stride) * 2 - 1. Scores are
    raised by TIE_BREAK x the two candidates' scores: two candidates that settled on one
    spot score alike along every limb, and the better one should win in both engines.
    Given `foreground` [B, h, w] (1 - the part head's background share) and `floor`,
    a pair whose segment leaves the person pixels (a foreground sample under `floor`)
    scores 0: a limb map sampled across a road between two groups of walkers can pass,
    the part head sees the road (`decode.limb_foreground`).
    """
    pairs = limb_pairs().to(limbs.device)
    score = segment_scores(
        limbs,
        cand.xy[:, pairs[:, 0]],
        cand.xy[:, pairs[:, 1]],
        samples,
        stride,
        extend,
    )
    valid = cand.valid[:, pairs[:, 0]].unsqueeze(-1) & cand.valid[
        :, pairs[:, 1]
    ].unsqueeze(-2)
    ends = cand.score[:, pairs[:, 0]].unsqueeze(-1) + cand.score[
        :, pairs[:, 1]
    ].unsqueeze(-2)
    score = score * (1 + TIE_BREAK * ends)
    if foreground is not None and floor is not None:
        t, _, inner = limb_profile(samples, extend)  # the samples on the segment
        on = torch.from_numpy(t[inner > 0]).to(score.device, score.dtype)
        start, end = cand.xy[:, pairs[:, 0]], cand.xy[:, pairs[:, 1]]
        least = sample_segments(foreground.unsqueeze(1), start, end, on, stride)
        score = torch.where(least.amin(-1) >= floor, score, torch.zeros_like(score))
    return torch.where(valid, score, torch.zeros_like(score))


def match_limbs(
    A: Tensor, cand: Candidates, matcher: str, cfg: dict[str, Any]
) -> tuple[Tensor, Tensor]:
    """Matchings [B, 16, K, K] of the tree limbs, and every limb's scores with pairs at
    or below `decode.limb_threshold` zeroed (never joined); `cfg` is the decode section.
    """
    kept = torch.where(A > cfg["limb_threshold"], A, torch.zeros_like(A))  # noqa: SIM300
    n_tree = len(body()["limbs"])
    pairs = limb_pairs()[:n_tree].to(A.device)
    rows, cols = cand.valid[:, pairs[:, 0]], cand.valid[:, pairs[:, 1]]
    tree = solve(kept[:, :n_tree], rows, cols, matcher, **cfg["pgd"])
    return tree, kept


def _min_over_partner(match: Tensor, labels: Tensor, dim: int, big: int) -> Tensor:
    """Smallest label among each candidate's matched partners (big when it has none);
    `dim` is the matching axis of the partners (-1: columns, -2: rows)."""
    other = labels.unsqueeze(-2) if dim == -1 else labels.unsqueeze(-1)
    return torch.where(match, other, torch.full_like(other, big)).amin(dim)


def assemble(
    tree_match: Tensor, scores: Tensor, cand: Candidates, matcher: str
) -> Tensor:
    """Person label of every candidate [B, J, K] (J * K = not a candidate).

    With one partner per limb, connected components over the 16 tree limbs hold at most
    one candidate per type, so they are people. Labels (the smallest node id, node =
    type * K + index) spread leaf-to-root in reverse head-to-foot order, then back down.
    A person missing a joint of the tree (an unlabelled ear splits off that side of the
    body) is left in pieces; `_join` puts them back over the redundant limbs.
    """
    b, j, k = cand.valid.shape
    big = j * k
    node = torch.arange(big, device=tree_match.device).view(1, j, k).expand(b, j, k)
    labels = list(torch.where(cand.valid, node, torch.full_like(node, big)).unbind(1))
    table = body()
    tree = table["limbs"]
    for li in reversed(range(len(tree))):
        a, c = tree[li]
        labels[a] = torch.minimum(
            labels[a], _min_over_partner(tree_match[:, li], labels[c], -1, big)
        )
    for li, (a, c) in enumerate(tree):
        labels[c] = torch.minimum(
            labels[c], _min_over_partner(tree_match[:, li], labels[a], -2, big)
        )
    flat = torch.stack(labels, 1).reshape(b, big)
    for offset, (a, c) in enumerate(table["redundant_limbs"]):
        flat = _join(flat, scores[:, len(tree) + offset], cand, a, c, matcher)
    return flat.reshape(b, j, k)


def _join(
    flat: Tensor, scores: Tensor, cand: Candidates, a: int, c: int, matcher: str
) -> Tensor:
    """Join pieces of people over one redundant limb (types a, c).

    Only pairs whose pieces share no keypoint type may join; those pairs are matched
    among themselves (so a whole person's limb never takes a piece's partner) with the
    Hungarian for matcher="hungarian", else greedy + `improve_swaps`. A piece that can
    join through its type a lacks type c, so joins pair pieces one-to-one and apply at
    once.
    """
    b, j, k = cand.valid.shape
    labels = flat.reshape(b, j, k)
    left, right = labels[:, a], labels[:, c]  # B, K

    def types(lab: Tensor) -> Tensor:  # B, K, J: which types the piece of lab has
        return (labels.unsqueeze(1) == lab.view(b, k, 1, 1)).any(-1)

    clash = (types(left).unsqueeze(2) & types(right).unsqueeze(1)).any(-1)  # B, K, K
    open_scores = torch.where(clash, torch.zeros_like(scores), scores)
    rows, cols = cand.valid[:, a], cand.valid[:, c]
    if matcher == "hungarian":
        accept = hungarian_match(open_scores, rows, cols)
    else:
        greedy = greedy_match(open_scores, rows, cols, JOIN_ROUNDS)
        accept = improve_swaps(greedy, open_scores, rows, cols, JOIN_SWAPS)
    lo = torch.minimum(left.unsqueeze(-1), right.unsqueeze(-2))
    hi = torch.maximum(left.unsqueeze(-1), right.unsqueeze(-2))
    zero = torch.zeros_like(lo)
    hi_n = torch.where(accept, hi, zero).sum(-1)  # at most one accepted pair per row
    lo_n = torch.where(accept, lo, zero).sum(-1)
    hit = (flat.unsqueeze(-1) == hi_n.unsqueeze(1)) & accept.any(-1).unsqueeze(1)
    moved = torch.where(
        hit, lo_n.unsqueeze(1).expand_as(hit), torch.zeros_like(hit, dtype=flat.dtype)
    )
    return torch.where(hit.any(-1), moved.sum(-1), flat)


def select_people(
    labels: Tensor,
    cand: Candidates,
    max_people: int,
    threshold: float,
    score_joints: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """The `max_people` best components as keypoints [B, P, J, 3], scores, validity.

    A person's score is its joints' score summed and divided by the number of joints
    it has (score > 0), but by at least `score_joints`: the mean joint score of a
    person seen whole or from the waist up, so a webcam close-up (head and shoulders,
    the rest outside the frame) scores as a person, while a stray piece of two or three
    peaks ranks far below a body. Slots scoring <= `threshold` are invalid and hold
    zeros. Slots come best first, equal scores in label order as in the native engine
    (`top_k`), so `drop_duplicates` keeps the same one of two equal people in both.
    """
    b, j, k = labels.shape
    n = j * k
    flat = labels.reshape(b, n)
    score = cand.score.reshape(b, n)
    ids = torch.arange(n, device=labels.device)
    member = (flat.unsqueeze(-1) == ids).to(score.dtype)  # B, node, label
    found = (member * (score > 0).to(score.dtype).unsqueeze(-1)).sum(1)
    total = (member * score.unsqueeze(-1)).sum(1) / found.clamp(min=score_joints)
    person_score, chosen = top_k(total, max_people)  # ties: lower label first
    valid = person_score > threshold
    own = (labels.unsqueeze(1) == chosen.view(b, max_people, 1, 1)) & valid.view(
        b, max_people, 1, 1
    )  # B, P, J, K
    weight = own.to(score.dtype)
    xy = (weight.unsqueeze(-1) * cand.xy.unsqueeze(1)).sum(3)
    kscore = (weight * cand.score.unsqueeze(1)).sum(3)
    keypoints = torch.cat([xy, kscore.unsqueeze(-1)], -1)
    person_score = torch.where(valid, person_score, torch.zeros_like(person_score))
    return keypoints, person_score, valid


def limb_lengths() -> Tensor:
    """[L] each limb's typical length (`limb_pairs` order; body.yaml `limb_lengths`)."""
    return torch.tensor(body()["limb_lengths"], dtype=torch.float32)


def prune_stretched(
    keypoints: Tensor,
    scores: Tensor,
    valid: Tensor,
    stretch: float | None,
    slack: float,
    score_joints: float,
    threshold: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """(keypoints, scores, valid) with each person cut back to its joints that hang
    together at its own scale.

    Limb scores are scale-free, so in a crowd a pair of joints two groups apart can
    score like a limb (the limb map is the max over people): one skeleton then spans
    both groups. A person's scale is the median, over the limbs (tree and redundant)
    with both joints found, of length / typical length (body.yaml); a limb longer than
    `stretch` x scale x typical + `slack` px is cut, and the person keeps the joints
    its best-scoring remaining piece joins (left whole with fewer than 3 such limbs).
    PRUNE_ROUNDS times, the scale re-measured on what is kept: a skeleton that joins
    two people has a median between theirs. The score is then recomputed as in
    `select_people`; a person left at or below `threshold` is invalid. None
    (`decode.limb_stretch: null`) keeps everyone whole.
    """
    if stretch is None:
        return keypoints, scores, valid
    for _ in range(PRUNE_ROUNDS):
        keep = best_piece(keypoints, stretch, slack)
        keypoints = keypoints * keep.unsqueeze(-1).to(keypoints.dtype)
    found = (keypoints[..., 2] > 0).sum(-1).to(scores.dtype)
    total = keypoints[..., 2].sum(-1) / found.clamp(min=score_joints)
    valid = valid & (total > threshold)
    zero = torch.zeros_like(scores)
    keypoints = torch.where(valid[..., None, None], keypoints, zero[..., None, None])
    return keypoints, torch.where(valid, total, zero), valid


def best_piece(keypoints: Tensor, stretch: float, slack: float) -> Tensor:
    """[B, P, J] the found joints of each person's best-scoring piece once its
    stretched limbs are cut (`prune_stretched`)."""
    pairs = limb_pairs().to(keypoints.device)
    typical = limb_lengths().to(keypoints.device, keypoints.dtype)
    found = keypoints[..., 2] > 0
    ends = keypoints[..., pairs[:, 0], :2] - keypoints[..., pairs[:, 1], :2]
    length = ends.norm(dim=-1)  # B, P, L
    measured = found[..., pairs[:, 0]] & found[..., pairs[:, 1]]
    count = measured.sum(-1, keepdim=True)
    ratio = torch.where(measured, length / typical, torch.full_like(length, FAR))
    scale = ratio.sort(-1).values.gather(-1, (count - 1).clamp(min=0) // 2)
    near = length <= stretch * scale * typical + slack
    kept = (measured & (near | (count < MIN_SCALE_LIMBS))).to(keypoints.dtype)
    n = found.shape[-1]
    ends_of = F.one_hot(pairs, n).to(keypoints.dtype)  # L, 2, J
    link = torch.einsum("...l,la,lb->...ab", kept, ends_of[:, 0], ends_of[:, 1])
    eye = torch.eye(n, dtype=link.dtype, device=link.device)
    link = link + link.transpose(-1, -2) + eye * found.unsqueeze(-1).to(link.dtype)
    for _ in range(math.ceil(math.log2(n))):  # reach over paths of up to n joints
        link = (link @ link).clamp(max=1.0)
    mass = (link * keypoints[..., 2].unsqueeze(-2)).sum(-1)  # each joint's piece's
    best = mass.argmax(-1, keepdim=True)  # the first of equal pieces, as the native
    piece = link.gather(-2, best.unsqueeze(-1).expand(*best.shape, n)).squeeze(-2)
    return (piece > 0) & found


def drop_duplicates(
    keypoints: Tensor, scores: Tensor, valid: Tensor, threshold: float | None
) -> tuple[Tensor, Tensor, Tensor]:
    """(keypoints, scores, valid) with the people that duplicate a better-ranked one
    (`nets.similarity.duplicates`: OKS above `threshold`) made invalid, zero slots.

    Runs between `select_people` and `assign_pixels` (the native engine's
    `_drop_duplicates` likewise), so a dropped duplicate's pixels go by Eq. 17 to the
    person it copied. None (`decode.person_nms: null`) keeps everyone.
    """
    if threshold is None:
        return keypoints, scores, valid
    keep = valid & ~duplicates(keypoints, valid, threshold)
    zero = torch.zeros_like(scores)
    keypoints = torch.where(keep[..., None, None], keypoints, zero[..., None, None])
    return keypoints, torch.where(keep, scores, zero), keep


def assign_pixels(
    keypoints: Tensor,
    person_valid: Tensor,
    foreground: Tensor,
    dspf: Tensor,
    stride: int,
    min_sigma: float,
    max_psi: float = float("inf"),
) -> Tensor:
    """Instance map [B, h, w] of the cells by the paper's Eq. 17 (0 background,
    slot + 1).

    A foreground cell u (`foreground` [B, h, w] bool) goes to argmin_h min_joints
    psi = ||u + D(u) - p|| / ((s_p + s_h) * sigma_h), with s_h the person's mean joint
    score and sigma_h the square root of its keypoint box area, at least `min_sigma` px
    so a person with one or two joints (zero-area box) still gets a finite scale. A
    cell whose smallest psi exceeds `max_psi` stays unassigned: Eq. 17 alone gives every
    person pixel to someone, so people the decode missed would become part of the
    nearest found one.
    """
    b, p, j, _ = keypoints.shape
    h, w = foreground.shape[-2:]
    dtype = keypoints.dtype
    # Coordinates relative to the map centre keep the expanded squares small in float32.
    cx, cy = w * stride / 2.0, h * stride / 2.0
    device = foreground.device
    cols = (torch.arange(w, dtype=dtype, device=device) + 0.5) * stride - cx
    rows = (torch.arange(h, dtype=dtype, device=device) + 0.5) * stride - cy
    tx = (cols.view(1, 1, w) + dspf[:, 0] * stride).reshape(b, h * w)
    ty = (rows.view(1, h, 1) + dspf[:, 1] * stride).reshape(b, h * w)
    present = (keypoints[..., 2] > 0) & person_valid.unsqueeze(-1)  # B, P, J
    s_joint = keypoints[..., 2]
    count = present.sum(-1).clamp(min=1).to(dtype)
    s_person = (s_joint * present).sum(-1) / count
    far = torch.full_like(s_joint, 1e9)
    x, y = keypoints[..., 0] - cx, keypoints[..., 1] - cy
    width = torch.where(present, x, -far).amax(-1) - torch.where(present, x, far).amin(
        -1
    )
    height = torch.where(present, y, -far).amax(-1) - torch.where(present, y, far).amin(
        -1
    )
    sigma = (width.clamp(min=0) * height.clamp(min=0)).sqrt().clamp(min=min_sigma)
    scale = (s_joint + s_person.unsqueeze(-1)) * sigma.unsqueeze(-1)  # B, P, J
    # psi^2 = c|t - p|^2 = c|t|^2 - 2c t.p + c|p|^2, c = 1 / scale^2: one matmul of
    # pixel features [|t|^2, tx, ty, 1] with joint ones (argmin psi = argmin psi^2).
    c = torch.where(present, scale.clamp(min=1e-3) ** -2, torch.zeros_like(scale))
    const = torch.where(present, c * (x * x + y * y), far)
    joint = torch.stack([c, -2 * c * x, -2 * c * y, const], -1).reshape(b, p * j, 4)
    pixel = torch.stack([tx * tx + ty * ty, tx, ty, torch.ones_like(tx)], -1)
    psi2 = (pixel @ joint.transpose(-1, -2)).reshape(b, h * w, p, j)
    nearest, best = psi2.amin(-1).min(-1)  # B, h * w
    keep = foreground.reshape(b, h * w) & person_valid.any(-1, keepdim=True)
    keep = keep & (nearest <= max_psi * max_psi)
    return torch.where(keep, best + 1, torch.zeros_like(best)).reshape(b, h, w)


class LimbGuide(NamedTuple):
    """What `complete_joints` needs to follow a person's limbs to an absent joint:
    the options (every Hough peak above decode.complete_threshold, placed and deduped
    as candidates), the limb maps with their sampling (`limb_scores`) and how many
    passes (decode.complete_passes: each pass also follows the limbs from the joints
    the passes before it guessed, e.g. knee, then ankle)."""

    options: Candidates
    limbs: Tensor
    samples: int
    extend: float
    passes: int = 1


def above(cand: Candidates, threshold: float) -> Candidates:
    """The candidates scoring above `threshold`: the same slots, the rest invalid
    (`candidates` at a lower threshold, then this, equals `candidates` at this one:
    duplicates and positions do not depend on the threshold)."""
    valid = cand.valid & (cand.score > threshold)
    return Candidates(cand.xy, torch.where(valid, cand.score, 0.0), valid)


def limb_guesses(
    keypoints: Tensor, box: tuple[Tensor, ...], guide: LimbGuide, stride: int
) -> tuple[Tensor, Tensor]:
    """Guesses [B, P, J, 3] for every person and type, and where one was found
    [B, P, J]: the option of the type inside the person's box (x_lo, x_hi, y_lo, y_hi
    [B, P], grown) with the best limb support x vote mass, where the support is the
    best `segment_scores` from any of the person's present joints that a limb joins
    to the type. A person's joints found by the matching already chose among the
    options by limbs; an absent one is where the limb maps say the body continues,
    not where the box holds the strongest vote (often another person's joint)."""
    opts = guide.options
    b, p, j, _ = keypoints.shape
    pairs = limb_pairs().to(keypoints.device)
    present = keypoints[..., 2] > 0
    at = keypoints[..., :2].transpose(1, 2)  # B, J, P, 2
    args = (guide.samples, stride, guide.extend)
    forward = segment_scores(
        guide.limbs, at[:, pairs[:, 0]], opts.xy[:, pairs[:, 1]], *args
    )  # B, L, P, K: from the person's first end to the second type's options
    backward = segment_scores(
        guide.limbs, opts.xy[:, pairs[:, 0]], at[:, pairs[:, 1]], *args
    ).transpose(2, 3)
    onto = F.one_hot(pairs, j).to(keypoints.dtype)  # L, 2, J: the ends' types
    reach = torch.cat(
        [
            forward * present[:, :, pairs[:, 0]].transpose(1, 2).unsqueeze(-1),
            backward * present[:, :, pairs[:, 1]].transpose(1, 2).unsqueeze(-1),
        ],
        1,
    )  # B, 2L, P, K: support for the type at the limb's other end
    types = torch.cat([onto[:, 1], onto[:, 0]], 0)  # 2L, J
    support = (reach.unsqueeze(2) * types[None, :, :, None, None]).amax(1)
    x, y = opts.xy[..., 0].unsqueeze(2), opts.xy[..., 1].unsqueeze(2)  # B, J, 1, K
    x_lo, x_hi, y_lo, y_hi = (v[:, None, :, None] for v in box)  # B, 1, P, 1
    inside = (
        (x >= x_lo) & (x <= x_hi) & (y >= y_lo) & (y <= y_hi) & opts.valid[:, :, None]
    )
    value = support * opts.score[:, :, None] * inside  # B, J, P, K
    best, index = value.max(-1)
    xy = opts.xy.gather(2, index.unsqueeze(-1).expand(b, j, p, 2))
    mass = opts.score.gather(2, index).clamp(max=KP_MIN_SCORE)
    guess = torch.cat([xy, mass.unsqueeze(-1)], -1).transpose(1, 2)  # B, P, J, 3
    return guess, (best > 0).transpose(1, 2)


def grown_box(
    keypoints: Tensor, present: Tensor, margin: float, stride: int
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """x_lo, x_hi, y_lo, y_hi [B, P] (input px): the box of each person's `present`
    joints grown on every side by `margin` x its longer side + one cell."""
    bounds = []
    for v in (keypoints[..., 0], keypoints[..., 1]):
        lo = torch.where(present, v, torch.full_like(v, FAR)).amin(-1)
        hi = torch.where(present, v, torch.full_like(v, -FAR)).amax(-1)
        bounds.append((lo, hi))
    (x_lo, x_hi), (y_lo, y_hi) = bounds
    pad = margin * torch.maximum(x_hi - x_lo, y_hi - y_lo) + stride
    return x_lo - pad, x_hi + pad, y_lo - pad, y_hi + pad


def complete_joints(
    keypoints: Tensor,
    person_valid: Tensor,
    hough: Tensor,
    offsets: Tensor | None,
    stride: int,
    margin: float,
    guide: LimbGuide | None = None,
) -> Tensor:
    """Keypoints [B, P, J, 3] with each valid person's absent joints (score 0) guessed
    from the Hough maps [B, J, h, w] around it, scored at most `KP_MIN_SCORE`.

    A person with at least 2 present joints (score > 0) and at least one absent gets,
    for each absent type t, the cell whose centre lies in its box (the present
    joints' bounding box, input px, grown on every side by `margin` x its longer side
    + one cell) with the largest Hough value of type t (ties: the lowest row-major
    index, as `top_k`), placed as `candidates` places a candidate (cell centre +
    offset) and scored by the 3x3 vote mass there clamped to [0, KP_MIN_SCORE]: a
    guess ranks below every score at which a joint counts (OKS, tracking,
    drawing). COCO OKS counts every joint the ground truth labels, so an occluded
    elbow left absent loses its share; a mass of 0 leaves the joint absent (no
    evidence, no guess). Runs after `assign_pixels`: the masks are unchanged.

    Given a `guide`, an absent joint that a limb joins to one of the person's present
    ones goes instead to the option in the box the limb maps support best
    (`limb_guesses`), over `guide.passes` passes, each in the box of the joints
    present and guessed so far; the Hough maximum (in the first box) stays the guess
    where no option has support.

    Fixed size: every slot and type is searched over every cell (a B x P x J x h x w
    masked max) and every option, people or not.
    """
    b, p, j, _ = keypoints.shape
    h, w = hough.shape[-2:]
    score = keypoints[..., 2]
    present = score > 0
    count = present.sum(-1, keepdim=True)
    wanted = person_valid.unsqueeze(-1) & (count >= 2) & ~present  # B, P, J
    x_lo, x_hi, y_lo, y_hi = grown_box(keypoints, present, margin, stride)

    def inside(lo: Tensor, hi: Tensor, n: int) -> Tensor:  # B, P, n
        centre = torch.arange(n, dtype=keypoints.dtype, device=hough.device) + 0.5
        centre = centre * stride
        return (centre >= lo.unsqueeze(-1)) & (centre <= hi.unsqueeze(-1))

    box = inside(y_lo, y_hi, h).unsqueeze(-1) & inside(x_lo, x_hi, w).unsqueeze(-2)
    box = box.reshape(b, p, 1, h * w)
    votes = hough.reshape(b, 1, j, h * w)
    masked = torch.where(box, votes, torch.full_like(votes, -float("inf")))
    best = masked.argmax(-1).transpose(1, 2)  # B, J, P: first maximum
    mass = vote_mass(hough).reshape(b, j, h * w).gather(-1, best)
    _, _, gx, gy = cell_positions(best, w, offsets, keypoints.dtype)
    guess = torch.stack([gx * stride, gy * stride, mass.clamp(0.0, KP_MIN_SCORE)], -1)
    guess = guess.transpose(1, 2)  # B, P, J, 3
    fill = wanted & box.any(-1) & (guess[..., 2] > 0)
    if guide is None:
        return torch.where(fill.unsqueeze(-1), guess, keypoints)
    out = keypoints
    for _ in range(guide.passes):  # a guess scores > 0: it counts as present next
        known = out[..., 2] > 0
        guided, found = limb_guesses(
            out, grown_box(out, known, margin, stride), guide, stride
        )
        out = torch.where((wanted & found & ~known).unsqueeze(-1), guided, out)
    return torch.where((fill & (out[..., 2] <= 0)).unsqueeze(-1), guess, out)


def upsample_parts(probs: Tensor, stride: int) -> tuple[Tensor, Tensor]:
    """Part map [B, H, W] at the input resolution and the cells [B, h, w] that hold
    any of its foreground.

    The part probabilities are upsampled bilinearly before the argmax: trained on
    each cell's class shares (`trainers.targets`), they place boundaries inside a
    cell, which a stride-4 argmax cannot (docs/MODEL.md, "Resolution")."""
    up = F.interpolate(probs, scale_factor=stride, mode="bilinear", align_corners=False)
    parts = up.argmax(1)
    person = (parts != 0).to(probs.dtype).unsqueeze(1)
    return parts, F.max_pool2d(person, stride).squeeze(1) > 0


def to_input_grid(cells: Tensor, stride: int) -> Tensor:
    """[B, h, w] cell values on the [B, h * stride, w * stride] pixels they cover."""
    h, w = cells.shape[-2:]
    rows = torch.arange(h * stride, device=cells.device) // stride
    cols = torch.arange(w * stride, device=cells.device) // stride
    return cells.index_select(-2, rows).index_select(-1, cols)


def decode_fixed(
    maps: dict[str, Tensor], cfg: dict[str, Any], matcher: str = "pgd"
) -> dict[str, Tensor]:
    """Activated maps (docs/ARCHITECTURE.md, "Decode input") -> the five decode outputs.

    `maps` needs parts, limbs, hough, dspf (finest level, B x 2 x h x w) and optionally
    offsets (refines candidate positions). `cfg` is the whole config.
    """
    d = cfg["decode"]
    stride = int(cfg["output_stride"])
    dspf = maps["dspf"][0] if isinstance(maps["dspf"], (list, tuple)) else maps["dspf"]
    guided, pool_threshold = candidate_pool(cfg)
    pool = candidates(
        maps["hough"],
        maps.get("offsets"),
        d["top_k"],
        pool_threshold,
        stride,
        maps.get("heatmap"),
        d["dedup_radius"],
        refine_setting(cfg),
    )
    cand = above(pool, float(d["candidate_threshold"]))
    A = limb_scores(
        maps["limbs"],
        cand,
        d["limb_samples"],
        stride,
        d["limb_extend"],
        None if d["limb_foreground"] is None else 1 - maps["parts"][:, 0],
        d["limb_foreground"],
    )
    tree_match, kept = match_limbs(A, cand, matcher, d)
    labels = assemble(tree_match, kept, cand, matcher)
    keypoints, person_scores, person_valid = drop_duplicates(
        *prune_stretched(
            *select_people(
                labels,
                cand,
                d["max_people"],
                d["person_threshold"],
                float(d["score_joints"]),
            ),
            d["limb_stretch"],
            stride / 2,
            float(d["score_joints"]),
            d["person_threshold"],
        ),
        d["person_nms"],
    )
    parts, foreground = upsample_parts(maps["parts"], stride)
    cells = assign_pixels(
        keypoints,
        person_valid,
        foreground,
        dspf,
        stride,
        float(d["min_sigma"]),
        float(d["max_psi"]),
    )
    if d["complete_joints"]:
        keypoints = complete_joints(
            keypoints,
            person_valid,
            maps["hough"],
            maps.get("offsets"),
            stride,
            float(d["complete_margin"]),
            LimbGuide(
                pool,
                maps["limbs"],
                d["limb_samples"],
                d["limb_extend"],
                int(d["complete_passes"]),
            )
            if guided
            else None,
        )
    instances = torch.where(parts != 0, to_input_grid(cells, stride), 0)
    return {
        "keypoints": keypoints,
        "person_scores": person_scores,
        "person_valid": person_valid,
        "instances": instances,
        "parts": parts,
    }


def renumber_people(
    keep: Any, instances: Any, xp: ModuleType = np, dtype: Any = None
) -> tuple[Any, Any]:
    """(rows, instances): the kept person slots and the instance map relabelled so kept
    slot rows[r] (label rows[r] + 1) becomes label r + 1, the others background. Row r
    of every per-person output is then person r, and label r + 1 its mask. `xp` is
    numpy or CuPy (postprocess on a GPU); `dtype` the map's (default int64)."""
    keep = xp.asarray(keep).astype(bool)
    rows = xp.nonzero(keep)[0]
    relabel = xp.zeros(keep.shape[0] + 1, dtype or xp.int64)
    relabel[rows + 1] = xp.arange(1, rows.shape[0] + 1)
    return rows, relabel[xp.asarray(instances)]


def to_predictions(
    outputs: dict[str, Any], stride: int = 4, grid: str = "input", cells: bool = False
) -> list[Prediction]:
    """Decode outputs -> one `Prediction` per image, valid people only, renumbered 1..n.

    grid="input": maps and keypoints on the network input; grid="output": maps on
    the cells (h x w, read at the cell centres from input-grid maps) and keypoints
    divided by `stride`, the grid of the targets (`trainers.targets.output_grid`; how
    the decode oracle is scored). `cells`: the maps are already on the cell grid (the
    native engine's outputs; numpy or torch), expanded cell by cell for grid="input".
    """
    if grid not in ("input", "output"):
        raise ValueError(f"grid must be 'input' or 'output', not '{grid}'")
    outputs = {k: torch.as_tensor(v) for k, v in outputs.items()}
    preds = []
    for i in range(outputs["keypoints"].shape[0]):
        valid = outputs["person_valid"][i].cpu().numpy()
        slots, instances = renumber_people(valid, outputs["instances"][i].cpu().numpy())
        instances = torch.from_numpy(instances)
        parts = outputs["parts"][i].cpu()
        kps = outputs["keypoints"][i].detach().cpu().numpy()[slots].copy()
        if cells and grid == "input":
            instances, parts = (to_input_grid(m, stride) for m in (instances, parts))
        elif grid == "output" and not cells:
            centre = slice(stride // 2, None, stride)
            instances, parts = instances[centre, centre], parts[centre, centre]
        if grid == "output":
            kps[..., :2] /= stride
        preds.append(
            Prediction(
                parts=parts.numpy(),
                instances=instances.numpy(),
                keypoints=kps.astype("float32"),
                scores=outputs["person_scores"][i].detach().cpu().numpy()[slots].copy(),
            )
        )
    return preds
