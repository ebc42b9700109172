"""Matching: how often the in-graph matcher reaches the Hungarian optimum, and its cost.

    python -m bench.matching [--quick] --json OUT [--sweep] [--decode]

For each candidate count K, on structured problems (a partial permutation of true
pairs plus sparse conflicting scores, padded candidates: what a limb-scoring network
gives), the fraction whose rounded PGD solution (the decode's settings,
`decode.pgd`) has the Hungarian optimum's total weight, the same for OpenPose's greedy,
and median solve times over all 19 limbs at once. The JSON holds exactly K,
optimal_fraction, greedy_optimal_fraction, pgd_ms and hungarian_ms.

--sweep prints the (T, N, alpha, polish rounds) table of docs/MATCHING.md on structured,
uniform random and decode-derived problems; --decode times the whole fixed-size decode
on 1- and 30-person scenes.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from bench.common import (
    machine,
    machine_line,
    main_guard,
    parser,
    time_alternating,
    time_ms,
    write_json,
)
from configs import load_config
from nets.decode import decode_fixed
from nets.matching import hungarian_match, matching_weight, solve
from tests.nets.matching_problems import (
    Problems,
    decode_problems,
    structured_problems,
    uniform_problems,
)

LIMBS = 19  # the problem size issue 3 names (the decode solves the 16 tree limbs)
TOLERANCE = 1e-5  # "reaches the optimum": total weight within this of the Hungarian's


def optimum(problems: Problems) -> torch.Tensor:
    """The Hungarian optimum's total weight of each problem."""
    A, rows, cols = problems
    return matching_weight(A.double(), hungarian_match(A, rows, cols))


def reached(
    problems: Problems, matcher: str, best: torch.Tensor | None = None, **settings: Any
) -> float:
    """Fraction of problems whose matching weighs as much as the Hungarian optimum."""
    A, rows, cols = problems
    best = optimum(problems) if best is None else best
    got = matching_weight(A.double(), solve(A, rows, cols, matcher, **settings))
    return float((got >= best - TOLERANCE).double().mean())


def solve_times(k: int, repeats: int, settings: dict) -> tuple[float, float]:
    """Median ms of the PGD matcher and of scipy's Hungarian over 19 limbs of K x K."""
    A, rows, cols = structured_problems(np.random.default_rng(k), k, LIMBS)
    pgd = time_ms(lambda: solve(A, rows, cols, "pgd", **settings), repeats)
    hungarian = time_ms(lambda: hungarian_match(A, rows, cols), repeats)
    return float(np.median(pgd)), float(np.median(hungarian))


def sweep(quick: bool) -> list[str]:
    """Markdown rows: reach fraction per (T, N, alpha, swaps) and problem family."""
    count = 40 if quick else 200
    families = {
        f"structured K={k}": structured_problems(np.random.default_rng(k), k, count)
        for k in (10, 20, 30)
    }
    families["uniform K=30"] = uniform_problems(np.random.default_rng(30), 30, count)
    families["decode (noisy maps)"] = decode_problems(10 if quick else 100)
    grid = itertools.product((10, 20, 50), (2, 5, 10), (0.01, 0.1, 1.0, 3.0), (0, 5))
    if quick:
        grid = [(20, 5, 0.01, 0), (50, 5, 0.01, 0), (20, 5, 1.0, 0), (20, 5, 1.0, 5)]
    best = {name: optimum(p) for name, p in families.items()}
    rows = [
        "| T | N | alpha | polish | " + " | ".join(families) + " |",
        "|---|---|---|---|" + "---|" * len(families),
    ]
    for steps, inner, alpha, swaps in tqdm(list(grid), desc="sweep"):
        settings = dict(steps=steps, inner_steps=inner, alpha=alpha, swaps=swaps)
        cells = [
            f"{reached(p, 'pgd', best[name], **settings):.3f}"
            for name, p in families.items()
        ]
        rows.append(
            f"| {steps} | {inner} | {alpha} | {swaps} | " + " | ".join(cells) + " |"
        )
    greedy = [f"{reached(p, 'greedy', best[n]):.3f}" for n, p in families.items()]
    rows.append("| greedy | | | | " + " | ".join(greedy) + " |")
    return rows


def decode_times(repeats: int) -> dict[str, float]:
    """Median ms of decode_fixed (batch 1, default config, eager) on a 1-person and a
    30-person scene, timed alternately so a busy CPU slows both alike."""
    from trainers.synth import generate_scene
    from trainers.targets import encode, perfect_maps

    cfg = load_config()
    maps = {}
    for people in (1, 30):
        scene = generate_scene(people, size=cfg["input_size"], people=(people, people))
        maps[people] = perfect_maps([encode(scene, cfg)], cfg)
    calls = {
        f"{people} people, {matcher}": (lambda m=m, k=matcher: decode_fixed(m, cfg, k))
        for matcher in ("pgd", "greedy", "hungarian")
        for people, m in maps.items()
    }
    with torch.inference_mode():
        times = time_alternating(calls, repeats, warmup=1)
    return {name: float(np.median(ms)) for name, ms in times.items()}


def run() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument(
        "--sweep",
        action="store_true",
        help="also print the settings table of docs/MATCHING.md",
    )
    ap.add_argument(
        "--decode",
        action="store_true",
        help="also time the whole decode for 1 and 30 people",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    info = machine()
    settings = load_config()["decode"]["pgd"]
    ks = [1, 2, 5, 10, 20, 30] if args.quick else [1, 2, 3, 5, 8, 10, 15, 20, 25, 30]
    count = 50 if args.quick else 300
    repeats = 5 if args.quick else 20
    record: dict[str, list] = {
        key: []
        for key in (
            "K",
            "optimal_fraction",
            "greedy_optimal_fraction",
            "pgd_ms",
            "hungarian_ms",
        )
    }
    for k in tqdm(ks, desc="K"):
        problems = structured_problems(np.random.default_rng(1000 + k), k, count)
        pgd_ms, hungarian_ms = solve_times(k, repeats, settings)
        record["K"].append(k)
        record["optimal_fraction"].append(
            round(reached(problems, "pgd", **settings), 4)
        )
        record["greedy_optimal_fraction"].append(round(reached(problems, "greedy"), 4))
        record["pgd_ms"].append(round(pgd_ms, 3))
        record["hungarian_ms"].append(round(hungarian_ms, 3))
    write_json(record, args.json)
    print(machine_line(info))
    print(f"decode.pgd = {settings}")
    for i, k in enumerate(record["K"]):
        print(
            f"K={k:2d}: PGD optimal {record['optimal_fraction'][i]:.3f}, greedy "
            f"{record['greedy_optimal_fraction'][i]:.3f}; PGD {record['pgd_ms'][i]:.2f}"
            f" ms, Hungarian {record['hungarian_ms'][i]:.2f} ms (19 limbs)"
        )
    if args.decode:
        for name, ms in decode_times(3 if args.quick else 15).items():
            print(f"decode_fixed, {name}: {ms:.1f} ms")
    if args.sweep:
        print("\n".join(sweep(args.quick)))


if __name__ == "__main__":
    main_guard(run)
