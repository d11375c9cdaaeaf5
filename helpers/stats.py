"""Small-sample statistics for comparing pipelines on the same questions.

    diff = stats.paired_bootstrap(hits_a, hits_b)     # per-question scores of A and B, same order
    print(diff)                                       # "+0.07 [-0.02, +0.15] (n=54): untested"
    diff.shown                                        # True only when the interval excludes zero

The course's rule (README, "How numbers are reported"): a claim "A beats B" is *shown* only when
the 95 % paired bootstrap interval of the mean difference excludes zero; otherwise it is
*untested* at this n, whatever the point estimate says. `proportion_interval` gives a Wilson
interval for one rate (e.g. 3 of 8 tasks).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

N_BOOT = 2000
SEED = 0


@dataclass(frozen=True)
class Difference:
    """Mean of A - B over paired items, with a percentile bootstrap interval."""

    mean: float
    low: float
    high: float
    n: int
    level: float = 0.95

    @property
    def shown(self) -> bool:
        """True when the interval excludes zero (A and B differ at this level)."""
        return self.low > 0 or self.high < 0

    @property
    def verdict(self) -> str:
        if not self.shown:
            return "untested"
        return "A better" if self.mean > 0 else "B better"

    def __str__(self) -> str:
        return f"{self.mean:+.3f} [{self.low:+.3f}, {self.high:+.3f}] (n={self.n}): {self.verdict}"


def paired_bootstrap(a: Sequence[float], b: Sequence[float], n_boot: int = N_BOOT, seed: int = SEED,
                     level: float = 0.95) -> Difference:
    """Bootstrap the mean of per-item differences a[i] - b[i] (the same items scored two ways)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or len(x) == 0:
        raise ValueError(f"need two equally long, non-empty lists of per-item scores; got {x.shape} and {y.shape}")
    d = x - y
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n_boot, len(d)))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Difference(float(d.mean()), float(low), float(high), len(d), level)


def proportion_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a rate successes / n (sensible even for 0 of 5 or 5 of 5)."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes} of {n}")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
