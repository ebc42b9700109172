"""What every benchmark shares: its command line, the machine record, percentiles.

Every benchmark is `python -m bench.NAME [--quick] --json OUT [--doc]`: it measures
everything it reports in one run (so ratios compare like with like), notes the machine
and how busy it was, writes a JSON record and, with --doc, its section of
docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from tqdm import tqdm

from configs.cli import setup_logging

log = logging.getLogger(__name__)
K = TypeVar("K", bound=Hashable)


class BenchError(RuntimeError):
    """A benchmark cannot run as asked; its message is shown to the user as is."""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    """The machine and its load, so a reader can tell a quiet run from a shared one."""
    load = os.getloadavg()
    nproc = os.cpu_count() or 1
    return {
        "nproc": nproc,
        "cpu": cpu_model(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_avg_1m": round(load[0], 2),
        "shared_cpu": load[0] > 0.5 * nproc,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def machine_line(info: dict[str, Any]) -> str:
    """One Markdown line describing `machine()`'s record."""
    shared = (
        " — the CPU was shared with other jobs during this run (load average "
        f"{info['load_avg_1m']} at start), so absolute times are pessimistic"
        if info["shared_cpu"]
        else f" (load average {info['load_avg_1m']})"
    )
    return (
        f"Machine: {info['nproc']} x {info['cpu']}, torch {info['torch']} with "
        f"{info['torch_threads']} threads, {info['date']}{shared}."
    )


def percentiles(
    values: Sequence[float], qs: Sequence[int] = (50, 99)
) -> dict[str, float]:
    """{"p50": ..., "p99": ...} of values (0.0 for none)."""
    if not len(values):
        return {f"p{q}": 0.0 for q in qs}
    got = np.percentile(np.asarray(values, np.float64), list(qs))
    return {f"p{q}": round(float(v), 3) for q, v in zip(qs, got, strict=True)}


def time_ms(fn: Callable[[], Any], repeats: int, warmup: int = 2) -> list[float]:
    """Wall-clock milliseconds of `repeats` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1e3)
    return out


def time_turns(
    fns: dict[K, Callable[[], Any]], repeats: int, warmup: int = 2
) -> dict[K, dict[str, list[float]]]:
    """Wall and thread-CPU milliseconds ({name: {"wall": [...], "cpu": [...]}}) of
    several calls taken in turns (one run of each per round, after `warmup` untimed
    ones each), so a change in the machine's load touches them alike and their ratios
    hold on a shared CPU."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out: dict[K, dict[str, list[float]]] = {n: {"wall": [], "cpu": []} for n in fns}
    for _ in tqdm(range(repeats), desc="rounds", leave=False):
        for name, fn in fns.items():
            start, cpu = time.perf_counter(), time.thread_time()
            fn()
            out[name]["cpu"].append((time.thread_time() - cpu) * 1e3)
            out[name]["wall"].append((time.perf_counter() - start) * 1e3)
    return out


def time_alternating(
    fns: dict[str, Callable[[], Any]], repeats: int, warmup: int = 2
) -> dict[str, list[float]]:
    """Wall-clock milliseconds of `time_turns`."""
    return {n: t["wall"] for n, t in time_turns(fns, repeats, warmup).items()}


def write_json(record: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")


def parser(description: str) -> argparse.ArgumentParser:
    """The arguments every benchmark takes; a benchmark adds its own to it."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument(
        "--quick",
        action="store_true",
        help="small run (under a minute) to check the benchmark works",
    )
    ap.add_argument(
        "--json",
        metavar="OUT",
        required=True,
        help="where to write the results as JSON",
    )
    ap.add_argument(
        "--doc",
        action="store_true",
        help="also write this benchmark's section of docs/BENCHMARKS.md "
        "and its plot in docs/bench/",
    )
    return ap


def parse_and_run(
    ap: argparse.ArgumentParser, run: Callable[[argparse.Namespace], dict[str, Any]]
) -> tuple[argparse.Namespace, dict[str, Any]]:
    """A timed benchmark's main: its flags (--seconds, when given, must be positive),
    its run, its record written to --json."""
    args = ap.parse_args()
    if args.seconds is not None and args.seconds <= 0:
        raise BenchError("--seconds must be positive")
    record = run(args)
    write_json(record, args.json)
    return args, record


def main_guard(run: Callable[[], None]) -> None:
    """Run a benchmark's main; a known failure is one line on stderr and exit 1."""
    setup_logging()
    try:
        run()
    except (BenchError, FileNotFoundError, ValueError) as exc:
        log.error("%s", exc)
        sys.exit(1)
    except KeyboardInterrupt:
        log.info("interrupted")
        sys.exit(130)
