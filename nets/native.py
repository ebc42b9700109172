"""The native decode engine: `nets.decode`'s steps as numba-compiled loops over
fixed-size arrays, outside the network graph.

Same contract as the graph engine (`nets.decode.decode_fixed`, ARCHITECTURE.md,
"Decode"): keypoints, person_scores, person_valid, instances, parts, with the maps on
the stride-4 cell grid instead of the input grid (a sink that needs full-resolution
maps makes them once: the pipeline's postprocess resamples cell labels straight to
the frame). In the pipeline it is the decode stage (`pipeline.stages.decode`); over
any runtime of the network-only graph, `nets.runtimes.NativeDecoded`.

Constant cost: every step works on all K = `decode.top_k` candidate slots per type,
all K x K pairs per limb, all P = `decode.max_people` person slots and every cell,
whether the slots hold people or padding, so one person costs what thirty cost
(`python -m bench.decode`); the joint completion (`decode.complete_joints`) is the
exception: it reads only each person's box. The matching is exact: a
shortest-augmenting-path Hungarian (Jonker-Volgenant style, O(K^3)) on each padded
K x K problem; it gives the graph engine's `matcher="hungarian"` people
(tests/nets/test_native.py).

Steps and their graph counterparts: `_candidates` (`candidates`), `_limb_scores`
(`limb_scores`), `max_weight_matching` (`hungarian_match`), `_assemble` (`assemble` and
`_join`), `_select_people` (`select_people`), `_prune_stretched` (`prune_stretched`),
`_drop_duplicates` (`drop_duplicates`),
`_assign_cells` (`assign_pixels` over every cell, then masked by the cell's part
argmax), `_complete_joints` (`complete_joints`). Compiled once per machine
(cache=True: the first decode compiles, 30 s on a busy 2-core machine; later
processes load numba's cache in well under a second; `NativeDecoder.warm_up`).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from configs import body
from nets.decode import (
    MIN_SCALE_LIMBS,
    PRUNE_ROUNDS,
    TIE_BREAK,
    candidate_pool,
    limb_lengths,
    limb_pairs,
    limb_profile,
    refine_setting,
)
from nets.similarity import FAR, KP_MIN_SCORE, OKS_TIE

# Numba's cache keys on this file alone and bakes in the globals a function reads:
# a constant from another module that may be tuned (KP_MIN_SCORE, TIE_BREAK, ...)
# comes in as an argument; FAR is read as a global: a sentinel beyond any image, its
# exact value changes no result.

# Fast-math without the no-NaN / no-infinity promises (the code uses infinities as
# "none yet"): reassociation and fused multiply-adds let the compiler vectorize the
# loops; error_model="numpy": no Python division checks in them.
FAST = {"nsz", "arcp", "contract", "afn", "reassoc"}
_jit = numba.njit(cache=True, nogil=True, fastmath=FAST, error_model="numpy")


@_jit
def _ranked(
    hough: np.ndarray,
    offsets: np.ndarray,
    heatmap: np.ndarray,
    refine: bool,
    row_max: np.ndarray,
    row_sum: np.ndarray,
    out: np.ndarray,
    out_top: np.ndarray,
) -> None:
    """out [h, w]: the 3x3 vote mass (zero padding) where the cell is a candidate (its
    3x3 max, edges: the window inside the map; or, when `refine`, inside a disk with
    its offset pointing into the cell), else 0; out_top [h]: each row's largest.
    Branch-free interiors: vector code."""
    h, w = hough.shape
    for y in range(h):
        r, mx, sm = hough[y], row_max[y], row_sum[y]
        mx[0], sm[0] = max(r[0], r[1]), r[0] + r[1]
        for x in range(1, w - 1):
            mx[x] = max(max(r[x - 1], r[x]), r[x + 1])
            sm[x] = r[x - 1] + r[x] + r[x + 1]
        mx[w - 1], sm[w - 1] = max(r[w - 2], r[w - 1]), r[w - 2] + r[w - 1]
    half = np.float32(0.5)
    for y in range(h):
        up, down = max(y - 1, 0), min(y + 1, h - 1)
        a_max, b_max, c_max = row_max[up], row_max[y], row_max[down]
        a_sum, b_sum, c_sum = row_sum[up], row_sum[y], row_sum[down]
        # a missing row above or below adds nothing to the sum (zero padding)
        a_w = np.float32(y > 0)
        c_w = np.float32(y < h - 1)
        r, o = hough[y], out[y]
        ox, oy, heat = offsets[0, y], offsets[1, y], heatmap[y]
        for x in range(w):
            top = max(max(a_max[x], b_max[x]), c_max[x])
            mass = a_w * a_sum[x] + b_sum[x] + c_w * c_sum[x]
            peak = r[x] >= top
            if refine:
                peak = peak | (
                    (abs(ox[x]) <= half) & (abs(oy[x]) <= half) & (heat[x] > half)
                )
            o[x] = mass if peak else np.float32(0.0)
        top_row = np.float32(0.0)
        for x in range(w):
            top_row = max(top_row, o[x])
        out_top[y] = top_row


@_jit
def _cell_position(
    offsets: np.ndarray, refine: bool, j: int, y: int, x: int
) -> tuple[float, float]:
    """Cell (y, x)'s centre in cells, moved by type j's offset there when `refine`:
    where a candidate and a guessed joint sit (`nets.decode.cell_positions`)."""
    px = np.float32(x) + np.float32(0.5)
    py = np.float32(y) + np.float32(0.5)
    if refine:
        px += offsets[j, 0, y, x]
        py += offsets[j, 1, y, x]
    return px, py


@_jit
def _vote_centroid(
    heat: np.ndarray,
    offsets: np.ndarray,
    px: float,
    py: float,
    iterations: int,
    window: int,
    radius: float,
) -> tuple[float, float]:
    """(px, py) in cells moved onto the votes around it (`nets.decode.vote_centroid`):
    heat [h, w] and offsets [2, h, w] of one type."""
    h, w = heat.shape
    r2 = np.float32(radius * radius)
    for _ in range(iterations):
        bx, by = int(np.floor(px)), int(np.floor(py))
        total = sx = sy = np.float32(0.0)
        for y in range(max(by - window, 0), min(by + window + 1, h)):
            for x in range(max(bx - window, 0), min(bx + window + 1, w)):
                tx = np.float32(x) + np.float32(0.5) + offsets[0, y, x]
                ty = np.float32(y) + np.float32(0.5) + offsets[1, y, x]
                if (tx - px) * (tx - px) + (ty - py) * (ty - py) < r2:
                    total += heat[y, x]
                    sx += heat[y, x] * tx
                    sy += heat[y, x] * ty
        if total > np.float32(1e-6):
            px, py = sx / total, sy / total
    return px, py


@_jit
def _candidates(
    hough: np.ndarray,
    offsets: np.ndarray,
    heatmap: np.ndarray,
    refine: bool,
    threshold: float,
    stride: float,
    dedup: float,
    vote_refine: tuple[int, int, float],
    xy: np.ndarray,
    score: np.ndarray,
    valid: np.ndarray,
) -> None:
    """Top-K candidates per type into xy [J, K, 2] (input px), score, valid [J, K].

    Ranking as `nets.decode.candidates`: peaks by their 3x3 vote mass; equal masses
    keep the lower cell index first; positions moved onto their votes when `refine`
    and `vote_refine` = (iterations, window, radius) has iterations, empty slots too
    (from the map's centre: their position means nothing, their cost keeps the
    step's fixed). Empty slots: score 0, invalid.
    """
    iterations, window, radius = vote_refine
    n_types, h, w = hough.shape
    k = xy.shape[1]
    row_max = np.empty((h, w), np.float32)
    row_sum = np.empty((h, w), np.float32)
    ranked = np.empty((h, w), np.float32)
    ranked_top = np.empty(h, np.float32)
    best = np.empty(k, np.float32)
    index = np.empty(k, np.int64)
    cx = np.empty(k, np.float32)
    cy = np.empty(k, np.float32)
    for j in range(n_types):
        if refine:
            _ranked(
                hough[j], offsets[j], heatmap[j], True, row_max, row_sum, ranked,
                ranked_top,
            )  # fmt: skip
        else:
            _ranked(
                hough[j], offsets[0], heatmap[0], False, row_max, row_sum, ranked,
                ranked_top,
            )  # fmt: skip
        count = 0
        floor = np.float32(0.0)  # a cell must beat this to enter the top K
        for y in range(h):
            if ranked_top[y] <= floor:
                continue  # nothing in this row can enter
            for x in range(w):
                v = ranked[y, x]
                if v <= floor:
                    continue
                pos = min(count, k - 1)
                while pos > 0 and best[pos - 1] < v:
                    best[pos] = best[pos - 1]
                    index[pos] = index[pos - 1]
                    pos -= 1
                best[pos] = v
                index[pos] = y * w + x
                count = min(count + 1, k)
                if count == k:
                    floor = best[k - 1]
        for i in range(k):
            if i >= count:
                px, py = np.float32(w // 2), np.float32(h // 2)
                if refine and iterations > 0:  # an empty slot costs what a full one
                    px, py = _vote_centroid(  # does, as in the graph: a fixed cost
                        heatmap[j], offsets[j], px, py, iterations, window, radius
                    )
                xy[j, i, 0] = px * stride
                xy[j, i, 1] = py * stride
                score[j, i] = 0.0
                valid[j, i] = False
                continue
            y, x = index[i] // w, index[i] % w
            px, py = _cell_position(offsets, refine, j, y, x)
            cx[i], cy[i] = px, py
            duplicate = False
            for e in range(i):
                if refine:
                    dx, dy = cx[i] - cx[e], cy[i] - cy[e]
                    near = (dx * dx + dy * dy) * stride * stride < dedup * dedup
                else:
                    ey, ex = index[e] // w, index[e] % w
                    near = abs(ey - y) <= 1 and abs(ex - x) <= 1
                duplicate = duplicate or near
            ok = best[i] > threshold and not duplicate
            valid[j, i] = ok
            score[j, i] = min(best[i], np.float32(1.0)) if ok else 0.0
            if refine and iterations > 0:  # after the duplicates, as the graph's
                px, py = _vote_centroid(
                    heatmap[j], offsets[j], px, py, iterations, window, radius
                )
            xy[j, i, 0] = px * stride
            xy[j, i, 1] = py * stride


@_jit
def _gather_corners(
    plane: np.ndarray, flat: np.ndarray, wp: int, corners: np.ndarray
) -> None:
    """The four cells around each sample of a padded plane (raveled, row length `wp`)
    whose top-left cell is `flat` [n], into corners [4, ...] (n values each)."""
    c00, c01 = corners[0].ravel(), corners[1].ravel()
    c10, c11 = corners[2].ravel(), corners[3].ravel()
    for i in range(flat.shape[0]):
        at = flat[i]
        c00[i], c01[i] = plane[at], plane[at + 1]
        c10[i], c11[i] = plane[at + wp], plane[at + wp + 1]


@_jit
def _limb_scores(
    limbs: np.ndarray,
    padded: np.ndarray,
    pairs: np.ndarray,
    xy: np.ndarray,
    valid: np.ndarray,
    cand_score: np.ndarray,
    t: np.ndarray,
    expect: np.ndarray,
    inner: np.ndarray,
    stride: float,
    keep_above: float,
    tie_break: float,
    foreground: np.ndarray,
    floor: float,
    out: np.ndarray,
) -> None:
    """Limb scores [L, K, K] as `nets.decode.limb_scores` (bilinear samples, zero
    outside the map, the candidates' `tie_break`), pairs scoring <= `keep_above` or with
    an invalid end set to 0, and with `floor` >= 0 those whose segment reads
    `foreground` [h, w] under `floor` anywhere on the segment.

    Every pair of every limb is sampled, valid or not: the cost is fixed. `padded`
    [L + 1, h + 3, w + 3] is scratch: the maps and the foreground with a zero border,
    so a sample clamped to [-1, w] x [-1, h] reads zeros off the map without a
    branch. For each first end, all its samples are placed (vector code), their four
    cells read (scalar loads: this CPU has no fast gather), then interpolated and
    scored (vector code), with the second ends padded to a multiple of 8 (one AVX2
    register).
    """
    n_limbs, h, w = limbs.shape
    wp = w + 3
    padded[:] = 0.0
    padded[:n_limbs, 1 : h + 1, 1 : w + 1] = limbs
    padded[n_limbs, 1 : h + 1, 1 : w + 1] = foreground
    gate = floor >= 0
    fm = padded[n_limbs].ravel()
    k = xy.shape[1]
    k8 = (k + 7) // 8 * 8
    samples = t.shape[0]
    inner_count = inner.sum()
    expect_mean = expect.sum() / samples
    scale = np.float32(1.0 / stride)
    half, one = np.float32(0.5), np.float32(1.0)
    tie = np.float32(tie_break)
    lo, hi_x, hi_y = np.float32(-1.0), np.float32(w), np.float32(h)
    ex = np.zeros(k8, np.float32)
    ey = np.zeros(k8, np.float32)
    base = np.empty((samples, k8), np.int32)
    fx = np.empty((samples, k8), np.float32)
    fy = np.empty((samples, k8), np.float32)
    corners = np.empty((4, samples, k8), np.float32)
    fg = np.zeros((4, samples, k8), np.float32)
    on_segment = np.empty(k8, np.float32)
    misfit = np.empty(k8, np.float32)
    least = np.empty(k8, np.float32)
    off = np.float32(FAR) * (one - inner)  # samples off the segment never the least
    for li in range(n_limbs):
        m = padded[li].ravel()
        a, c = pairs[li, 0], pairs[li, 1]
        for o in range(k):
            ex[o] = xy[c, o, 0] * scale - half
            ey[o] = xy[c, o, 1] * scale - half
        for n in range(k):
            sx, sy = xy[a, n, 0] * scale - half, xy[a, n, 1] * scale - half
            for s in range(samples):
                ts, row, rx, ry = t[s], base[s], fx[s], fy[s]
                for o in range(k8):
                    ix = max(lo, min(sx + (ex[o] - sx) * ts, hi_x)) + one
                    iy = max(lo, min(sy + (ey[o] - sy) * ts, hi_y)) + one
                    x0, y0 = np.floor(ix), np.floor(iy)
                    rx[o], ry[o] = ix - x0, iy - y0
                    row[o] = np.int32(y0) * wp + np.int32(x0)
            flat = base.ravel()
            _gather_corners(m, flat, wp, corners)
            if gate:
                _gather_corners(fm, flat, wp, fg)
            on_segment[:] = 0.0
            misfit[:] = 0.0
            least[:] = FAR
            for s in range(samples):
                ins, exs, rx, ry = inner[s], expect[s], fx[s], fy[s]
                v00, v01 = corners[0, s], corners[1, s]
                v10, v11 = corners[2, s], corners[3, s]
                for o in range(k8):
                    top = v00[o] + rx[o] * (v01[o] - v00[o])
                    bottom = v10[o] + rx[o] * (v11[o] - v10[o])
                    q = top + ry[o] * (bottom - top)
                    on_segment[o] += q * ins
                    misfit[o] += abs(q - exs)
                if gate:
                    g00, g01, g10, g11 = fg[0, s], fg[1, s], fg[2, s], fg[3, s]
                    for o in range(k8):
                        top = g00[o] + rx[o] * (g01[o] - g00[o])
                        bottom = g10[o] + rx[o] * (g11[o] - g10[o])
                        least[o] = min(least[o], top + ry[o] * (bottom - top) + off[s])
            row_valid = valid[a, n]
            for o in range(k):
                fit = one - (misfit[o] / samples) / expect_mean
                score = on_segment[o] / inner_count * max(fit, np.float32(0.0))
                score *= one + tie * (cand_score[a, n] + cand_score[c, o])
                ok = row_valid & valid[c, o] & (score > keep_above)
                ok = ok & (not gate or least[o] >= floor)
                out[li, n, o] = score if ok else np.float32(0.0)


@_jit
def max_weight_matching(W: np.ndarray, partner: np.ndarray) -> None:
    """Maximum-weight matching of a K x K score matrix (scores >= 0): partner[n] is
    row n's column, or -1 when it has none or its pair scores 0.

    Shortest augmenting paths with dual potentials (the O(K^3) Hungarian of
    Jonker-Volgenant / Kuhn-Munkres) over every row of the padded matrix: padding rows
    and columns score 0 and take part like the others, so the work is bounded by K.
    """
    n = W.shape[0]
    u = np.zeros(n + 1)
    v = np.zeros(n + 1)
    row_of = np.zeros(n + 1, np.int64)  # column j (1-based) -> row (1-based), 0 free
    way = np.zeros(n + 1, np.int64)
    low = np.empty(n + 1)
    used = np.empty(n + 1, np.bool_)
    for i in range(1, n + 1):
        row_of[0] = i
        j0 = 0
        low[:] = np.inf
        used[:] = False
        while True:
            used[j0] = True
            i0 = row_of[j0]
            delta = np.inf
            j1 = 0
            for j in range(1, n + 1):
                if not used[j]:
                    cur = -np.float64(W[i0 - 1, j - 1]) - u[i0] - v[j]
                    if cur < low[j]:
                        low[j] = cur
                        way[j] = j0
                    # equally near: a free column ends the path at once (padding
                    # rows of zeros then cost O(K), not O(K^2))
                    if low[j] < delta or (
                        low[j] == delta and row_of[j] == 0 and row_of[j1] != 0
                    ):
                        delta = low[j]
                        j1 = j
            for j in range(n + 1):
                if used[j]:
                    u[row_of[j]] += delta
                    v[j] -= delta
                else:
                    low[j] -= delta
            j0 = j1
            if row_of[j0] == 0:
                break
        while j0 != 0:
            j1 = way[j0]
            row_of[j0] = row_of[j1]
            j0 = j1
    partner[:] = -1
    for j in range(1, n + 1):
        r = row_of[j] - 1
        if r >= 0 and W[r, j - 1] > 0:
            partner[r] = j - 1


@_jit
def _assemble(
    A: np.ndarray, tree: np.ndarray, joins: np.ndarray, valid: np.ndarray
) -> np.ndarray:
    """Person label of every candidate [J, K] (J * K: not a candidate), as
    `nets.decode.assemble`: exact matching of the tree limbs (A's first rows), labels
    spread leaf-to-root then back, pieces joined over the redundant limbs."""
    n_types, k = valid.shape
    big = n_types * k
    labels = np.empty((n_types, k), np.int64)
    for j in range(n_types):
        for i in range(k):
            labels[j, i] = j * k + i if valid[j, i] else big
    n_tree = tree.shape[0]
    partner = np.empty((n_tree, k), np.int64)
    for li in range(n_tree):
        max_weight_matching(A[li], partner[li])
    for li in range(n_tree - 1, -1, -1):
        a, c = tree[li, 0], tree[li, 1]
        for n in range(k):
            o = partner[li, n]
            if o >= 0 and labels[c, o] < labels[a, n]:
                labels[a, n] = labels[c, o]
    for li in range(n_tree):
        a, c = tree[li, 0], tree[li, 1]
        for n in range(k):
            o = partner[li, n]
            if o >= 0 and labels[a, n] < labels[c, o]:
                labels[c, o] = labels[a, n]
    types = np.zeros(big + 1, np.int64)  # bit t: the piece has a candidate of type t
    open_scores = np.empty((k, k), np.float32)
    accept = np.empty(k, np.int64)
    remap = np.empty(big + 1, np.int64)
    for r in range(joins.shape[0]):
        a, c = joins[r, 0], joins[r, 1]
        types[:] = 0
        for j in range(n_types):
            for i in range(k):
                types[labels[j, i]] |= np.int64(1) << j
        for n in range(k):
            for o in range(k):
                clash = types[labels[a, n]] & types[labels[c, o]]
                open_scores[n, o] = 0.0 if clash != 0 else A[n_tree + r, n, o]
        max_weight_matching(open_scores, accept)
        for lab in range(big + 1):
            remap[lab] = lab
        for n in range(k):
            o = accept[n]
            if o >= 0:  # the two pieces take the smaller label
                first, second = labels[a, n], labels[c, o]
                remap[max(first, second)] = min(first, second)
        for j in range(n_types):
            for i in range(k):
                labels[j, i] = remap[labels[j, i]]
    return labels


@_jit
def _select_people(
    labels: np.ndarray,
    xy: np.ndarray,
    score: np.ndarray,
    threshold: float,
    score_joints: float,
    keypoints: np.ndarray,
    person_scores: np.ndarray,
    person_valid: np.ndarray,
) -> None:
    """The P best components as `nets.decode.select_people` (the score's denominator:
    the joints found, at least `score_joints`; equal scores: the lower label first);
    invalid slots hold zeros."""
    n_types, k = labels.shape
    big = n_types * k
    total = np.zeros(big + 1, np.float32)
    found = np.zeros(big + 1, np.float32)
    for j in range(n_types):
        for i in range(k):
            total[labels[j, i]] += score[j, i]
            if score[j, i] > 0:
                found[labels[j, i]] += 1.0
    p = keypoints.shape[0]
    chosen = np.full(p, -1, np.int64)
    best = np.full(p, -1.0, np.float32)
    for lab in range(big):
        v = total[lab] / max(found[lab], score_joints)
        if v <= best[p - 1]:
            continue
        pos = p - 1
        while pos > 0 and best[pos - 1] < v:
            best[pos] = best[pos - 1]
            chosen[pos] = chosen[pos - 1]
            pos -= 1
        best[pos] = v
        chosen[pos] = lab
    keypoints[:] = 0.0
    for s in range(p):
        ok = chosen[s] >= 0 and best[s] > threshold
        person_valid[s] = ok
        person_scores[s] = best[s] if ok else 0.0
        if not ok:
            continue
        for j in range(n_types):
            for i in range(k):
                if labels[j, i] == chosen[s]:
                    keypoints[s, j, 0] = xy[j, i, 0]
                    keypoints[s, j, 1] = xy[j, i, 1]
                    keypoints[s, j, 2] = score[j, i]


@_jit
def _prune_stretched(
    keypoints: np.ndarray,
    person_scores: np.ndarray,
    person_valid: np.ndarray,
    pairs: np.ndarray,
    typical: np.ndarray,
    stretch: float,
    slack: float,
    score_joints: float,
    threshold: float,
    rounds: int,
    min_limbs: int,
) -> None:
    """`nets.decode.prune_stretched` in place: each person cut back to its best piece
    once limbs longer than `stretch` x its median scale x typical + `slack` are cut,
    `rounds` times (a scale needs `min_limbs`); score recomputed, invalid at or below
    `threshold`. Constants come in as arguments: numba's cache would keep a stale
    copy of another module's."""
    p, n_types = keypoints.shape[0], keypoints.shape[1]
    n_limbs = pairs.shape[0]
    ratio = np.empty(n_limbs, np.float32)
    length = np.empty(n_limbs, np.float32)
    piece = np.empty(n_types, np.int64)
    mass = np.empty(n_types, np.float32)
    for s in range(p):
        for _ in range(rounds):
            count = 0
            for e in range(n_limbs):
                a, b = pairs[e, 0], pairs[e, 1]
                dx = keypoints[s, a, 0] - keypoints[s, b, 0]
                dy = keypoints[s, a, 1] - keypoints[s, b, 1]
                length[e] = np.sqrt(dx * dx + dy * dy)
                both = keypoints[s, a, 2] > 0 and keypoints[s, b, 2] > 0
                ratio[e] = length[e] / typical[e] if both else FAR
                count += 1 if both else 0
            scale = np.sort(ratio)[max(count - 1, 0) // 2]
            for j in range(n_types):  # each found joint its own piece, then joined
                piece[j] = j if keypoints[s, j, 2] > 0 else -1
            for _ in range(n_types):
                for e in range(n_limbs):
                    a, b = pairs[e, 0], pairs[e, 1]
                    near = length[e] <= stretch * scale * typical[e] + slack
                    if ratio[e] < FAR and (near or count < min_limbs):
                        low = min(piece[a], piece[b])
                        piece[a] = low
                        piece[b] = low
            mass[:] = 0.0
            for j in range(n_types):
                if piece[j] >= 0:
                    mass[piece[j]] += keypoints[s, j, 2]
            best, most = 0, np.float32(-1.0)
            for j in range(n_types):  # the first of equal pieces, as the graph's
                m = mass[piece[j]] if piece[j] >= 0 else np.float32(0.0)
                if m > most:
                    best, most = j, m
            for j in range(n_types):
                if piece[j] < 0 or piece[j] != piece[best]:
                    keypoints[s, j] = 0.0
        total, found = np.float32(0.0), np.float32(0.0)
        for j in range(n_types):
            total += keypoints[s, j, 2]
            found += np.float32(1.0) if keypoints[s, j, 2] > 0 else np.float32(0.0)
        score = total / max(found, score_joints)
        person_valid[s] = person_valid[s] and score > threshold
        person_scores[s] = score if person_valid[s] else 0.0
        if not person_valid[s]:
            keypoints[s] = 0.0


@_jit
def _drop_duplicates(
    keypoints: np.ndarray,
    person_scores: np.ndarray,
    person_valid: np.ndarray,
    sigmas: np.ndarray,
    threshold: float,
    min_score: float,
) -> None:
    """`nets.decode.drop_duplicates` in place: slot p becomes invalid and zero when an
    earlier valid slot q has OKS(p, q) > `threshold` (the caller adds `OKS_TIE`) over
    the joints both score above `min_score`, the larger keypoint box (at least 1 px^2)
    as the scale (`nets.similarity.duplicates`). `min_score` is `KP_MIN_SCORE`, an
    argument: numba's cache would keep a stale copy of another module's constant.

    The OKS formula a second time, for this engine only: numba cannot call the
    numpy / torch one, and run as numpy it cost 0.2-0.5 ms a frame, a fifth of this
    decode (measured under load); here 0.05-0.07 ms (thread CPU p50, 256 px oracle
    maps of 1 and 30 people, load 3), every pair scored. tests/nets/
    test_similarity.py and test_native.py hold the two to the same people.
    """
    p, n_types = keypoints.shape[0], keypoints.shape[1]
    area = np.ones(p, np.float32)
    for s in range(p):
        x_lo, x_hi, y_lo, y_hi = np.inf, -np.inf, np.inf, -np.inf
        for j in range(n_types):
            if keypoints[s, j, 2] > 0:
                x_lo = min(x_lo, keypoints[s, j, 0])
                x_hi = max(x_hi, keypoints[s, j, 0])
                y_lo = min(y_lo, keypoints[s, j, 1])
                y_hi = max(y_hi, keypoints[s, j, 1])
        if x_hi >= x_lo:
            area[s] = max((x_hi - x_lo) * (y_hi - y_lo), np.float32(1.0))
    drop = np.zeros(p, np.bool_)
    # every pair and joint is scored, valid or not, then masked: the step costs the
    # same for one person as for thirty (the decode's fixed-cost contract)
    for s in range(1, p):
        for q in range(s):
            scale = max(area[s], area[q])
            total, count = np.float32(0.0), np.float32(0.0)
            for j in range(n_types):
                both = min(keypoints[s, j, 2], keypoints[q, j, 2]) > min_score
                dx = keypoints[s, j, 0] - keypoints[q, j, 0]
                dy = keypoints[s, j, 1] - keypoints[q, j, 1]
                var = (2 * sigmas[j]) ** 2 * scale * 2
                weight = np.float32(1.0) if both else np.float32(0.0)
                # clamped: exp of a far pair underflows through the slow denormal
                # path (e^-30 ~ 1e-13 still counts as zero against any threshold)
                total += weight * np.exp(max(-(dx * dx + dy * dy) / var, -30.0))
                count += weight
            pair = person_valid[s] and person_valid[q] and count > 0
            drop[s] = drop[s] or (pair and total / max(count, 1.0) > threshold)
    for s in range(p):
        if drop[s] or not person_valid[s]:  # invalid slots hold zeros, as the graph's
            person_valid[s] = False
            person_scores[s] = 0.0
            keypoints[s] = 0.0


TILE = 1024  # cells scored together: their arrays stay in the L1 cache


@_jit
def _joint_terms(
    keypoints: np.ndarray,
    person_valid: np.ndarray,
    cx: float,
    cy: float,
    min_sigma: float,
) -> np.ndarray:
    """[P * J, 4] terms (c, -2c x, -2c y, c|p|^2) of psi^2 = c|t - p|^2 per joint slot,
    coordinates relative to the map centre, c = 1 / ((s_p + s_h) sigma_h)^2 as in
    `nets.decode.assign_pixels`; absent joints (0, 0, 0, 1e9) never win."""
    p, n_types = keypoints.shape[0], keypoints.shape[1]
    far = np.float32(1e9)
    terms = np.zeros((p * n_types, 4), np.float32)
    terms[:, 3] = far
    for s in range(p):
        if not person_valid[s]:
            continue
        count, total = 0, np.float32(0.0)
        x_lo, x_hi, y_lo, y_hi = far, -far, far, -far
        for j in range(n_types):
            if keypoints[s, j, 2] > 0:
                count += 1
                total += keypoints[s, j, 2]
                x_lo = min(x_lo, keypoints[s, j, 0] - cx)
                x_hi = max(x_hi, keypoints[s, j, 0] - cx)
                y_lo = min(y_lo, keypoints[s, j, 1] - cy)
                y_hi = max(y_hi, keypoints[s, j, 1] - cy)
        mean = total / max(count, 1)
        sigma = np.sqrt(max(x_hi - x_lo, 0.0) * max(y_hi - y_lo, 0.0))
        sigma = np.float32(max(sigma, min_sigma))
        for j in range(n_types):
            if keypoints[s, j, 2] > 0:
                scale = max((keypoints[s, j, 2] + mean) * sigma, np.float32(1e-3))
                c = np.float32(1.0) / (scale * scale)
                x, y = keypoints[s, j, 0] - cx, keypoints[s, j, 1] - cy
                q = s * n_types + j
                terms[q, 0], terms[q, 1], terms[q, 2] = c, -2 * c * x, -2 * c * y
                terms[q, 3] = c * (x * x + y * y)
    return terms


@_jit
def _assign_cells(
    keypoints: np.ndarray,
    person_valid: np.ndarray,
    parts: np.ndarray,
    dspf: np.ndarray,
    stride: float,
    min_sigma: float,
    max_psi: float,
    instances: np.ndarray,
    labels: np.ndarray,
) -> None:
    """Part argmax per cell into `labels` [h, w] and Eq. 17 person (slot + 1, 0 for
    background) into `instances`, as `nets.decode.assign_pixels` with the cell's own
    argmax as its foreground.

    Every cell is scored against every joint slot, present or not, in the graph's
    form psi^2 = c|t|^2 - 2c t.p + c|p|^2: a fixed amount of vector arithmetic, tile by
    tile. Minima go from one buffer into another (never back into the one read), so
    the compiler writes plain vector stores, not masked ones.
    """
    p, n_types = keypoints.shape[0], keypoints.shape[1]
    n_classes, h, w = parts.shape
    n = h * w
    cx, cy = np.float32(w * stride / 2.0), np.float32(h * stride / 2.0)
    terms = _joint_terms(keypoints, person_valid, cx, cy, min_sigma)
    tx = np.empty(n, np.float32)
    ty = np.empty(n, np.float32)
    tt = np.empty(n, np.float32)
    for y in range(h):
        for x in range(w):
            i = y * w + x
            tx[i] = (x + np.float32(0.5)) * stride - cx + dspf[0, y, x] * stride
            ty[i] = (y + np.float32(0.5)) * stride - cy + dspf[1, y, x] * stride
            tt[i] = tx[i] * tx[i] + ty[i] * ty[i]
    nearest = np.full(n, np.float32(np.inf))
    slot = np.zeros(n, np.int32)
    even = np.empty(TILE, np.float32)
    odd = np.empty(TILE, np.float32)
    best = np.empty(TILE, np.float32)
    best_slot = np.empty(TILE, np.int32)
    for start in range(0, n, TILE):
        m = min(TILE, n - start)
        t2, x1, y1 = tt[start : start + m], tx[start : start + m], ty[start : start + m]
        near, who = nearest[start : start + m], slot[start : start + m]
        for s in range(p):
            even[:m] = np.inf
            for j in range(n_types):
                q = s * n_types + j
                a, bx, by, d = terms[q, 0], terms[q, 1], terms[q, 2], terms[q, 3]
                src, dst = (even, odd) if j % 2 == 0 else (odd, even)
                for i in range(m):
                    v = a * t2[i] + bx * x1[i] + by * y1[i] + d
                    dst[i] = v if v < src[i] else src[i]
            person = odd if n_types % 2 == 1 else even
            for i in range(m):
                better = person[i] < near[i]
                best[i] = person[i] if better else near[i]
                best_slot[i] = s if better else who[i]
            near[:] = best[:m]
            who[:] = best_slot[:m]
    # Part argmax, class by class over all cells (vector code; first maximum wins).
    flat = parts.reshape(n_classes, n)
    top, top_next = flat[0].copy(), np.empty(n, np.float32)
    cls, cls_next = np.zeros(n, np.int64), np.empty(n, np.int64)
    for c in range(1, n_classes):
        row = flat[c]
        for i in range(n):
            better = row[i] > top[i]
            top_next[i] = row[i] if better else top[i]
            cls_next[i] = c if better else cls[i]
        top, top_next = top_next, top
        cls, cls_next = cls_next, cls
    limit = np.float32(max_psi * max_psi)
    anyone = person_valid.any()
    out_labels, out_instances = labels.reshape(n), instances.reshape(n)
    for i in range(n):
        keep = (cls[i] != 0) & anyone & (nearest[i] <= limit)
        out_labels[i] = cls[i]
        out_instances[i] = slot[i] + 1 if keep else 0


@_jit
def _cell_range(lo: float, hi: float, n: int, stride: float) -> tuple[int, int]:
    """(first, last) of the n cells whose centre (i + 0.5) x stride lies in [lo, hi],
    each cell tested as the graph tests it (first > last: none)."""
    first, last = n, -1
    for i in range(n):
        centre = (np.float32(i) + np.float32(0.5)) * np.float32(stride)
        ok = (centre >= lo) & (centre <= hi)
        first = min(first, i if ok else n)
        last = max(last, i if ok else -1)
    return first, last


@_jit
def _above(
    score: np.ndarray,
    valid: np.ndarray,
    threshold: float,
    score_out: np.ndarray,
    valid_out: np.ndarray,
) -> None:
    """`nets.decode.above`: the candidates scoring above `threshold`, into the outs."""
    for j in range(score.shape[0]):
        for i in range(score.shape[1]):
            ok = valid[j, i] and score[j, i] > threshold
            valid_out[j, i] = ok
            score_out[j, i] = score[j, i] if ok else np.float32(0.0)


@_jit
def _sample(m: np.ndarray, x: float, y: float) -> float:
    """Map m [h, w] at (x, y) in cells (cell i's centre at i), bilinear, zero outside
    (grid_sample with zero padding)."""
    h, w = m.shape
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    xi, yi = int(x0), int(y0)
    v = np.float32(0.0)
    for dy in range(2):
        for dx in range(2):
            cx, cy = xi + dx, yi + dy
            if 0 <= cx < w and 0 <= cy < h:
                wx = fx if dx == 1 else np.float32(1.0) - fx
                wy = fy if dy == 1 else np.float32(1.0) - fy
                v += wx * wy * m[cy, cx]
    return v


@_jit
def _segment_score(
    limb: np.ndarray,
    sx: float,
    sy: float,
    ex: float,
    ey: float,
    t: np.ndarray,
    expect: np.ndarray,
    inner: np.ndarray,
    stride: float,
) -> float:
    """`nets.decode.segment_scores` for one segment (input px) on one limb map."""
    samples = t.shape[0]
    on_segment = misfit = np.float32(0.0)
    half = np.float32(0.5)
    for s in range(samples):
        q = _sample(
            limb,
            (sx + (ex - sx) * t[s]) / stride - half,
            (sy + (ey - sy) * t[s]) / stride - half,
        )
        on_segment += q * inner[s]
        misfit += abs(q - expect[s])
    fit = np.float32(1.0) - (misfit / samples) / (expect.sum() / samples)
    return on_segment / inner.sum() * max(fit, np.float32(0.0))


@_jit
def _limb_guess(
    keypoints: np.ndarray,
    present: np.ndarray,
    person: int,
    j: int,
    box: tuple[float, float, float, float],
    pool: tuple[np.ndarray, np.ndarray, np.ndarray],
    guide: tuple[np.ndarray, ...],
    stride: float,
) -> int:
    """`nets.decode.limb_guesses` for one person's absent type j: the option's slot,
    or -1 where no option in the grown box has limb support. `pool`: the options'
    xy [J, K, 2], score and valid [J, K]; `guide`: the limb maps [L, h, w], their
    pairs [L, 2] and the sampled profile (`limb_profile`). Support comes from the
    joints `present` [17] before this pass's guesses (as the graph's)."""
    x_lo, x_hi, y_lo, y_hi = box
    pool_xy, pool_score, pool_valid = pool
    limbs, pairs, t, expect, inner = guide
    best, chosen = np.float32(0.0), -1
    for k in range(pool_xy.shape[1]):
        ox, oy = pool_xy[j, k, 0], pool_xy[j, k, 1]
        if not pool_valid[j, k] or ox < x_lo or ox > x_hi or oy < y_lo or oy > y_hi:
            continue
        support = np.float32(0.0)
        for li in range(pairs.shape[0]):
            a, c = pairs[li, 0], pairs[li, 1]
            if c == j and present[a]:
                sx, sy = keypoints[person, a, 0], keypoints[person, a, 1]
                score = _segment_score(
                    limbs[li], sx, sy, ox, oy, t, expect, inner, stride
                )
                support = max(support, score)
            if a == j and present[c]:
                ex, ey = keypoints[person, c, 0], keypoints[person, c, 1]
                score = _segment_score(
                    limbs[li], ox, oy, ex, ey, t, expect, inner, stride
                )
                support = max(support, score)
        value = support * pool_score[j, k]
        if value > best:
            best, chosen = value, k
    return chosen


@_jit
def _grown_box(
    keypoints: np.ndarray, present: np.ndarray, margin: float, stride: float
) -> tuple[float, float, float, float]:
    """`nets.decode.grown_box` for one person's keypoints [17, 3]."""
    far = np.float32(FAR)
    x_lo, x_hi, y_lo, y_hi = far, -far, far, -far
    for j in range(keypoints.shape[0]):
        if present[j]:
            x_lo = min(x_lo, keypoints[j, 0])
            x_hi = max(x_hi, keypoints[j, 0])
            y_lo = min(y_lo, keypoints[j, 1])
            y_hi = max(y_hi, keypoints[j, 1])
    pad = np.float32(margin) * max(x_hi - x_lo, y_hi - y_lo) + np.float32(stride)
    return x_lo - pad, x_hi + pad, y_lo - pad, y_hi + pad


@_jit
def _complete_joints(
    keypoints: np.ndarray,
    person_valid: np.ndarray,
    hough: np.ndarray,
    offsets: np.ndarray,
    refine: bool,
    stride: float,
    margin: float,
    guided: bool,
    passes: int,
    pool: tuple[np.ndarray, np.ndarray, np.ndarray],
    guide: tuple[np.ndarray, ...],
    cap: float,
) -> None:
    """`nets.decode.complete_joints` in place: each valid person with >= 2 present
    joints gets each absent type's best Hough cell in its grown keypoint box, placed
    like a candidate, scored by the 3x3 vote mass clamped to [0, `cap`] (a mass of 0
    stays absent; `cap` is `KP_MIN_SCORE`, an argument so numba's cache never keeps a
    stale copy); when `guided`, first the pool's option the limbs support best where
    there is one (`_limb_guess`), in `passes` passes.

    Unlike the graph, which masks every cell for every slot, only the box's cells of
    the absent types are read: the cost follows the people's boxes and missing joints,
    0.01-0.03 ms on the benchmark's scenes (71 guesses for 30 people), 0.9 ms at worst
    (30 people each spanning a 64 x 64 map, 15 joints missing each; docs/
    BENCHMARKS.md, "Decode engines"). The scan keeps the first maximum in
    row-major order, as the graph's argmax: each row's maximum first (vector code),
    its first position only when it beats the rows before.
    """
    p, n_types = keypoints.shape[0], keypoints.shape[1]
    h, w = hough.shape[1], hough.shape[2]
    top_score = np.float32(cap)
    step = np.float32(stride)
    pool_xy, pool_score = pool[0], pool[1]
    for s in range(p):
        present = keypoints[s, :, 2] > 0
        count = present.sum()
        if not person_valid[s] or count < 2 or count == n_types:
            continue
        first = _grown_box(keypoints[s], present, margin, step)
        c0, c1 = _cell_range(first[0], first[1], w, stride)
        r0, r1 = _cell_range(first[2], first[3], h, stride)
        for n in range(passes if guided else 0):
            present = keypoints[s, :, 2] > 0  # this pass follows these, in their box
            box = first if n == 0 else _grown_box(keypoints[s], present, margin, step)
            for j in range(n_types):
                if present[j]:
                    continue
                k = _limb_guess(keypoints, present, s, j, box, pool, guide, stride)
                if k >= 0:
                    keypoints[s, j, 0] = pool_xy[j, k, 0]
                    keypoints[s, j, 1] = pool_xy[j, k, 1]
                    keypoints[s, j, 2] = min(pool_score[j, k], top_score)
        if c0 > c1 or r0 > r1:
            continue  # the first box holds no cell: no Hough guesses
        for j in range(n_types):
            if keypoints[s, j, 2] > 0:
                continue
            best, y, x = -np.inf, 0, 0
            for r in range(r0, r1 + 1):
                row = hough[j, r]
                top = row[c0]
                for c in range(c0 + 1, c1 + 1):
                    top = max(top, row[c])  # a max reduction: vector code
                if top > best:  # a later row's equal maximum never wins
                    best, y, x = top, r, c0
                    while row[x] != top:
                        x += 1
            mass = np.float32(0.0)
            for yy in range(max(y - 1, 0), min(y + 2, h)):
                for xx in range(max(x - 1, 0), min(x + 2, w)):
                    mass += hough[j, yy, xx]
            score = min(max(mass, np.float32(0.0)), top_score)
            if score <= 0:
                continue  # no votes near: no guess
            px, py = _cell_position(offsets, refine, j, y, x)
            keypoints[s, j, 0] = px * step
            keypoints[s, j, 1] = py * step
            keypoints[s, j, 2] = score


def _c32(a: Any) -> np.ndarray:
    """C-contiguous float32 (a strided array compiles to slower, scalar code)."""
    return np.ascontiguousarray(a, np.float32)


class NativeDecoder:
    """The native engine for one config: constants and scratch made once, then
    `decoder(maps)` per frame (`decode_native` for a one-off call).

    maps: activated maps, numpy, batch first (ARCHITECTURE.md, "Decode input"); the
    result has `nets.decode.decode_fixed`'s keys with instances and parts on the cell
    grid [B, h, w]. `decode.matcher` does not apply: the matching is exact.
    """

    def __init__(self, cfg: dict[str, Any]):
        d = cfg["decode"]
        self.stride = float(cfg["output_stride"])
        self.k, self.p = int(d["top_k"]), int(d["max_people"])
        self.threshold = float(d["candidate_threshold"])
        self.dedup = float(d["dedup_radius"])
        self.vote_refine = refine_setting(cfg)
        self.limb_threshold = float(d["limb_threshold"])
        floor = d["limb_foreground"]
        self.floor = -1.0 if floor is None else float(floor)  # < 0: no gate
        self.person_threshold = float(d["person_threshold"])
        self.score_joints = float(d["score_joints"])
        self.min_sigma, self.max_psi = float(d["min_sigma"]), float(d["max_psi"])
        nms, stretch = d["person_nms"], d["limb_stretch"]
        self.person_nms = None if nms is None else float(nms)
        self.stretch = None if stretch is None else float(stretch)
        self.typical = limb_lengths().numpy()
        self.complete = bool(d["complete_joints"])
        self.margin = float(d["complete_margin"])
        self.guided, self.pool_threshold = candidate_pool(cfg)
        self.passes = int(d["complete_passes"])
        self.sigmas = np.asarray(body()["oks_sigmas"], np.float32)
        self.pairs = limb_pairs().numpy()
        n_tree = len(body()["limbs"])
        self.tree, self.joins = self.pairs[:n_tree], self.pairs[n_tree:]
        self.profile = limb_profile(int(d["limb_samples"]), float(d["limb_extend"]))
        self._scratch: dict[tuple[int, ...], tuple[np.ndarray, ...]] = {}

    def warm_up(self, cells: int = 8) -> None:
        """Compile (or load from numba's cache) before the first frame: the first
        compile takes seconds, a cache hit well under one."""
        j, c = len(body()["keypoints"]), (cells, cells)
        zeros = {
            "hough": (j, *c), "heatmap": (j, *c), "offsets": (j, 2, *c),
            "limbs": (len(self.pairs), *c), "parts": (2, *c), "dspf": (2, *c),
        }  # fmt: skip
        self({key: np.zeros((1, *shape), np.float32) for key, shape in zeros.items()})

    def _buffers(self, n_types: int, h: int, w: int) -> tuple[np.ndarray, ...]:
        key = (n_types, h, w)
        if key not in self._scratch:
            k, n_limbs = self.k, len(self.pairs)
            self._scratch[key] = (
                np.empty((n_types, k, 2), np.float32),
                np.empty((n_types, k), np.float32),
                np.empty((n_types, k), bool),
                np.empty((n_limbs, k, k), np.float32),
                np.empty((n_limbs + 1, h + 3, w + 3), np.float32),
                np.empty((n_types, k), np.float32),
                np.empty((n_types, k), bool),
            )
        return self._scratch[key]

    def __call__(self, maps: dict[str, Any]) -> dict[str, np.ndarray]:
        hough = _c32(maps["hough"])
        b, n_types, h, w = hough.shape
        offsets, heatmap = maps.get("offsets"), maps.get("heatmap")
        refine = offsets is not None and heatmap is not None
        if not refine:
            offsets = np.zeros((b, 1, 2, h, w), np.float32)
            heatmap = np.zeros((b, 1, h, w), np.float32)
        dspf = maps["dspf"]
        dspf = dspf[0] if isinstance(dspf, (list, tuple)) else dspf
        limbs, parts = _c32(maps["limbs"]), _c32(maps["parts"])
        offsets, heatmap, dspf = _c32(offsets), _c32(heatmap), _c32(dspf)
        out = {
            "keypoints": np.zeros((b, self.p, n_types, 3), np.float32),
            "person_scores": np.zeros((b, self.p), np.float32),
            "person_valid": np.zeros((b, self.p), bool),
            "instances": np.zeros((b, h, w), np.int64),
            "parts": np.zeros((b, h, w), np.int64),
        }
        xy, pool_score, pool_valid, A, padded, score, valid = self._buffers(
            n_types, h, w
        )
        for i in range(b):
            _candidates(
                hough[i], offsets[i], heatmap[i], refine, self.pool_threshold,
                self.stride, self.dedup, self.vote_refine, xy, pool_score, pool_valid,
            )  # fmt: skip
            _above(pool_score, pool_valid, self.threshold, score, valid)
            # the gate's plane: 1 - background; with the gate off any plane of the
            # shape (never read), so no frame pays for building it
            plane = 1 - parts[i, 0] if self.floor >= 0 else parts[i, 0]
            _limb_scores(
                limbs[i], padded, self.pairs, xy, valid, score, *self.profile,
                self.stride, self.limb_threshold, TIE_BREAK, plane, self.floor, A,
            )  # fmt: skip
            labels = _assemble(A, self.tree, self.joins, valid)
            _select_people(
                labels, xy, score, self.person_threshold, self.score_joints,
                out["keypoints"][i],
                out["person_scores"][i], out["person_valid"][i],
            )  # fmt: skip
            if self.stretch is not None:
                _prune_stretched(
                    out["keypoints"][i], out["person_scores"][i],
                    out["person_valid"][i], self.pairs, self.typical, self.stretch,
                    self.stride / 2, self.score_joints, self.person_threshold,
                    PRUNE_ROUNDS, MIN_SCALE_LIMBS,
                )  # fmt: skip
            if self.person_nms is not None:
                _drop_duplicates(
                    out["keypoints"][i], out["person_scores"][i],
                    out["person_valid"][i], self.sigmas,
                    self.person_nms + OKS_TIE, KP_MIN_SCORE,
                )  # fmt: skip
            _assign_cells(
                out["keypoints"][i], out["person_valid"][i], parts[i], dspf[i],
                self.stride, self.min_sigma, self.max_psi, out["instances"][i],
                out["parts"][i],
            )  # fmt: skip
            if self.complete:
                _complete_joints(
                    out["keypoints"][i], out["person_valid"][i], hough[i],
                    offsets[i], refine, self.stride, self.margin, self.guided,
                    self.passes, (xy, pool_score, pool_valid),
                    (limbs[i], self.pairs, *self.profile), KP_MIN_SCORE,
                )  # fmt: skip
        return out


def decode_native(maps: dict[str, Any], cfg: dict[str, Any]) -> dict[str, np.ndarray]:
    """One call of `NativeDecoder(cfg)` (a stream keeps a decoder instead)."""
    return NativeDecoder(cfg)(maps)
