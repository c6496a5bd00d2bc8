"""Candidate vs champion on the same frozen rows, with a paired bootstrap interval.

Pure numbers in, a verdict out: `evaluation` produces the per-row errors of both versions on
the gate set, this module says how far apart they are and whether that is close enough.
Resampling rows in pairs keeps what the two models share (hard rows are hard for both) out of
the interval, so a small difference on a few hundred rows can still be told apart from noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from viralab.registry.gates import GateResult

GATE = "not worse than champion"


@dataclass(frozen=True)
class PairedComparison:
    """Candidate vs champion on the same rows: both figures, their difference and its
    percentile bootstrap interval (rows resampled in pairs, so shared hard rows cancel)."""

    metric: str
    candidate: float
    champion: float
    difference: float
    interval: tuple[float, float]
    n: int
    confidence: float


def paired_bootstrap(
    candidate_errors: np.ndarray,
    champion_errors: np.ndarray,
    *,
    scale: np.ndarray | None = None,
    metric: str = "MAE",
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> PairedComparison:
    """Compare per-row absolute errors of two models on the same rows.

    Without `scale` the figure is the mean error (MAE). With `scale` (the naive forecast's
    absolute errors on the same rows) it is sum(errors) / sum(scale), i.e. MASE: a ratio, so
    the interval comes from resampling rows, not from a normal approximation.

    Raises:
        ValueError: empty or mismatched inputs, or a scale that sums to 0.
    """
    cand = np.asarray(candidate_errors, dtype=float)
    champ = np.asarray(champion_errors, dtype=float)
    n = len(cand)
    if n == 0 or len(champ) != n or (scale is not None and len(scale) != n):
        raise ValueError(f"paired errors need equal, non-empty lengths (got {n}, {len(champ)})")
    denom = np.ones(n) if scale is None else np.asarray(scale, dtype=float)
    if not np.isfinite(cand).all() or not np.isfinite(champ).all():
        raise ValueError("errors must be finite")
    if denom.sum() <= 0:
        raise ValueError(f"the naive forecast is exact on all {n} rows: {metric} is undefined")
    rng = np.random.default_rng(seed)
    diffs = np.empty(resamples)
    chunk = max(1, 2_000_000 // n)  # bound memory for large gate sets
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        idx = rng.integers(0, n, size=(size, n))
        num = (cand[idx] - champ[idx]).sum(axis=1)
        den = denom[idx].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            diffs[start : start + size] = np.where(den > 0, num / den, np.nan)
    diffs = diffs[np.isfinite(diffs)]
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(diffs, [alpha, 1.0 - alpha])
    total = denom.sum()
    return PairedComparison(
        metric=metric,
        candidate=float(cand.sum() / total),
        champion=float(champ.sum() / total),
        difference=float((cand.sum() - champ.sum()) / total),
        interval=(float(low), float(high)),
        n=n,
        confidence=confidence,
    )


def judge_comparison(
    comparison: PairedComparison,
    tolerance: float,
    *,
    candidate: str,
    champion: str,
    basis: str,
) -> GateResult:
    """Non-inferiority: pass when the interval's upper end of (candidate - champion) stays
    within `tolerance` x the champion's figure, i.e. "not worse beyond the tolerance" holds at
    the configured confidence. The burden of proof is on the newcomer: a small gate set gives
    a wide interval, and a wide interval does not promote."""
    c = comparison
    margin = tolerance * c.champion
    low, high = c.interval
    passed = high <= margin
    slack = f" (tolerance {tolerance:.0%} = {margin:+.4g})" if tolerance else ""
    detail = (
        f"{candidate} {c.metric} {c.candidate:.4g} vs {champion} {c.metric} {c.champion:.4g} "
        f"on {basis}: difference {c.difference:+.4g}, {c.confidence:.0%} interval "
        f"[{low:+.4g}, {high:+.4g}] {'<=' if passed else '>'} {margin:+.4g}{slack}, n={c.n}"
    )
    return GateResult(
        GATE,
        passed,
        detail,
        figure=c.difference,
        threshold=margin,
        interval=c.interval,
        n=c.n,
        reference=c.champion,
        metric=c.metric,
    )
