"""The native decode engine (nets.native) against the graph engine with the exact
matcher: the same people (joint completion included: decode.complete_joints is on by
default) on the decode-oracle scenes, on noise maps and on real frames through the
shipped model; its exact matching and its fixed shapes.
"""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from configs import load_config
from configs.records import Scene
from nets.decode import (
    MIN_SCALE_LIMBS,
    PRUNE_ROUNDS,
    TIE_BREAK,
    Candidates,
    candidates,
    decode_fixed,
    limb_lengths,
    limb_pairs,
    limb_profile,
    limb_scores,
    prune_stretched,
    to_predictions,
)
from nets.model import DEFAULT_WEIGHTS, activations, load_checkpoint
from nets.native import (
    NativeDecoder,
    _limb_scores,
    _prune_stretched,
    max_weight_matching,
)
from nets.similarity import KP_MIN_SCORE
from tests.clips import squeezed_frames
from tests.poses import STANDING
from trainers.synth.compose import generate_scene
from trainers.targets import encode, perfect_maps

VIDEO = Path(__file__).resolve().parents[3] / "shared" / "data" / "video"


def small_config(size: int = 128) -> dict:
    cfg = load_config()
    cfg["input_size"] = size
    return cfg


def numpy_maps(maps: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy() for k, v in maps.items()}


def people(out: dict, i: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints [n, 17, 3] and scores of image i's valid people."""
    valid = np.asarray(out["person_valid"][i]).astype(bool)
    return np.asarray(out["keypoints"][i])[valid], np.asarray(out["person_scores"][i])[
        valid
    ]


def same_people(graph: dict, native: dict, tol_px: float = 1e-3) -> bool:
    """Whether both engines found the same people (as sets: equal scores may come in
    another order): equal counts, and each graph person has a native one with every
    joint within tol_px, the same joint scores and the same person score."""
    (kg, sg), (kn, sn) = people(graph), people(native)
    if len(kg) != len(kn):
        return False
    free = list(range(len(kn)))
    for person, score in zip(kg, sg, strict=True):
        found = [
            j
            for j in free
            if np.abs(kn[j, :, :2] - person[:, :2]).max() <= tol_px
            and np.abs(kn[j, :, 2] - person[:, 2]).max() <= 1e-5
            and abs(sn[j] - score) <= 1e-5
        ]
        if not found:
            return False
        free.remove(found[0])
    return True


def guesses(out: dict) -> int:
    """Joints of valid people that only the completion can have given (0 < score <=
    KP_MIN_SCORE: a candidate scores above decode.candidate_threshold)."""
    kps, _ = people(out)
    return int(((kps[..., 2] > 0) & (kps[..., 2] <= KP_MIN_SCORE)).sum())


def test_matching_reaches_the_optimum_on_padded_problems():
    """Exact: the total weight of scipy's optimum on random padded problems, each
    row and column used once, no pair scoring 0."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        k = 30
        W = np.zeros((k, k), np.float32)
        m, n = rng.integers(0, k + 1, size=2)
        W[:m, :n] = rng.uniform(size=(m, n)) * (rng.uniform(size=(m, n)) < 0.4)
        perm_r, perm_c = rng.permutation(k), rng.permutation(k)
        W = W[perm_r][:, perm_c]
        partner = np.empty(k, np.int64)
        max_weight_matching(W, partner)
        rows = np.flatnonzero(partner >= 0)
        cols = partner[rows]
        assert len(set(cols.tolist())) == len(cols)
        assert (W[rows, cols] > 0).all()
        r, c = linear_sum_assignment(W.astype(np.float64), maximize=True)
        assert W[rows, cols].sum(dtype=np.float64) == pytest.approx(
            W[r, c].sum(dtype=np.float64), abs=1e-5
        )


@pytest.mark.parametrize("count", [0, 1, 6])
def test_outputs_have_fixed_shapes_on_the_cell_grid(count):
    cfg = small_config()
    scene = generate_scene(10 + count, size=128, people=(count, count))
    out = NativeDecoder(cfg)(numpy_maps(perfect_maps([encode(scene, cfg)], cfg)))
    p = cfg["decode"]["max_people"]
    assert out["keypoints"].shape == (1, p, 17, 3)
    assert out["person_scores"].shape == out["person_valid"].shape == (1, p)
    assert out["instances"].shape == out["parts"].shape == (1, 32, 32)
    assert int(out["person_valid"].sum()) == scene.num_people
    assert int(out["instances"].max()) <= scene.num_people
    on_input = to_predictions(out, 4, grid="input", cells=True)[0]
    assert on_input.instances.shape == (128, 128)
    assert on_input.keypoints.shape == (scene.num_people, 17, 3)


def instances_agree(graph: dict, native: dict, stride: int) -> float:
    """Fraction of cells that both engines give to a person where they give it to the
    same one (graph maps read at the cell centres, slots matched by keypoints)."""
    g = to_predictions(graph, stride, grid="output")[0]
    n = to_predictions(native, stride, grid="output", cells=True)[0]
    lut = np.zeros(len(n.keypoints) + 1, np.int64)
    for j, person in enumerate(n.keypoints):
        err = np.abs(g.keypoints[..., :2] - person[:, :2]).max((1, 2))
        lut[j + 1] = int(err.argmin()) + 1
    both = (g.instances > 0) & (n.instances > 0)
    if not both.any():
        return 1.0
    return float((lut[n.instances][both] == g.instances[both]).mean())


@pytest.mark.slow
def test_same_people_as_the_exact_graph_decode_on_oracle_scenes():
    """All 200 decode-oracle scenes (1-3 people, as test_decode's) and 20 crowds of
    1-15: ground-truth maps through both engines, graph with matcher="hungarian"."""
    torch.set_num_threads(1)
    cfg = load_config()
    decoder = NativeDecoder(cfg)
    specs = [(1000 + s, (1, 3)) for s in range(200)]
    specs += [(2000 + s, (1, 15)) for s in range(20)]
    differ, agree, guessed = [], [], 0
    for seed, count in specs:
        scene = generate_scene(seed, size=cfg["input_size"], people=count)
        maps = perfect_maps([encode(scene, cfg)], cfg)
        graph = decode_fixed(maps, cfg, "hungarian")
        native = decoder(numpy_maps(maps))
        if not same_people(graph, native):
            differ.append(seed)
        agree.append(instances_agree(graph, native, cfg["output_stride"]))
        guessed += guesses(native)
    assert differ == []
    assert min(agree) >= 0.99
    assert guessed > 0  # the completion ran (occluded joints near other people)


@pytest.mark.parametrize("floor", [None, 0.9])
@pytest.mark.parametrize("seed", range(3))
def test_same_people_as_the_exact_graph_decode_on_noise_maps(seed, floor):
    """Uniform noise maps (32 x 32 cells): every slot holds a person, Hough votes lie
    everywhere, so nearly every absent joint is guessed; both engines agree, with the
    foreground gate (`decode.limb_foreground`, from the part maps) off and on.

    Without the vote refinement: its means, summed in another order, move the
    engines' candidates apart by ~1e-5 px, enough to break the exact ties of these
    saturated maps (every score 1) differently; test_decode checks it agrees."""
    torch.set_num_threads(1)
    cfg = small_config(128)
    cfg["decode"]["vote_refine"] = 0
    cfg["decode"]["limb_foreground"] = floor
    rng = np.random.default_rng(seed)
    h = w = 32
    maps = {
        "parts": rng.dirichlet(np.ones(16), (1, h, w)).transpose(0, 3, 1, 2),
        "heatmap": rng.random((1, 17, h, w)),
        "offsets": rng.random((1, 17, 2, h, w)) * 2 - 1,
        "limbs": rng.random((1, 25, h, w)),
        "hough": rng.random((1, 17, h, w)) ** 8,
        "dspf": rng.random((1, 2, h, w)) * 4 - 2,
    }
    maps = {k: v.astype(np.float32) for k, v in maps.items()}
    graph = decode_fixed(
        {k: torch.from_numpy(v) for k, v in maps.items()}, cfg, "hungarian"
    )
    native = NativeDecoder(cfg)(maps)
    assert same_people(graph, native)
    assert instances_agree(graph, native, cfg["output_stride"]) >= 0.99
    assert guesses(native) >= 5


@pytest.mark.slow
@pytest.mark.skipif(
    not VIDEO.is_dir() or not DEFAULT_WEIGHTS.is_file(),
    reason="needs ../shared/data/video and the shipped model",
)
def test_same_people_as_the_exact_graph_decode_on_real_frames():
    """Real clips through the shipped model: both engines decode the same maps."""
    torch.set_num_threads(1)
    model, cfg = load_checkpoint(DEFAULT_WEIGHTS)
    model.eval()
    size = int(cfg["input_size"])
    frames = squeezed_frames(VIDEO / "vtest.avi", [0, 30, 60, 90], size)
    frames += squeezed_frames(VIDEO / "two_people_occlusion.mp4", [10, 40], size)
    frames += squeezed_frames(VIDEO / "basketball_240p.mp4", [50, 150], size)
    decoder = NativeDecoder(cfg)
    found = guessed = 0
    for images in frames:
        with torch.inference_mode():
            maps = activations(model(torch.from_numpy(images)))
            graph = decode_fixed(maps, cfg, "hungarian")
        native = decoder(numpy_maps(maps))
        assert same_people(graph, native)
        assert instances_agree(graph, native, cfg["output_stride"]) >= 0.99
        found += int(native["person_valid"].sum())
        guessed += guesses(native)
    assert found > 0  # the frames hold people the model finds
    assert guessed > 0  # and joints it completes


def copied_person(shift: float, size: int) -> Scene:
    """One synthetic person and a copy of its skeleton `shift` px to the right, the
    body's pixels split between the two (what a network with two peaks per joint
    draws)."""
    scene = generate_scene(2, size=size, people=(1, 1))
    person = scene.keypoints[0]
    copy = person.copy()
    copy[:, 0] += shift
    instances = scene.instances.copy()
    right = np.arange(size)[None, :] > np.median(np.nonzero(instances == 1)[1])
    instances[(instances == 1) & right] = 2
    return dataclasses.replace(
        scene,
        keypoints=np.stack([person, copy]),
        instances=instances,
        track_ids=np.arange(2),
    )


@pytest.mark.parametrize(("shift", "kept"), [(6.0, 1), (24.0, 2)])
def test_both_engines_drop_a_duplicate_person_and_keep_close_people(shift, kept):
    """A skeleton drawn twice 6 px apart (OKS 0.8 at this 64 px scale) is one person:
    both engines keep one and give it every person cell; two people 24 px apart
    (OKS 0.1) both stay. decode.person_nms: null keeps the copy."""
    torch.set_num_threads(1)
    cfg = load_config()
    maps = perfect_maps([encode(copied_person(shift, cfg["input_size"]), cfg)], cfg)
    found = {}
    for nms in (None, cfg["decode"]["person_nms"]):
        cfg["decode"]["person_nms"] = nms
        graph = decode_fixed(maps, cfg, "hungarian")
        native = NativeDecoder(cfg)(numpy_maps(maps))
        assert same_people(graph, native)
        assert instances_agree(graph, native, cfg["output_stride"]) == 1.0
        found[nms] = to_predictions(native, cfg["output_stride"], "output", True)[0]
    off, on = found.values()
    assert len(off.keypoints) == 2
    assert len(on.keypoints) == kept
    assert np.array_equal(on.instances > 0, off.instances > 0)  # no cell lost
    if kept == 1:
        assert set(np.unique(on.instances)) == {0, 1}
        np.testing.assert_array_equal(on.keypoints[0], off.keypoints[0])


def prune_both(people: np.ndarray) -> tuple[np.ndarray, ...]:
    """Both engines' stretched-limb cut (limb_stretch 2.5, slack 2 px, scores over
    at least 12 joints, threshold 0.05) on keypoints [P, 17, 3]: graph keypoints,
    native keypoints, graph scores, native scores."""
    scores = people[..., 2].sum(-1) / np.maximum((people[..., 2] > 0).sum(-1), 12)
    scores = scores.astype(np.float32)
    valid = np.ones(len(people), bool)
    kg, sg, _ = prune_stretched(
        torch.from_numpy(people)[None], torch.from_numpy(scores)[None],
        torch.from_numpy(valid)[None], 2.5, 2.0, 12.0, 0.05,
    )  # fmt: skip
    kn, sn = people.copy(), scores.copy()
    _prune_stretched(
        kn, sn, valid, limb_pairs().numpy(), limb_lengths().numpy(), 2.5, 2.0, 12.0,
        0.05, PRUNE_ROUNDS, MIN_SCALE_LIMBS,
    )  # fmt: skip
    return kg[0].numpy(), kn, sg[0].numpy(), sn


def test_both_engines_cut_a_limb_no_person_could_have():
    """A whole standing person stays as it is; its left wrist 130 px off (the
    forearm 7x its typical length) is cut, the rest kept, the score recounted; and
    a skeleton joining one person's upper body to legs 150 px away (a crowd's
    cross-group limb) keeps the heavier piece, the upper body. With
    `decode.limb_stretch: null` nobody is cut."""
    rng = np.random.default_rng(0)
    person = np.concatenate([STANDING, rng.uniform(0.3, 0.9, (17, 1))], 1)
    stray = person.copy()
    stray[9, 0] += 130.0
    joined = person.copy()
    joined[11:, 0] += 150.0
    people = np.stack([person, stray, joined]).astype(np.float32)
    kg, kn, sg, sn = prune_both(people)
    np.testing.assert_allclose(kg, kn, atol=1e-5)
    np.testing.assert_allclose(sg, sn, atol=1e-6)
    np.testing.assert_array_equal(kn[0], people[0])
    assert np.flatnonzero(kn[1, :, 2] == 0).tolist() == [9]
    np.testing.assert_array_equal(np.delete(kn[1], 9, 0), np.delete(people[1], 9, 0))
    assert sn[1] == pytest.approx((people[1, :, 2].sum() - people[1, 9, 2]) / 16)
    assert np.flatnonzero(kn[2, :, 2] > 0).tolist() == list(range(11))
    off = prune_stretched(torch.from_numpy(people), torch.ones(3), torch.ones(3).bool(),
                          None, 2.0, 12.0, 0.05)  # fmt: skip
    assert torch.equal(off[0], torch.from_numpy(people))  # limb_stretch: null


def test_both_engines_prefer_the_stronger_of_two_candidates_on_one_spot():
    """Two left-shoulder candidates on one spot (what the vote refinement makes of two
    cells of one joint) score alike along every limb but for the tie-break: the
    stronger one's pairs score higher, by the same factor in both engines."""
    cfg = small_config(256)
    maps = perfect_maps([encode(generate_scene(3, size=256, people=(3, 3)), cfg)], cfg)
    cand = candidates(maps["hough"], maps["offsets"], 8, 0.1, 4, maps["heatmap"])
    j = 5
    copy = int(np.flatnonzero(~cand.valid[0, j].numpy())[0])
    xy, score, valid = cand.xy.clone(), cand.score.clone(), cand.valid.clone()
    xy[0, j, copy], score[0, j, copy], valid[0, j, copy] = xy[0, j, 0], 0.5, True
    graph = limb_scores(maps["limbs"], Candidates(xy, score, valid), 14, 4, 0.25)[0]
    limbs = maps["limbs"][0].numpy()
    native = np.zeros(tuple(graph.shape), np.float32)
    padded = np.empty((len(limbs) + 1, *(n + 3 for n in limbs.shape[1:])), np.float32)
    _limb_scores(
        limbs, padded, limb_pairs().numpy(), xy[0].numpy(), valid[0].numpy(),
        score[0].numpy(), *limb_profile(14, 0.25), 4.0, 0.0, TIE_BREAK,
        np.ones(limbs.shape[1:], np.float32), -1.0, native,
    )  # fmt: skip
    np.testing.assert_allclose(native, graph.numpy(), atol=1e-5)
    rows = [li for li, (a, _) in enumerate(limb_pairs().tolist()) if a == j]
    better, worse = graph[rows, 0], graph[rows, copy]
    assert (better > 0.5).any()
    assert ((better > worse) | (better == 0)).all()


def test_both_engines_never_join_a_limb_across_the_background():
    """A true limb whose middle the part head calls background (a 3 x 3-cell hole in
    the foreground) scores 0 in both engines; limbs clear of the hole keep their
    score."""
    cfg = small_config(256)
    maps = perfect_maps([encode(generate_scene(3, size=256, people=(3, 3)), cfg)], cfg)
    cand = candidates(maps["hough"], maps["offsets"], 8, 0.1, 4, maps["heatmap"])
    plain = limb_scores(maps["limbs"], cand, 14, 4, 0.25)[0]
    li, n, m = (int(v) for v in torch.nonzero(plain > 0.5)[0])
    a, b = limb_pairs()[li].tolist()
    middle = (cand.xy[0, a, n] + cand.xy[0, b, m]) / 2 / 4  # cells
    limbs = maps["limbs"][0].numpy()
    h, w = limbs.shape[1:]
    hole = np.ones((h, w), np.float32)
    cx, cy = int(middle[0]), int(middle[1])
    hole[cy - 1 : cy + 2, cx - 1 : cx + 2] = 0.0
    gated = limb_scores(
        maps["limbs"], cand, 14, 4, 0.25, torch.from_numpy(hole)[None], 0.5
    )[0]
    native = np.zeros(tuple(gated.shape), np.float32)
    padded = np.empty((len(limbs) + 1, h + 3, w + 3), np.float32)
    _limb_scores(
        limbs, padded, limb_pairs().numpy(), cand.xy[0].numpy(),
        cand.valid[0].numpy(), cand.score[0].numpy(), *limb_profile(14, 0.25), 4.0,
        0.0, TIE_BREAK, hole, 0.5, native,
    )  # fmt: skip
    np.testing.assert_allclose(native, gated.numpy(), atol=1e-5)
    assert gated[li, n, m] == 0
    kept = (plain > 0) & (gated == plain)
    assert int(kept.sum()) > 0.8 * int((plain > 0).sum())
