"""bench.equivalence: a decode dump matches itself, and compare finds a change."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.equivalence import _pack, _unpack, main

ROOT = Path(__file__).resolve().parents[2]


def _dump(tiny: dict[str, str], inputs: Path, out: Path, runtime: str) -> dict:
    args = ["decode", "--tree", str(ROOT), "--inputs", str(inputs)]
    args += ["--checkpoint", tiny["checkpoint"], "--out", str(out)]
    assert main([*args, "--runtime", runtime]) == 0
    return json.loads(out.read_text())


def test_decode_dumps_compare_equal_and_a_moved_keypoint_is_reported(
    tiny: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    inputs = tmp_path / "in.npz"
    np.savez(inputs, **{"image/noise": rng.random((1, 3, 64, 64), np.float32)})
    a = _dump(tiny, inputs, tmp_path / "a.json", "torch")
    _dump(tiny, inputs, tmp_path / "b.json", "onnxruntime")
    item = a["items"]["image: noise"]
    assert set(item) == {"people", "keypoints", "person_scores", "person_valid"} | {
        "instances",
        "parts",
    }
    assert _unpack(item["instances"]).shape == (64, 64)
    assert main(["compare", str(tmp_path / "a.json"), str(tmp_path / "a.json")]) == 0
    assert "summary: 1 inputs; max keypoint |d| 0 px" in capsys.readouterr().out

    valid = _unpack(item["person_valid"]).astype(bool)
    valid[0] = True  # a person for sure, so a moved keypoint counts
    keypoints = _unpack(item["keypoints"]).copy()
    keypoints[0, 3, 0] += 2.5
    item["person_valid"], item["keypoints"] = _pack(valid), _pack(keypoints)
    (tmp_path / "c.json").write_text(json.dumps(a))
    assert main(["compare", str(tmp_path / "a.json"), str(tmp_path / "c.json")]) == 1
    out = capsys.readouterr().out
    assert "keypoints max |d| 2.5 px" in out


def _feed(path: Path, track_id: int) -> Path:
    person = {
        "track_id": track_id,
        "score": 0.5,
        "box": [0, 0, 1, 1],
        "keypoints": [[1.0, 2.0, 0.9]] * 17,
        "mask": {"size": [2, 2], "counts": "04"},
        "parts": {},
    }
    path.write_text(json.dumps({"frame": 0, "people": [person]}) + "\n")
    return path


def test_feeds_differing_in_a_track_id_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _feed(tmp_path / "a.jsonl", 3), _feed(tmp_path / "b.jsonl", 4)
    assert main(["compare", str(a), str(a)]) == 0
    assert main(["compare", str(a), str(b)]) == 1
    assert "frame 0: track ids [3] vs [4]" in capsys.readouterr().out


def test_missing_input_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "nope.json", "nope.json"]) == 2
    assert capsys.readouterr().err.strip() == "error: nope.json not found"
