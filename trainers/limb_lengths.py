"""Typical limb lengths from labelled people: the numbers in body.yaml `limb_lengths`.

The decode cuts a limb far longer than its person's other limbs say it should be
(`nets.decode.prune_stretched`). Lengths are relative (left shoulder - hip = 1) and
found as a fixed point: a person's scale is the median of its limbs' length / typical
length, a limb's typical length the median of its length / scale over people with at
least 3 limbs. Medians, so foreshortened limbs and a teacher's odd joint do not move
them.

    python -m trainers.limb_lengths runs/pseudo2/annotations.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from configs import body

MIN_LIMBS = 3  # limbs a person needs for its scale to count (as in the decode)
ROUNDS = 5  # fixed-point rounds; the lengths settle to 1e-3 after 3 on pseudo2
UNIT = ("left_shoulder", "left_hip")  # the limb whose typical length is 1


def typical_lengths(keypoints: np.ndarray) -> np.ndarray:
    """[L] typical lengths (`nets.decode.limb_pairs` order) of people [N, 17, 3]
    (x, y, v; v > 0 labelled), relative to UNIT."""
    table = body()
    pairs = np.array(table["limbs"] + table["redundant_limbs"])
    unit = table["limb_names"].index(list(UNIT))
    found = keypoints[..., 2] > 0
    length = np.linalg.norm(
        keypoints[:, pairs[:, 0], :2] - keypoints[:, pairs[:, 1], :2], axis=-1
    )
    measured = found[:, pairs[:, 0]] & found[:, pairs[:, 1]]
    people = measured.sum(1) >= MIN_LIMBS
    length, measured = length[people], measured[people]
    if not len(length):
        raise ValueError(f"no person with {MIN_LIMBS} labelled limbs")
    typical = np.ones(len(pairs))
    for _ in range(ROUNDS):
        scale = np.nanmedian(np.where(measured, length / typical, np.nan), 1)
        relative = np.where(measured, length / scale[:, None], np.nan)
        typical = np.nanmedian(relative, 0)
        typical /= typical[unit]
    return typical


def read_people(path: Path) -> np.ndarray:
    """[N, 17, 3] keypoints of a COCO keypoints file's annotations."""
    data = json.loads(path.read_text())
    rows = [a["keypoints"] for a in data["annotations"] if a.get("keypoints")]
    return np.asarray(rows, np.float64).reshape(-1, 17, 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("annotations", type=Path, help="COCO keypoints JSON")
    args = parser.parse_args(argv)
    try:
        people = read_people(args.annotations)
        typical = typical_lengths(people)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        print(f"error: {args.annotations}: {exc}", file=sys.stderr)
        return 1
    print(f"# {len(people)} people of {args.annotations}")
    print(f"limb_lengths: [{', '.join(f'{v:.3f}' for v in typical)}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
