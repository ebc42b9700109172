import math

import numpy as np
import pytest
import torch

from configs import ConfigError
from nets.decode import Candidates
from nets.hough import hough_vote
from nets.losses import (
    MGLoss,
    candidate_owners,
    gt_assignment,
    part_loss,
    vector_l1,
)
from nets.model import build_model
from tests.nets.tiny_model import tiny_cfg
from trainers.data import synthetic_scene
from trainers.targets import encode_batch

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def batch_cfg():
    cfg = tiny_cfg(size=128)
    cfg["data"]["people"] = [2, 3]
    return encode_batch([synthetic_scene(s, cfg) for s in (0, 1)], cfg), cfg


def test_losses_decrease_when_overfitting_a_fixed_batch(batch_cfg):
    batch, cfg = batch_cfg
    torch.manual_seed(0)
    model = build_model(cfg)
    criterion = MGLoss(cfg)
    params = list(model.parameters()) + list(criterion.parameters())
    optimizer = torch.optim.Adam(params, lr=5e-3)
    history = []
    for _ in range(20):
        total, terms = criterion(model(batch["image"]), batch)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append((float(total.detach()), terms))
    first, last = history[0], history[-1]
    assert last[0] < 0.6 * first[0]
    for name in ("parts", "heatmap", "offsets", "limbs", "dspf_4", "dspf_32"):
        assert last[1][name] < first[1][name], name


def test_uncertainty_weighting_formula(batch_cfg):
    batch, cfg = batch_cfg
    torch.manual_seed(0)
    with torch.no_grad():
        out = build_model(cfg)(batch["image"])
        criterion = MGLoss(cfg)
        criterion.log_vars.copy_(torch.linspace(-1, 1, len(criterion.terms)))
        total, terms = criterion(out, batch)
    expected = sum(
        math.exp(-terms[f"s_{n}"]) * terms[n] + terms[f"s_{n}"] for n in criterion.terms
    )
    assert math.isclose(float(total), expected, rel_tol=1e-5)
    assert len(criterion.terms) == 8 and "matching" not in terms


def test_part_loss_is_soft_cross_entropy_skipping_unlabelled_and_invalid_cells():
    shares = torch.zeros(1, 3, 2, 2)
    shares[0, 1, 0, 0] = 1.0
    shares[0, 0, 1, 1], shares[0, 2, 1, 1] = 0.25, 0.75  # a boundary cell
    shares[0, 0, 1, 0] = 1.0  # the invalid cell; cell (0, 1) has no labelled pixel
    valid = torch.tensor([[[1.0, 1.0], [0.0, 1.0]]])
    logits = torch.zeros(1, 3, 2, 2)
    base = part_loss(logits, shares, valid)
    assert torch.isclose(base, torch.tensor(math.log(3.0)))
    changed = logits.clone()
    changed[0, :, 0, 1] = torch.tensor([5.0, -5.0, 0.0])  # the unlabelled cell
    changed[0, :, 1, 0] = torch.tensor([-5.0, 5.0, 0.0])  # the invalid cell
    assert torch.isclose(part_loss(changed, shares, valid), base)
    # the boundary cell's loss is lowest where the prediction equals its shares
    probe = logits.clone()
    probe[0, :, 1, 1] = torch.log(torch.tensor([0.25, 1e-6, 0.75]))
    sharper = probe.clone()
    sharper[0, :, 1, 1] = torch.log(torch.tensor([1e-6, 1e-6, 1.0]))
    assert part_loss(probe, shares, valid) < part_loss(sharper, shares, valid)


def test_vector_l1_is_a_masked_mean_of_summed_components():
    pred = torch.zeros(1, 2, 2, 2)
    target = torch.tensor([[[[1.0, 9.0], [0.0, 0.0]], [[2.0, 9.0], [0.0, 0.0]]]])
    mask = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    assert torch.isclose(vector_l1(pred, target, mask), torch.tensor(1.5))
    assert vector_l1(pred, target, torch.zeros_like(mask)) == 0


def test_candidates_belong_to_the_nearest_same_type_keypoint_within_the_radius():
    keypoints = torch.zeros(1, 2, 17, 3)
    keypoints[0, 0, :, :2] = torch.tensor([10.0, 10.0])
    keypoints[0, 1, :, :2] = torch.tensor([40.0, 10.0])
    keypoints[..., 2] = 2.0
    keypoints[0, 1, 5, 2] = 0.0  # person 1's left shoulder is not labelled
    xy = torch.zeros(1, 17, 3, 2)
    xy[0, :, 0] = torch.tensor([12.0, 10.0])  # near person 0
    xy[0, :, 1] = torch.tensor([37.0, 11.0])  # near person 1
    xy[0, :, 2] = torch.tensor([25.0, 30.0])  # near no one
    valid = torch.ones(1, 17, 3, dtype=torch.bool)
    valid[0, 0, 0] = False
    owners = candidate_owners(Candidates(xy, valid.float(), valid), keypoints, 6.0)
    assert owners[0, 1].tolist() == [0, 1, -1]
    assert owners[0, 0].tolist() == [-1, 1, -1]  # invalid candidate: no owner
    assert owners[0, 5].tolist() == [0, -1, -1]  # unlabelled joint claims nothing
    target = gt_assignment(owners)  # limb 0 is nose -> left_eye
    assert target[0, 0].tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]
    assert target[0, 1].tolist() == [[0, 0, 0], [0, 1, 0], [0, 0, 0]]
    # limb 6 (left shoulder -> left elbow): person 1 lacks the shoulder.
    assert target[0, 6].tolist() == [[1, 0, 0], [0, 0, 0], [0, 0, 0]]


def perfect_outputs(batch, cfg):
    """Logits and fields equal to the targets (what a perfect network would output)."""

    def logit(p):
        p = p.clamp(1e-4, 1 - 1e-4)
        return torch.log(p / (1 - p))

    radius = cfg["targets"]["disk_radius"] / cfg["output_stride"]
    return {
        "heatmap": logit(batch["heatmap"]),
        "offsets": batch["offsets"],
        "limbs": logit(batch["limbs"]),
        "hough": hough_vote(batch["heatmap"], batch["offsets"], radius),
    }


def test_matching_term_prefers_correct_limbs_and_has_gradients(batch_cfg):
    batch, cfg = batch_cfg
    criterion = MGLoss(cfg, with_matching=True)
    good = perfect_outputs(batch, cfg)
    good["limbs"].requires_grad_(True)
    loss = criterion.matching_loss(good, batch["keypoints"])
    loss.backward()
    assert good["limbs"].grad.abs().sum() > 0
    flat = dict(good, limbs=torch.zeros_like(good["limbs"]))  # every pair scores 0.5
    worse = criterion.matching_loss(flat, batch["keypoints"])
    assert float(loss.detach()) < float(worse)
    assert "matching" in criterion.terms and len(criterion.log_vars) == 9


def test_matching_term_is_zero_without_candidates(batch_cfg):
    batch, cfg = batch_cfg
    outputs = perfect_outputs(batch, cfg)
    outputs["hough"] = torch.zeros_like(outputs["hough"])
    criterion = MGLoss(cfg, with_matching=True)
    assert float(criterion.matching_loss(outputs, batch["keypoints"])) == 0.0


def test_person_iou_loss_counts_missed_person_cells_per_image():
    """0 when the person masks are exact; a missed small person costs its image as
    much as a missed large one; images without a labelled person do not count."""
    from nets.losses import person_iou_loss

    shares = torch.zeros(3, 3, 8, 8)
    shares[:, 0] = 1.0
    shares[0, :, :4, :4] = torch.tensor([0.0, 1.0, 0.0]).view(3, 1, 1)  # 16 cells
    shares[1, :, :1, :2] = torch.tensor([0.0, 0.0, 1.0]).view(3, 1, 1)  # 2 cells
    valid = torch.ones(3, 8, 8)
    exact = torch.log(shares.clamp(min=1e-6))
    assert float(person_iou_loss(exact, shares, valid)) < 1e-4
    # Half of each person called background: IoU 1/2 in both images -> loss 1/2.
    half = shares.clone()
    half[0, :, :2, :4] = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    half[1, :, :1, :1] = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    loss = person_iou_loss(torch.log(half.clamp(min=1e-6)), shares, valid)
    assert abs(float(loss) - 0.5) < 1e-3
    # Unlabelled (ignored) cells are not counted either way.
    valid[0, :2, :4] = 0
    loss = person_iou_loss(torch.log(half.clamp(min=1e-6)), shares, valid)
    assert abs(float(loss) - 0.25) < 1e-3


@pytest.mark.parametrize(
    ("flag", "term", "ceiling"),
    [
        ("person_iou", "person_iou", 1.0),  # 1 - soft IoU
        ("vote_centroid", "vote_centroid", math.inf),  # a random net's votes miss
        ("hough_loss", "hough", math.inf),
    ],
)
def test_optional_terms_join_the_loss_only_when_asked(batch_cfg, flag, term, ceiling):
    batch, cfg = batch_cfg
    cfg = {**cfg, "train": {**cfg["train"], flag: True}}
    torch.manual_seed(0)
    with torch.no_grad():
        criterion = MGLoss(cfg)
        _, terms = criterion(build_model(cfg)(batch["image"]), batch)
    assert term in criterion.terms and 0.0 < terms[term] < ceiling
    assert term not in MGLoss(batch_cfg[1]).terms


def test_term_weights_scale_a_term_before_its_learned_weight(batch_cfg):
    batch, cfg = batch_cfg
    torch.manual_seed(0)
    with torch.no_grad():
        out = build_model(cfg)(batch["image"])
        plain_total, terms = MGLoss(cfg)(out, batch)
        weighted = {**cfg, "train": {**cfg["train"], "term_weights": {"offsets": 3.0}}}
        total, _ = MGLoss(weighted)(out, batch)
    gain = float(total - plain_total)  # learned weights start at 1
    assert math.isclose(gain, 2.0 * terms["offsets"], rel_tol=1e-4)
    bad = {**cfg, "train": {**cfg["train"], "term_weights": {"ofsets": 2.0}}}
    with pytest.raises(ConfigError, match="ofsets"):
        MGLoss(bad)


def _one_joint_disk(x: float, y: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Disk targets (offsets 1 x 1 x 2 x 16 x 16, mask 1 x 1 x 16 x 16) of one joint at
    input pixel (x, y), the 8 px disk the shipped student learns."""
    from trainers.targets import _keypoint_targets

    kps = np.array([[[x, y, 1.0]]], np.float32)
    heat, off = _keypoint_targets(kps, 16, 16, 8.0)
    return torch.from_numpy(off)[None], torch.from_numpy(heat)[None]


def test_vote_centroid_loss_reads_the_shared_error_not_the_spread():
    """Exact offsets cost 0; every vote 0.3 cells short in x costs 0.3; votes spread
    evenly round the joint (each cell off the middle row 0.3 wrong, the errors
    cancelling over the disk) cost nothing; and only the offsets get a gradient."""
    from nets.losses import vector_l1, vote_centroid_loss

    target, mask = _one_joint_disk(30.3, 27.9)
    logits = torch.zeros_like(mask)  # heat 0.5 everywhere
    assert float(vote_centroid_loss(logits, target, target, mask, 2.0)) < 1e-6
    shifted = target.clone()
    shifted[:, :, 0] -= 0.3
    loss = float(vote_centroid_loss(logits, shifted, target, mask, 2.0))
    assert abs(loss - 0.3) < 1e-5
    # a joint at cell (7, 7)'s centre: its disk is symmetric about that row
    target, mask = _one_joint_disk(30.0, 30.0)
    rows = torch.arange(16, dtype=torch.float32).view(16, 1)
    spread = target.clone()
    spread[:, :, 1] += 0.3 * torch.sign(rows - 7) * (mask > 0)
    assert float(vector_l1(spread, target, mask)) > 0.15  # the middle row is right
    assert float(vote_centroid_loss(logits, spread, target, mask, 2.0)) < 1e-6
    logits.requires_grad_(True)
    moved = shifted.clone().requires_grad_(True)
    target, mask = _one_joint_disk(30.3, 27.9)
    vote_centroid_loss(logits, moved, target, mask, 2.0).backward()
    assert logits.grad is None
    assert float(moved.grad.abs().sum()) > 0.0


def test_hough_bce_is_least_where_the_votes_land_on_the_joint():
    """The maps the targets vote cost least; the same disks voting 0.5 cells off
    cost more, on either side (the per-cell L1 of both would be the same)."""
    from nets.losses import hough_bce

    target, heat = _one_joint_disk(30.3, 27.9)
    valid = torch.ones(1, 16, 16)
    exact = hough_bce(hough_vote(heat, target, 2.0), heat, target, valid, 2.0)
    for shift in (-0.5, 0.5):
        moved = target.clone()
        moved[:, :, 0] += shift
        off = hough_bce(hough_vote(heat, moved, 2.0), heat, target, valid, 2.0)
        assert float(off) > float(exact) + 1e-3
