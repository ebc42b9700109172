"""Training losses (paper Sec. 3.4) with learned homoscedastic-uncertainty weights.

    total = sum_i exp(-s_i) * L_i + s_i        (Kendall et al. 2018; s_i learnable)

Terms: cross-entropy for parts (against each cell's class shares); BCE (soft targets)
for the keypoint disks and limb maps; L1 for offsets (inside the disks) and for the
DSPF at each of the 4 levels (on person cells); optionally (`train.person_iou`) a soft
Jaccard loss on each image's person mask (1 - background probability), the measure
the person-mask IoU takes; optionally (`train.vote_centroid`) L1 of the heat-weighted
mean vote error over each labelled joint's disk, the error of the position the decode
reads (`vote_centroid_loss`); optionally (`train.hough_loss`) BCE between the Hough
score maps and those the target disks and offsets vote (`hough_bce`, the paper's
cross-entropy on the score maps); and, in training step 2 only
(`with_matching=True`), BCE between the relaxed assignment matrices of the
differentiable matching and ground-truth ones. The s_i are parameters of the loss
module: give `MGLoss.parameters()` to the optimizer too.
Every term is a mean over the cells it supervises, and 0 when there are none.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from configs import ConfigError
from configs.constants import DSPF_STRIDES
from nets.decode import (
    Candidates,
    candidates,
    limb_pairs,
    limb_scores,
    refine_setting,
)
from nets.hough import disk_radius_cells, hough_vote
from nets.matching import pgd_match


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def part_loss(
    logits: torch.Tensor, shares: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy against each cell's class shares (B x C x h x w, soft targets:
    the network learns sub-cell boundaries) over cells with labelled pixels that are
    not ignored."""
    ce = -(shares * F.log_softmax(logits, 1)).sum(1)
    return _masked_mean(ce, valid * (shares.sum(1) > 0).to(valid.dtype))


def person_iou_loss(
    logits: torch.Tensor, shares: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """1 - soft IoU of the person masks (1 - background share), per image over its
    labelled cells, mean over images that hold a labelled person.

    Cross-entropy over a frame that is mostly background lets thin or small parts
    (hands, feet, heads, distant people) go to background cheaply; IoU counts a
    missed person pixel as much as a wrong one wherever it is, and per image a small
    person's pixels as much as a large one's."""
    cells = valid * (shares.sum(1) > 0).to(valid.dtype)
    fg = (1.0 - F.softmax(logits, 1)[:, 0]) * cells
    truth = (shares.sum(1) - shares[:, 0]) * cells
    inter = (fg * truth).flatten(1).sum(1)
    union = (fg + truth).flatten(1).sum(1) - inter
    has = truth.flatten(1).sum(1) > 0
    iou = inter / union.clamp(min=1e-6)
    return _masked_mean(1.0 - iou, has.to(iou.dtype))


def map_bce(
    logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """BCE with soft targets, B x C x h x w, over valid cells."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return _masked_mean(bce, valid.unsqueeze(1).expand_as(bce))


def vector_l1(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """L1 of 2-vectors (..., 2, h, w) summed over (dx, dy), mean over masked cells."""
    return _masked_mean((pred - target).abs().sum(-3), mask)


def vote_centroid_loss(
    heat_logits: torch.Tensor,
    offsets: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    radius: float,
) -> torch.Tensor:
    """L1 (dx + dy, cells) of the heat-weighted mean vote error over each labelled
    joint's disk, at the cell holding the joint, weighted by its label.

    The decode places a joint at the mean of the votes near its peak (`vote_refine`);
    per-cell L1 lets the cells on one side of a joint all fall short the same way (the
    student's limb joints sat ~1 px inside the body on held-out frames, docs/MODEL.md),
    and that shared error is what moves the mean. Heat is detached: this term moves
    the votes, the heatmap loss says where people are.

    Args:
        heat_logits: B x K x h x w disk logits.
        offsets, target: B x K x 2 x h x w, in cells.
        mask: B x K x h x w disk labels (0 outside, the joint's weight inside; the
            valid-cell mask already applied).
        radius: disk radius in cells (the window holds the disk).
    """
    b, k, h, w = mask.shape
    weight = torch.sigmoid(heat_logits.detach()) * (mask > 0).to(mask.dtype)
    err = (offsets - target) * weight.unsqueeze(2)
    side = 2 * int(math.ceil(radius + 0.5)) + 1  # a joint sits anywhere in its cell
    err_sum = F.avg_pool2d(err.reshape(b, k * 2, h, w), side, 1, side // 2)
    w_sum = F.avg_pool2d(weight, side, 1, side // 2).clamp(min=1e-6)
    mean = err_sum.view(b, k, 2, h, w) / w_sum.unsqueeze(2)
    centre = mask * (target.abs().amax(2) <= 0.5).to(mask.dtype)
    return _masked_mean(mean.abs().sum(2), centre)


def hough_bce(
    hough: torch.Tensor,
    heat: torch.Tensor,
    offsets: torch.Tensor,
    valid: torch.Tensor,
    radius: float,
) -> torch.Tensor:
    """BCE between the network's Hough score maps (B x K x h x w, probabilities from
    `nets.hough.hough_vote`) and the maps the target disks `heat` and `offsets` vote:
    each joint's votes land on the 4 cells round it. The paper trains its score maps
    with cross-entropy: a vote off its joint costs here, whichever side it falls."""
    target = hough_vote(heat, offsets, radius).clamp(0.0, 1.0)
    eps = 1e-4
    bce = F.binary_cross_entropy(hough.clamp(eps, 1.0 - eps), target, reduction="none")
    return _masked_mean(bce, valid.unsqueeze(1).expand_as(bce))


def candidate_owners(
    cand: Candidates, keypoints: torch.Tensor, radius: float
) -> torch.Tensor:
    """GT person index of every candidate [B, J, K]; -1 for none.

    A candidate belongs to the person whose same-type labelled keypoint is nearest,
    if that is within `radius` input px. `keypoints` is B x P x 17 x 3 (zero-padded).
    """
    gt = keypoints.permute(0, 2, 1, 3)  # B, J, P, 3
    d2 = ((cand.xy.unsqueeze(3) - gt[..., :2].unsqueeze(2)) ** 2).sum(-1)  # B, J, K, P
    d2 = torch.where(
        gt[..., 2].unsqueeze(2) >= 1, d2, torch.full_like(d2, float("inf"))
    )
    if d2.shape[-1] == 0:
        return torch.full(cand.valid.shape, -1, dtype=torch.long, device=d2.device)
    best, owner = d2.min(-1)
    return torch.where(
        cand.valid & (best <= radius * radius), owner, torch.full_like(owner, -1)
    )


def gt_assignment(owners: torch.Tensor) -> torch.Tensor:
    """B x L x K x K: 1 where both ends of a limb pair belong to the same GT person."""
    pairs = limb_pairs().to(owners.device)
    a, b = owners[:, pairs[:, 0]].unsqueeze(-1), owners[:, pairs[:, 1]].unsqueeze(-2)
    return ((a == b) & (a >= 0)).float()


class MGLoss(nn.Module):
    """outputs (nets.model.MGParser) + targets (trainers.targets.encode_batch) ->
    (total, {term: detached value}); the dict also holds each learned weight s_i."""

    def __init__(self, cfg: dict[str, Any], with_matching: bool = False):
        super().__init__()
        self.cfg = cfg
        self.with_matching = with_matching
        self.terms = ["parts", "heatmap", "offsets", "limbs"]
        self.terms += [f"dspf_{s}" for s in DSPF_STRIDES]
        optional = (
            ("person_iou", "person_iou"),
            ("vote_centroid", "vote_centroid"),
            ("hough_loss", "hough"),
        )
        self.terms += [term for flag, term in optional if cfg["train"][flag]]
        self.radius = disk_radius_cells(cfg)
        if with_matching:
            self.terms.append("matching")
        self.factors = dict(cfg["train"]["term_weights"] or {})
        unknown = sorted(set(self.factors) - set(self.terms))
        if unknown:
            raise ConfigError(
                f"train.term_weights: unknown loss term {unknown[0]!r} "
                f"(terms: {', '.join(self.terms)})"
            )
        self.log_vars = nn.Parameter(torch.zeros(len(self.terms)))

    def forward(
        self, outputs: dict[str, Any], targets: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict]:
        valid = targets["valid"]
        losses = {
            "parts": part_loss(outputs["parts"], targets["part_shares"], valid),
            "heatmap": map_bce(outputs["heatmap"], targets["heatmap"], valid),
            "offsets": vector_l1(
                outputs["offsets"],
                targets["offsets"],
                targets["offset_mask"] * valid.unsqueeze(1),
            ),
            "limbs": map_bce(outputs["limbs"], targets["limbs"], valid),
        }
        for stride, field in zip(DSPF_STRIDES, outputs["dspf"], strict=True):
            losses[f"dspf_{stride}"] = vector_l1(
                field, targets[f"dspf_{stride}"], targets[f"dspf_mask_{stride}"]
            )
        if "person_iou" in self.terms:
            losses["person_iou"] = person_iou_loss(
                outputs["parts"], targets["part_shares"], valid
            )
        if "vote_centroid" in self.terms:
            losses["vote_centroid"] = vote_centroid_loss(
                outputs["heatmap"],
                outputs["offsets"],
                targets["offsets"],
                targets["offset_mask"] * valid.unsqueeze(1),
                self.radius,
            )
        if "hough" in self.terms:
            losses["hough"] = hough_bce(
                outputs["hough"],
                targets["heatmap"],
                targets["offsets"],
                valid,
                self.radius,
            )
        if self.with_matching:
            losses["matching"] = self.matching_loss(outputs, targets["keypoints"])
        total = outputs["parts"].new_zeros(())
        report = {}
        for s, name in zip(self.log_vars, self.terms, strict=True):
            factor = float(self.factors.get(name, 1.0))
            total = total + factor * torch.exp(-s) * losses[name] + s
            report[name] = float(losses[name].detach())
            report[f"s_{name}"] = float(s.detach())
        return total, report

    def matching_loss(
        self, outputs: dict[str, Any], keypoints: torch.Tensor
    ) -> torch.Tensor:
        """BCE between PGD's relaxed assignments and the GT assignments, over pairs of
        existing candidates; candidates and limb scores are made exactly as
        `nets.decode.decode_fixed` makes them, so this trains what inference runs."""
        d, stride = self.cfg["decode"], int(self.cfg["output_stride"])
        cand = candidates(
            outputs["hough"],
            outputs["offsets"],
            d["top_k"],
            d["candidate_threshold"],
            stride,
            torch.sigmoid(outputs["heatmap"]),
            d["dedup_radius"],
            refine_setting(self.cfg),
        )
        limbs = torch.sigmoid(outputs["limbs"])
        A = limb_scores(limbs, cand, d["limb_samples"], stride, d["limb_extend"])
        pairs = limb_pairs().to(A.device)
        rows, cols = cand.valid[:, pairs[:, 0]], cand.valid[:, pairs[:, 1]]
        pgd = d["pgd"]
        Y = pgd_match(A, pgd["steps"], pgd["inner_steps"], pgd["alpha"], rows, cols)
        target = gt_assignment(
            candidate_owners(cand, keypoints, float(self.cfg["targets"]["disk_radius"]))
        )
        mask = (rows.unsqueeze(-1) & cols.unsqueeze(-2)).to(Y.dtype)
        bce = F.binary_cross_entropy(Y.clamp(1e-6, 1 - 1e-6), target, reduction="none")
        return _masked_mean(bce, mask)
