"""trainers.limb_lengths: the typical limb lengths the decode's stretch cut reads."""

import json
from pathlib import Path

import numpy as np

from configs import body
from tests.poses import STANDING
from trainers.limb_lengths import UNIT, main, typical_lengths


def standing_lengths() -> np.ndarray:
    """The STANDING person's limb lengths relative to UNIT, limb_pairs order."""
    table = body()
    pairs = np.array(table["limbs"] + table["redundant_limbs"])
    length = np.linalg.norm(STANDING[pairs[:, 0]] - STANDING[pairs[:, 1]], axis=-1)
    return length / length[table["limb_names"].index(list(UNIT))]


def test_one_body_at_many_scales_gives_its_own_proportions():
    """People of one build at scales 0.3-3x, placed anywhere, a third of their joints
    unlabelled and one joint per person thrown far off: the medians give the build."""
    rng = np.random.default_rng(0)
    people = []
    for _ in range(200):
        xy = STANDING * rng.uniform(0.3, 3.0) + rng.uniform(0, 500, 2)
        v = (rng.random(17) > 0.33).astype(np.float32) * 2
        xy[rng.integers(17)] += 400.0
        people.append(np.concatenate([xy, v[:, None]], 1))
    typical = typical_lengths(np.stack(people))
    np.testing.assert_allclose(typical, standing_lengths(), rtol=0.05)


def test_body_yaml_has_one_typical_length_per_limb():
    table = body()
    assert len(table["limb_lengths"]) == len(table["limb_names"])
    assert all(v > 0 for v in table["limb_lengths"])


def test_cli_prints_the_yaml_line_and_refuses_a_missing_file(tmp_path: Path, capsys):
    people = [
        {
            "keypoints": np.concatenate([STANDING * s, np.full((17, 1), 2.0)], 1)
            .ravel()
            .tolist()
        }
        for s in (1.0, 2.0, 0.5)
    ]
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"annotations": people}))
    assert main([str(path)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("limb_lengths: [")
    values = [float(v) for v in line.split("[")[1].rstrip("]").split(",")]
    np.testing.assert_allclose(values, standing_lengths(), atol=1e-3)
    assert main([str(tmp_path / "missing.json")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1
