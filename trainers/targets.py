"""Ground truth -> the maps the network learns (docs/ARCHITECTURE.md, "Targets").

Runs on the fly in the data loader, so everything is vectorised over cells; the only
Python loops are over pyramid levels. Cell (i, j) at stride s is centred at input pixel
((j + 0.5) s, (i + 0.5) s), and label maps are read at the pixel holding that centre.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from configs import body, taxonomy
from configs.constants import DSPF_STRIDES, OUTPUT_STRIDE
from configs.records import Scene
from nets.hough import disk_radius_cells, hough_vote

_FAR = np.float32(1e6)  # where unlabelled joints are put so that no cell picks them


def _sample(labels: np.ndarray, stride: int) -> np.ndarray:
    """Label map read at the cell centres of a level (the pixel holding each centre)."""
    return labels[stride // 2 :: stride, stride // 2 :: stride]


def _windows(
    x0: np.ndarray, x1: np.ndarray, y0: np.ndarray, y1: np.ndarray, h: int, w: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells of stride-4 level whose centres lie in each box [x0, x1] x [y0, y1] (px).

    Returns (owner, rows, cols): one entry per (box, cell), so per-object work touches
    only the cells near the object instead of the whole map.
    """
    c0 = np.clip(np.ceil(x0 / OUTPUT_STRIDE - 0.5), 0, w).astype(np.int64)
    c1 = np.clip(np.floor(x1 / OUTPUT_STRIDE - 0.5) + 1, 0, w).astype(np.int64)
    r0 = np.clip(np.ceil(y0 / OUTPUT_STRIDE - 0.5), 0, h).astype(np.int64)
    r1 = np.clip(np.floor(y1 / OUTPUT_STRIDE - 0.5) + 1, 0, h).astype(np.int64)
    box, rows = _ragged_range(r0, np.maximum(r1 - r0, 0))  # one entry per box row
    line, cols = _ragged_range(c0[box], np.maximum(c1 - c0, 0)[box])
    return box[line], rows[line], cols


def _ragged_range(
    start: np.ndarray, count: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Concatenated ranges start[n] .. start[n] + count[n] - 1, and each value's n."""
    owner = np.repeat(np.arange(len(count)), count)
    offset = np.arange(owner.size) - np.repeat(np.cumsum(count) - count, count)
    return owner, start[owner] + offset


def _keypoint_targets(
    kps: np.ndarray, h: int, w: int, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Disk heatmaps (17 x h x w), offsets in cells to the nearest keypoint per type.

    A labelled keypoint (v >= 1) fills its disk with 1; a soft one (0 < v < 1: a
    teacher's unsure guess, `trainers.datasets.pseudo`) with v, so the student learns
    a weak peak there instead of being told nothing is there."""
    n_types = kps.shape[1]
    heat = np.zeros((n_types, h, w), np.float32)
    off = np.zeros((n_types, 2, h, w), np.float32)
    person, kind = np.nonzero(kps[:, :, 2] > 0)
    if len(person) == 0:
        return heat, off
    px, py = kps[person, kind, 0], kps[person, kind, 1]
    owner, rows, cols = _windows(
        px - radius, px + radius, py - radius, py + radius, h, w
    )
    dx = px[owner] - (cols + 0.5) * OUTPUT_STRIDE
    dy = py[owner] - (rows + 0.5) * OUTPUT_STRIDE
    d2 = dx * dx + dy * dy
    inside = d2 <= radius * radius
    owner, rows, cols, dx, dy, d2 = (a[inside] for a in (owner, rows, cols, dx, dy, d2))
    # Nearest keypoint per (type, cell): sort by cell then distance (one float key:
    # cell index + d2 scaled into [0, 1)) and keep the first entry of each cell.
    cell = (kind[owner] * h + rows) * w + cols
    order = np.argsort(cell + d2 / (radius * radius + 1.0), kind="stable")
    first = order[np.flatnonzero(np.diff(cell[order], prepend=-1))]
    t, r, c = kind[owner[first]], rows[first], cols[first]
    heat[t, r, c] = np.minimum(kps[person[owner[first]], t, 2], 1.0)
    off[t, 0, r, c] = dx[first] / OUTPUT_STRIDE
    off[t, 1, r, c] = dy[first] / OUTPUT_STRIDE
    return heat, off


# Limb Gaussians are cut to 0 where they fall below 1e-3 (q = 2 ln 1000), which keeps
# the work local to each limb.
_LIMB_CUT_Q = 2.0 * np.log(1000.0)


def _limb_targets(kps: np.ndarray, h: int, w: int, sigma: float) -> np.ndarray:
    """Unnormalised elliptical Gaussians along each limb, max over people (L x h x w).

    The major sigma is half the limb length (never below the minor one, so a limb whose
    ends coincide is a round blob rather than a division by zero).
    """
    b = body()
    limbs = np.array(b["limbs"] + b["redundant_limbs"])  # L x 2
    out = np.zeros((len(limbs), h, w), np.float32)
    a, z = kps[:, limbs[:, 0]], kps[:, limbs[:, 1]]  # P x L x 3
    person, limb = np.nonzero((a[..., 2] >= 1) & (z[..., 2] >= 1))
    if len(person) == 0:
        return out
    a, z = a[person, limb, :2], z[person, limb, :2]  # N x 2, float32
    mid = (a + z) / 2
    vec = z - a
    length = np.linalg.norm(vec, axis=1)
    u = np.where(
        length[:, None] > 1e-6, vec / np.maximum(length, 1e-6)[:, None], [1.0, 0.0]
    ).astype(np.float32)
    major = np.maximum(length / 2, np.float32(sigma))
    reach = np.sqrt(_LIMB_CUT_Q)
    half_x = reach * np.hypot(major * u[:, 0], sigma * u[:, 1])
    half_y = reach * np.hypot(major * u[:, 1], sigma * u[:, 0])
    owner, rows, cols = _windows(
        mid[:, 0] - half_x,
        mid[:, 0] + half_x,
        mid[:, 1] - half_y,
        mid[:, 1] + half_y,
        h,
        w,
    )
    rx = (cols.astype(np.float32) + 0.5) * OUTPUT_STRIDE - mid[owner, 0]
    ry = (rows.astype(np.float32) + 0.5) * OUTPUT_STRIDE - mid[owner, 1]
    ux, uy = u[owner, 0], u[owner, 1]
    q = ((rx * ux + ry * uy) / major[owner]) ** 2 + ((ry * ux - rx * uy) / sigma) ** 2
    keep = q <= _LIMB_CUT_Q
    flat = (limb[owner[keep]] * h + rows[keep]) * w + cols[keep]
    np.maximum.at(out.reshape(-1), flat, np.exp(-0.5 * q[keep]))
    return out


def _part_shares(
    labels: np.ndarray, ignore: np.ndarray | None, n_classes: int
) -> np.ndarray:
    """C x h x w: each class's share of the labelled pixels of every stride-4 cell.

    The soft target for the part cross-entropy: a network that learns these shares
    can be upsampled bilinearly into masks sharper than its grid (docs/MODEL.md,
    "Resolution"); cells without a labelled pixel are all 0 (not supervised)."""
    height, width = labels.shape
    h, w = height // OUTPUT_STRIDE, width // OUTPUT_STRIDE
    cell = (np.arange(h)[:, None] * w + np.arange(w)[None, :]).repeat(OUTPUT_STRIDE, 0)
    cell = cell.repeat(OUTPUT_STRIDE, 1)
    keep = labels < n_classes
    if ignore is not None:
        keep &= ~ignore
    counts = np.bincount(
        cell[keep] * n_classes + labels[keep], minlength=h * w * n_classes
    ).reshape(h, w, n_classes)
    total = counts.sum(-1, keepdims=True)
    shares = counts / np.maximum(total, 1)
    return np.ascontiguousarray(shares.transpose(2, 0, 1), dtype=np.float32)


def _dspf_targets(
    instances: np.ndarray, kps: np.ndarray, stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per person cell: offset in cells to the nearest labelled joint of its person."""
    inst = _sample(instances, stride)
    h, w = inst.shape
    field = np.zeros((2, h, w), np.float32)
    mask = np.zeros((h, w), np.float32)
    rows, cols = np.nonzero(inst)
    if len(rows) == 0:
        return field, mask
    labelled = kps[:, :, 2] >= 1
    # Unlabelled joints are moved far away so argmin never picks them.
    jx = np.where(labelled, kps[:, :, 0], _FAR)
    jy = np.where(labelled, kps[:, :, 1], _FAR)
    person = inst[rows, cols].astype(np.int64) - 1
    cx = (cols.astype(np.float32) + 0.5) * stride
    cy = (rows.astype(np.float32) + 0.5) * stride
    dx = jx[person] - cx[:, None]
    dy = jy[person] - cy[:, None]
    nearest = (dx * dx + dy * dy).argmin(axis=1)
    ok = labelled.any(axis=1)[person]
    field[0, rows, cols] = np.where(ok, jx[person, nearest] - cx, 0.0) / stride
    field[1, rows, cols] = np.where(ok, jy[person, nearest] - cy, 0.0) / stride
    mask[rows, cols] = ok
    return field, mask


def output_grid(scene: Scene) -> Scene:
    """A scene's ground truth on the network's output grid (stride-4 cells read at their
    centres, as the targets are; keypoints in cells): what a perfect network could
    output before any upsampling, so scoring there leaves out the resolution limit."""
    kps = np.asarray(scene.keypoints, np.float32).reshape(-1, 17, 3).copy()
    kps[..., :2] /= OUTPUT_STRIDE
    return Scene(
        image=_sample(scene.image, OUTPUT_STRIDE),
        parts=np.ascontiguousarray(_sample(scene.parts, OUTPUT_STRIDE)),
        instances=np.ascontiguousarray(_sample(scene.instances, OUTPUT_STRIDE)),
        keypoints=kps,
        track_ids=scene.track_ids,
        taxonomy=scene.taxonomy,
        ignore=None
        if scene.ignore is None
        else _sample(scene.ignore, OUTPUT_STRIDE).copy(),
    )


def encode(scene: Scene, cfg: dict[str, Any]) -> dict[str, np.ndarray]:
    """Encode one scene (already at the network input size) into training targets."""
    size = cfg["input_size"]
    height, width = scene.parts.shape
    if (height, width) != (size, size):
        raise ValueError(
            f"scene is {width}x{height}, targets need the {size}x{size} network input; "
            "resize or augment it first"
        )
    if size % max(DSPF_STRIDES):
        raise ValueError(f"input_size {size} must be a multiple of {max(DSPF_STRIDES)}")
    h = w = size // OUTPUT_STRIDE
    kps = np.asarray(scene.keypoints, np.float32).reshape(-1, 17, 3)
    parts = _sample(scene.parts, OUTPUT_STRIDE).astype(np.int64)
    valid = np.ones((h, w), np.float32)
    if scene.ignore is not None:
        ignored = _sample(scene.ignore, OUTPUT_STRIDE).astype(bool)
        parts = np.where(ignored, 255, parts)
        valid[ignored] = 0.0
    heat, off = _keypoint_targets(kps, h, w, float(cfg["targets"]["disk_radius"]))
    n_classes = len(taxonomy(cfg["model"]["taxonomy"])["classes"])
    out = {
        "parts": parts,
        "part_shares": _part_shares(scene.parts, scene.ignore, n_classes),
        "heatmap": heat,
        "offsets": off,
        "offset_mask": heat.copy(),
        "limbs": _limb_targets(kps, h, w, float(cfg["targets"]["limb_sigma"])),
        "instances": _sample(scene.instances, OUTPUT_STRIDE).astype(np.int64),
        "valid": valid,
        "keypoints": kps.copy(),
    }
    for stride in DSPF_STRIDES:
        out[f"dspf_{stride}"], out[f"dspf_mask_{stride}"] = _dspf_targets(
            scene.instances, kps, stride
        )
    return out


def encode_batch(scenes: list[Scene], cfg: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Collate: encode each scene and stack into tensors.

    Adds `image` (B x 3 x H x W float32 in [0, 1], what the model takes) and
    `num_people` (B int64); `keypoints` are zero-padded to the most people in the batch.
    """
    encoded = [encode(s, cfg) for s in scenes]
    batch = {
        key: torch.from_numpy(np.stack([e[key] for e in encoded]))
        for key in encoded[0]
        if key != "keypoints"
    }
    counts = [e["keypoints"].shape[0] for e in encoded]
    kps = np.zeros((len(scenes), max(counts, default=0), 17, 3), np.float32)
    for i, e in enumerate(encoded):
        kps[i, : counts[i]] = e["keypoints"]
    batch["keypoints"] = torch.from_numpy(kps)
    batch["num_people"] = torch.tensor(counts, dtype=torch.int64)
    images = np.stack([s.image for s in scenes]).transpose(0, 3, 1, 2)
    batch["image"] = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    return batch


# Decode inputs each map group stands for (nets.model.activations' keys).
MAP_GROUPS = {
    "parts": ("parts",),
    "keypoints": ("heatmap", "offsets", "hough"),
    "limbs": ("limbs",),
    "dspf": ("dspf",),
}


def perfect_maps(
    targets: list[dict[str, np.ndarray]], cfg: dict[str, Any]
) -> dict[str, torch.Tensor]:
    """The decode input a perfect network would give for encoded scenes (`encode`):
    one-hot parts of the cell centres, the keypoint, limb and finest DSPF targets,
    Hough maps voted from the target disks and offsets. Fed to the decode alone it is
    the decode oracle; swapped in for some of a model's maps it shows what they cost.
    """
    stack = {
        key: torch.from_numpy(np.stack([t[key] for t in targets]))
        for key in ("parts", "heatmap", "offsets", "limbs", "dspf_4")
    }
    classes = len(taxonomy(cfg["model"]["taxonomy"])["classes"])
    parts = stack["parts"] * (stack["parts"] != 255)
    one_hot = torch.nn.functional.one_hot(parts, classes).permute(0, 3, 1, 2)
    return {
        "parts": one_hot.float(),
        "heatmap": stack["heatmap"],
        "offsets": stack["offsets"],
        "limbs": stack["limbs"],
        "hough": hough_vote(stack["heatmap"], stack["offsets"], disk_radius_cells(cfg)),
        "dspf": stack["dspf_4"],
    }
