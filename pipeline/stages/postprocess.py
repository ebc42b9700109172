"""Stage 4: the network's fixed-size outputs -> people in frame coordinates.

Written once against an array module `xp` (numpy on the CPU, CuPy on a GPU): keypoints
mapped back through the letterbox, the instance and part maps (at the network input's
resolution, `nets.decode.upsample_parts`) resampled to frame resolution, per-person
boxes, and the invalid slots dropped so row k of every output array is person k and
instance label k + 1 is that person's mask.

Label maps cannot be interpolated, and nearest-neighbour upsampling (input to frame)
makes staircase edges. `resample_labels` takes at each output pixel the label with the
largest bilinear weight among its four neighbouring map pixels: the edges of a
bilinearly upsampled one-hot mask, at the cost of a few array operations whatever the
number of people. Parts and instances are voted as one joint label so a part never
spills over its person's border.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType
from typing import Any

import numpy as np

from configs.errors import StageError
from configs.letterbox import Letterbox
from nets.decode import renumber_people
from nets.similarity import KP_MIN_SCORE
from pipeline.engine.messages import FramePeople, Message


def get_array_module(device: str) -> ModuleType:
    """numpy for "cpu"; CuPy for "cuda" (a clear error if it cannot be used)."""
    if device == "cpu":
        return np
    if device != "cuda":
        raise StageError(f"unknown device '{device}' (use cpu or cuda)")
    try:
        import cupy
    except ImportError as exc:
        raise StageError("--device cuda needs CuPy: pip install cupy-cuda12x") from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError: no driver, no device
        raise StageError(f"--device cuda: CuPy finds no usable GPU ({exc})") from exc
    if count < 1:
        raise StageError("--device cuda: CuPy finds no GPU")
    return cupy


def to_host(x: Any) -> np.ndarray:
    """A numpy array whatever module made `x`."""
    return x.get() if hasattr(x, "get") else np.asarray(x)


@dataclass
class Sampler:
    """Where each output pixel falls on the cell grid: the four neighbouring cells
    (rows y0/y1, columns x0/x1) and their bilinear weights; `ry`/`rx` index the
    final nearest-neighbour step when voting runs on a coarser grid than the frame."""

    y0: Any
    y1: Any
    x0: Any
    x1: Any
    weights: tuple[Any, Any, Any, Any]
    ry: Any
    rx: Any


def _axis(n_out: int, frame_to_input: float, stride: float, n_cells: int, xp: Any):
    """Neighbouring cells and weight of the second one along one axis, for output
    pixel centres 0.5 .. n_out - 0.5 of a grid that is `frame_to_input` input px/px."""
    centres = (xp.arange(n_out, dtype=xp.float32) + 0.5) * frame_to_input
    u = centres / stride - 0.5  # cell centres at (j + 0.5) s
    lo = xp.floor(u)
    w = (u - lo).astype(xp.float32)
    lo = lo.astype(xp.int64)
    return xp.clip(lo, 0, n_cells - 1), xp.clip(lo + 1, 0, n_cells - 1), w


@lru_cache(maxsize=8)
def make_sampler(
    box: Letterbox, cells: tuple[int, int], max_pixels: int, xp: ModuleType
) -> Sampler:
    """Sampling plan from an h x w cell map to the frame; votes on a grid of at most
    `max_pixels` pixels (then nearest-neighbour to the frame) to bound the cost."""
    h, w = cells
    stride = box.size / h
    factor = max(1, int(np.ceil(np.sqrt(box.width * box.height / max_pixels))))
    gh, gw = -(-box.height // factor), -(-box.width // factor)
    y0, y1, wy = _axis(gh, factor * box.sy, stride, h, xp)
    x0, x1, wx = _axis(gw, factor * box.sx, stride, w, xp)
    wy, wx = wy[:, None], wx[None, :]
    weights = ((1 - wy) * (1 - wx), (1 - wy) * wx, wy * (1 - wx), wy * wx)
    ry = xp.arange(box.height) // factor
    rx = xp.arange(box.width) // factor
    return Sampler(y0, y1, x0, x1, weights, ry, rx)


def resample_labels(labels: Any, s: Sampler, xp: ModuleType) -> Any:
    """h x w integer labels -> voting-grid labels by a bilinear-weighted vote.

    Most pixels see one label in all four neighbouring cells; only the others (the
    edges) are voted on.
    """
    left, right = labels[:, s.x0], labels[:, s.x1]  # columns first: h rows, cheap
    cand = (left[s.y0], right[s.y0], left[s.y1], right[s.y1])
    out = cand[0]
    edge = xp.flatnonzero((out != cand[1]) | (out != cand[2]) | (out != cand[3]))
    labels4 = [c.ravel()[edge] for c in cand]
    weights4 = [w.ravel()[edge] for w in s.weights]
    best, best_score = labels4[0], None
    for i, a in enumerate(labels4):
        score = weights4[i].copy()
        for j, b in enumerate(labels4):
            if j != i:
                score += weights4[j] * (b == a)
        if best_score is None:
            best_score = score
        else:
            better = score > best_score
            best = xp.where(better, a, best)
            best_score = xp.where(better, score, best_score)
    out.ravel()[edge] = best
    return out


def to_frame_size(grid: Any, s: Sampler) -> Any:
    """Nearest-neighbour from the voting grid to the frame (a no-op if they agree)."""
    if len(s.ry) == grid.shape[0] and len(s.rx) == grid.shape[1]:
        return grid
    return grid[:, s.rx][s.ry]


def boxes_from_cells(
    instances: Any, count: int, box: Letterbox, keypoints: Any, xp: ModuleType
) -> Any:
    """count x 4 (x0, y0, x1, y1) frame-pixel boxes of each person's cells; a person
    without cells gets the box of its seen keypoints (above KP_MIN_SCORE: not the
    decode's guesses). `instances` holds labels 1..count."""
    h = instances.shape[0]
    stride = box.size / h
    ids = xp.arange(1, count + 1, dtype=instances.dtype)
    present = instances[None] == ids[:, None, None]
    rows, cols = present.any(2), present.any(1)
    has = rows.any(1)
    first_r, first_c = xp.argmax(rows, 1), xp.argmax(cols, 1)
    last_r = h - 1 - xp.argmax(rows[:, ::-1], 1)
    last_c = instances.shape[1] - 1 - xp.argmax(cols[:, ::-1], 1)
    cell_box = (
        xp.stack(
            [
                first_c / box.sx,
                first_r / box.sy,
                (last_c + 1) / box.sx,
                (last_r + 1) / box.sy,
            ],
            1,
        )
        * stride
    )
    seen = keypoints[..., 2] > KP_MIN_SCORE
    big, small = xp.float32(1e9), xp.float32(-1e9)
    kp_box = xp.stack(
        [
            xp.where(seen, keypoints[..., 0], big).min(1),
            xp.where(seen, keypoints[..., 1], big).min(1),
            xp.where(seen, keypoints[..., 0], small).max(1),
            xp.where(seen, keypoints[..., 1], small).max(1),
        ],
        1,
    )
    out = xp.where(has[:, None], cell_box, kp_box)
    limit = xp.asarray([box.width, box.height, box.width, box.height], xp.float32)
    return xp.clip(out, 0, limit).astype(xp.float32)


class Postprocess:
    """`msg.model` (model space) -> `msg.people` (frame pixels); drops the model-space
    arrays and the network input."""

    name = "postprocess"
    bottleneck = False
    info: dict[str, Any] | None = None

    def __init__(self, device: str = "cpu", max_pixels: int = 640 * 480) -> None:
        self.device = device
        self.max_pixels = max_pixels
        self.xp: ModuleType | None = None  # set in open(): modules do not pickle

    def open(self) -> None:
        self.xp = get_array_module(self.device)

    def process(self, msg: Message) -> Message:
        xp, m = self.xp, msg.model
        box = Letterbox.from_dict(msg.header["transform"])
        rows, instances = renumber_people(m.person_valid, m.instances, xp)
        count = int(rows.shape[0])
        parts = xp.asarray(m.parts) * (instances > 0)
        keypoints = xp.asarray(m.keypoints)[rows].astype(xp.float32)
        keypoints[..., :2] = box.to_frame(keypoints[..., :2])
        scores = xp.asarray(m.person_scores)[rows].astype(xp.float32)
        n_parts = int(parts.max()) + 1 if parts.size else 1
        sampler = make_sampler(box, tuple(instances.shape), self.max_pixels, xp)
        joint = resample_labels(
            (instances * n_parts + parts).astype(xp.int16), sampler, xp
        )
        msg.model = msg.input = None
        msg.people = FramePeople(
            keypoints=to_host(keypoints),
            scores=to_host(scores),
            boxes=to_host(boxes_from_cells(instances, count, box, keypoints, xp)),
            instances=to_host(
                to_frame_size((joint // n_parts).astype(xp.uint16), sampler)
            ),
            parts=to_host(to_frame_size((joint % n_parts).astype(xp.uint8), sampler)),
        )
        return msg

    def close(self) -> dict[str, Any] | None:
        return None
