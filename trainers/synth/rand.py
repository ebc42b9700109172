"""Cheap random picks: Generator.choice validates its inputs on every call, which costs
more than drawing a whole body when done hundreds of times per scene."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def pick(rng: np.random.Generator, weights: Sequence[float]) -> int:
    """Index drawn with probability proportional to weights."""
    u = rng.random() * sum(weights)
    for i, w in enumerate(weights):
        u -= w
        if u < 0:
            return i
    return len(weights) - 1


def choose(rng: np.random.Generator, items: Sequence[T]) -> T:
    """One item, uniformly."""
    return items[int(rng.integers(len(items)))]
