"""Judging multi-horizon forecasts (issue 16): naive baselines, scale-free errors, intervals.

Every model (LSTM, peers) is judged here on the same test origins, per horizon H:

- ``mae_hH``: MAE of the count at ``o + H`` in original counts;
- ``mase_hH``: per-video MAE / persistence's MAE on the same origins, averaged over videos.
  A large video's counts would dominate any pooled error; the per-video ratio is scale-free,
  so every video weighs the same (below 1: better than "the count stays where it is");
- ``relative_mae_hH``: MAE / the best naive baseline's MAE at that horizon on the same origins;
- ``coverage80_hH`` / ``width80_hH``: share of test counts inside the 80 % interval and its
  mean width (counts).

Naive baselines (from the history up to the origin; ``baseline_<name>_mae_hH``):
``persistence`` (no change), ``drift`` (last increment x H), ``mean_increment`` (mean increment
over the ``sequence_length`` window x H) and ``mean_increment_60`` (mean increment over the
last 60 minutes x H: the best naive baseline at H = 60 on the sample, issue 16).
They are computed in `models.naive_horizons` (the peers forecast with them too).

Intervals: normalized (locally adaptive) split conformal per horizon, calibrated on the
validation origins. Growth is not stationary across a video's life: the validation origins
(end of each training part) and the test origins sit at different stretches of the daily
cycle, so two things that held on validation did not hold on test (issue 16: 80 % bands
covered as little as 44 % of the sample's test counts at H = 60, 6 % at H = 240):

- *how fast the rate is changing*: ``scale`` divides residuals by H x (the last hour's rate
  plus how far the last quarter hour's rate departs from it), plus its square root for count
  noise, plus 1; where growth is turning the band widens, so scaled residuals are comparable
  across stretches where growth is steady and where it turns;
- *which way the forecast errs*: on validation the rate was mostly falling (counts below the
  forecast), on test mostly rising. Signed 10 %/90 % quantiles carried validation's direction
  into the test band; ``calibrate`` takes the 80 % quantile of the *absolute* scaled residual
  instead (symmetric band: Lei et al. 2018, "Distribution-free predictive inference"): its
  coverage depends on the size of the errors, not on which way they lean.

The method was chosen without test outcomes: calibrate on the first half of each video's
validation origins, check coverage on the second half (README, "The stats forecasters").
Under exchangeability of scaled absolute residuals it covers 80 %; the logged test coverage
says whether that held. ``SCALE`` names the scale; models store it with their quantiles and
the served pyfunc applies the one they were calibrated with (``scale(..., method=...)``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from viralab.models.naive_horizons import NAIVE, naive_forecasts, rate
from viralab.tracking.tags import (
    METRIC_COVERAGE80_H_PREFIX,
    METRIC_MAE_H_PREFIX,
    METRIC_MASE_H_PREFIX,
    METRIC_RELATIVE_MAE_H_PREFIX,
)

LEVEL = 0.8
#: the interval scale new models are calibrated with; ``"rate"`` is the one before issue 16's
#: fix (H x last hour's rate), still applied to models that stored no ``interval_scale``
SCALE = "rate_change"
SCALES = ("rate", "rate_change")


def scale(history: np.ndarray, horizons: Sequence[int], method: str = SCALE) -> np.ndarray:
    """(n, n_h) residual scale for conformal intervals: c + sqrt(c) + 1 with c = H x speed.

    ``rate_change`` (default): speed = max(rate_60, 0) + |rate_15 - rate_60|: the expected
    change plus how fast growth is turning, so the band widens where the rate is changing
    (the errors do: a forecast extends the recent rate). ``rate``: speed = max(rate_60, 0),
    the scale before issue 16's fix. Reads only the last 61 rows of ``history``: what the
    served pyfunc is guaranteed to have.
    """
    if method not in SCALES:
        raise ValueError(f"unknown interval scale {method!r}; expected one of {SCALES}")
    recent = np.asarray(history, dtype="float64")[:, -61:]
    speed = np.maximum(rate(recent, 60), 0.0)
    if method == "rate_change":
        speed = speed + np.abs(rate(recent, 15) - rate(recent, 60))
    expected = speed[:, None] * np.asarray(horizons, dtype="float64")[None, :]
    return expected + np.sqrt(expected) + 1.0


def _quantile(values: np.ndarray, q: float) -> float:
    """Conformal quantile with the finite-sample correction (n + 1)."""
    values = np.sort(values[np.isfinite(values)])
    n = len(values)
    if n == 0:
        return float("nan")
    rank = min(int(np.ceil((n + 1) * q)), n) if q >= 0.5 else max(int(np.floor((n + 1) * q)), 1)
    return float(values[rank - 1])


def calibrate(
    actual: np.ndarray, predicted: np.ndarray, scales: np.ndarray, level: float = LEVEL
) -> list[tuple[float, float]]:
    """Per horizon, (-q, q): q the ``level`` quantile of the absolute scaled residuals.

    Symmetric on purpose: signed tail quantiles would carry the calibration stretch's error
    direction (counts mostly below the forecast while growth slows) into a stretch where it
    may be the other way (module docstring). Returned as (low, high) so stored quantiles and
    ``intervals`` keep one shape for models calibrated either way.
    """
    resid = np.abs(np.asarray(actual) - np.asarray(predicted)) / np.asarray(scales)
    out = []
    for j in range(resid.shape[1]):
        q = _quantile(resid[:, j], level)
        out.append((-q, q))
    return out


def intervals(
    predicted: np.ndarray,
    scales: np.ndarray,
    quantiles: Sequence[Sequence[float]],
    last: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) counts, each (n, n_h); a counter never falls below its last count."""
    q = np.asarray(quantiles, dtype="float64")
    lower = predicted + q[None, :, 0] * scales
    upper = predicted + q[None, :, 1] * scales
    floor = np.asarray(last, dtype="float64").reshape(-1, 1)
    return np.maximum(lower, floor), np.maximum(upper, floor)


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of known actual values inside [lower, upper] (NaN actuals are left out)."""
    actual = np.asarray(actual, dtype="float64")
    known = ~np.isnan(actual)
    if not known.any():
        return float("nan")
    inside = (actual >= lower) & (actual <= upper)
    return float(inside[known].mean())


def _mae(actual: np.ndarray, predicted: np.ndarray) -> float:
    err = np.abs(np.asarray(predicted) - np.asarray(actual))
    err = err[~np.isnan(err)]
    return float(err.mean()) if err.size else float("nan")


def _per_video_ratio(
    actual: np.ndarray, predicted: np.ndarray, reference: np.ndarray, videos: np.ndarray
) -> float:
    ratios = []
    for video in np.unique(videos):
        sel = videos == video
        ref = _mae(actual[sel], reference[sel])
        mod = _mae(actual[sel], predicted[sel])
        if np.isnan(ref) or np.isnan(mod):
            continue
        ratios.append(1.0 if ref == 0 and mod == 0 else (mod / ref if ref else float("inf")))
    return float(np.mean(ratios)) if ratios else float("nan")


def horizon_report(
    actual: np.ndarray,
    predicted: np.ndarray,
    naive: Mapping[str, np.ndarray],
    horizons: Sequence[int],
    videos: np.ndarray,
    lower: np.ndarray | None = None,
    upper: np.ndarray | None = None,
) -> dict[str, float]:
    """Per-horizon metrics of one model beside the naive baselines on the same origins.

    ``actual``/``predicted``/``naive[...]``/``lower``/``upper``: (n, n_h) counts; NaN actuals
    (a horizon beyond the test part) are left out of that horizon.
    """
    out: dict[str, float] = {}
    videos = np.asarray(videos)
    for j, h in enumerate(horizons):
        a, p = actual[:, j], predicted[:, j]
        maes = {name: _mae(a, f[:, j]) for name, f in naive.items()}
        for name, value in maes.items():
            out[f"baseline_{name}_mae_h{h}"] = value
            out[f"baseline_{name}_mase_h{h}"] = _per_video_ratio(
                a, naive[name][:, j], naive["persistence"][:, j], videos
            )
        finite = {k: v for k, v in maes.items() if np.isfinite(v)}
        best = min(finite.values()) if finite else float("nan")
        mae = _mae(a, p)
        out[f"{METRIC_MAE_H_PREFIX}{h}"] = mae
        out[f"best_baseline_mae_h{h}"] = best
        out[f"{METRIC_RELATIVE_MAE_H_PREFIX}{h}"] = mae / best if best else float("nan")
        out[f"{METRIC_MASE_H_PREFIX}{h}"] = _per_video_ratio(
            a, p, naive["persistence"][:, j], videos
        )
        out[f"origins_h{h}"] = float(np.sum(~np.isnan(a)))
        if lower is not None and upper is not None:
            out[f"{METRIC_COVERAGE80_H_PREFIX}{h}"] = coverage(a, lower[:, j], upper[:, j])
            known = ~np.isnan(a)
            width = upper[known, j] - lower[known, j]
            out[f"width80_h{h}"] = float(width.mean()) if width.size else float("nan")
    return out


def best_naive_names(report: Mapping[str, float], horizons: Sequence[int]) -> dict[int, str]:
    """The naive baseline with the lowest MAE per horizon, from a ``horizon_report``."""
    out = {}
    for h in horizons:
        maes = {n: report.get(f"baseline_{n}_mae_h{h}", float("nan")) for n in NAIVE}
        out[h] = min(maes, key=lambda n: np.inf if np.isnan(maes[n]) else maes[n])
    return out


__all__ = [
    "NAIVE",
    "SCALE",
    "SCALES",
    "calibrate",
    "coverage",
    "horizon_report",
    "intervals",
    "naive_forecasts",
    "rate",
    "scale",
]
