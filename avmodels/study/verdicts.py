"""How sure a comparison of accuracies is: n, the difference and a 95 % interval.

A :class:`Measure` is a linear combination of measured :class:`Score` s (an accuracy, an Avg,
an RI, or a difference of two of them). Its interval is a paired bootstrap over test clips
when every score carries per-clip values of the same clips (seeded, so deterministic);
otherwise it is built from exact binomial (Clopper-Pearson) intervals of each accuracy,
combined in the worst direction (conservative; no pairing is assumed).

A check asks whether ``x - y + margin > 0``. Its verdict is ``"not held"`` for a tie (a tie is
no win), ``"within noise"`` when the interval of ``x - y + margin`` spans zero, else
``"held"`` or ``"not held"`` by the sign of the difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

RESAMPLES = 4000
SEED = 0
LEVEL = 0.95
HELD, NOT_HELD, NOISE = "held", "not held", "within noise"


@dataclass(frozen=True, eq=False)
class Score:
    """One measured number: its value, clips ``n`` and optional per-clip values.

    ``per_clip`` (n,) averages to ``value`` (e.g. 100 x correctness, in test-clip order);
    ``key`` names the measurement, so one measurement used twice counts once.
    """

    value: float
    n: int
    per_clip: np.ndarray | None = None
    key: str = ""


@dataclass(frozen=True)
class Measure:
    """``value`` (the number shown) and the scores it is made of: ``sum(w * score)``."""

    value: float
    terms: tuple[tuple[float, Score], ...]

    @staticmethod
    def of(score: Score) -> Measure:
        return Measure(score.value, ((1.0, score),))

    @staticmethod
    def combine(parts: Sequence[tuple[float, Measure]], value: float | None = None) -> Measure:
        """``sum(w * m)`` over ``parts``; ``value`` replaces the computed one (a printed cell)."""
        terms = tuple((w * v, s) for w, m in parts for v, s in m.terms)
        computed = sum(w * m.value for w, m in parts)
        return Measure(computed if value is None else float(value), terms)

    def __sub__(self, other: Measure) -> Measure:
        return Measure.combine([(1.0, self), (-1.0, other)])


@dataclass(frozen=True)
class Check:
    """One comparison: ``x - y`` with its interval; ``margin`` is added before deciding."""

    text: str
    n: int
    diff: float
    low: float
    high: float
    method: str
    margin: float = 0.0

    @property
    def tie(self) -> bool:
        return math.isclose(self.diff + self.margin, 0.0, abs_tol=1e-9)

    @property
    def noisy(self) -> bool:
        return self.low + self.margin <= 0.0 <= self.high + self.margin

    def verdict(self, point_only: bool = False) -> str:
        """Decided on the interval, or on the point difference alone (``point_only``)."""
        if self.tie:
            return NOT_HELD
        if self.noisy and not point_only:
            return NOISE
        return HELD if self.diff + self.margin > 0 else NOT_HELD

    def describe(self, point_only: bool = False) -> str:
        margin = f" (margin {self.margin:g})" if self.margin else ""
        noise = " within noise;" if point_only and self.noisy and not self.tie else ""
        return (
            f"{self.text}: n={self.n}, difference {self.diff:+.2f}{margin}, 95% "
            f"[{self.low:+.2f}, {self.high:+.2f}] ({self.method});{noise} "
            f"{self.verdict(point_only)}"
        )


def compare(text: str, x: Measure, y: Measure, margin: float = 0.0) -> Check:
    """Check ``x > y - margin``: n, the difference ``x - y`` and its 95 % interval."""
    diff = x - y
    weights: dict[int, float] = {}
    scores: dict[int, Score] = {}
    by_key: dict[str, int] = {}
    for w, s in diff.terms:  # merge one measurement used twice (e.g. None's row in two RIs)
        ident = by_key.setdefault(s.key, id(s)) if s.key else id(s)
        scores.setdefault(ident, s)
        weights[ident] = weights.get(ident, 0.0) + w
    terms = [(w, scores[i]) for i, w in weights.items() if abs(w) > 1e-12]
    n = max((s.n for s in scores.values()), default=0)
    if terms and all(s.per_clip is not None and len(s.per_clip) == n for _, s in terms):
        low, high = _bootstrap(terms, n)
        method = "paired bootstrap"
    else:
        low, high = _binomial(terms)
        method = "exact binomial"
    return Check(text, n, diff.value, diff.value + low, diff.value + high, method, margin)


def _bootstrap(terms: Sequence[tuple[float, Score]], n: int) -> tuple[float, float]:
    """Percentile offsets of the resampled mean of the per-clip combination."""
    per_clip = sum(w * np.asarray(s.per_clip, dtype=float) for w, s in terms)
    rng = np.random.default_rng(SEED)
    means = np.concatenate(
        [per_clip[rng.integers(0, n, size=(500, n))].mean(1) for _ in range(RESAMPLES // 500)]
    )
    tail = 100 * (1 - LEVEL) / 2
    low, high = np.percentile(means - per_clip.mean(), [tail, 100 - tail])
    return float(low), float(high)


def _binomial(terms: Sequence[tuple[float, Score]]) -> tuple[float, float]:
    """Worst-case sum of each accuracy's Clopper-Pearson offsets (percent)."""
    low = high = 0.0
    for w, s in terms:
        if s.n <= 0:
            return math.nan, math.nan
        k = round(s.value * s.n / 100)
        lo, hi = (100 * b - s.value for b in clopper_pearson(k, s.n))
        low += w * (lo if w > 0 else hi)
        high += w * (hi if w > 0 else lo)
    return low, high


@lru_cache(maxsize=4096)
def clopper_pearson(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Exact binomial interval of a proportion ``k / n`` (bisection on the binomial tails)."""
    if n <= 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    alpha = (1 - level) / 2
    ks = np.arange(n + 1)
    log_comb = np.array(
        [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n + 1 - i) for i in ks]
    )

    def tail(j: int, p: float) -> float:  # P(X >= j), increasing in p
        logs = log_comb[j:] + ks[j:] * math.log(p) + (n - ks[j:]) * math.log1p(-p)
        return float(np.exp(logs).sum())

    def solve(j: int, target: float) -> float:
        lo, hi = 0.0, 1.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if tail(j, mid) < target else (lo, mid)
        return (lo + hi) / 2

    lower = 0.0 if k == 0 else solve(k, alpha)
    upper = 1.0 if k == n else solve(k + 1, 1 - alpha)
    return lower, upper
