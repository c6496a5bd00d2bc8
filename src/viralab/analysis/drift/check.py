"""Drift at check time: the recent rows against the version's saved reference, per feature.

PSI has a sampling floor, which the spec's bare "> 0.1" ignores: two samples of the *same*
distribution, n recent and N training rows in B bins, differ by about (1/n + 1/N) chi2(B - 1)
(Yurdakul 2018, "Statistical properties of the population stability index") — ~0.23 on
average at 50 new ratings, 176 training rows and deciles. Measured on the sample: with 60
new ratings from the same generator, 40-55 of 156 features had PSI > 0.1. So a feature counts
as drifting only when

- its PSI is above `threshold` (how large the shift is), AND
- the shift is significant: the chi-square test of homogeneity over the same bins has a
  p-value below `alpha` divided by the number of features judged (Bonferroni: the verdict is
  over all features at once); `alpha: null` keeps the bare threshold.

To keep that test valid, adjacent bins are merged until each expects `min_expected` (5) recent
rows, and p-values under 0.01 are recomputed by a seeded parametric bootstrap (the chi-square
approximation runs small in the tail for discrete features). PSI itself is computed on both
distributions smoothed by half a row per bin (Jeffreys), so an empty bin of a small sample
reads as "rare", not as ln(0). Measured on the sample (176 training rows, 20 batches of 60 new
ratings from the same generator): the verdict fired on 2 of 20; two features moved by the
tests' shift drift at p <= 5e-5 with PSI 1.8 and 3.5.

Plots use `matplotlib.figure.Figure` directly (no pyplot state), like `viralab.analysis.plots`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from viralab.analysis.drift.binning import (
    MEASURE,
    MEASURE_NAME,
    bin_proportions,
    coarsen,
    encoded_columns,
    psi,
    shift_p_value,
    smoothed,
)
from viralab.errors import ConfigError


@dataclass(frozen=True)
class DriftSettings:
    """`retrain.models.<model>.drift` as typed values (see conf/retrain/default.yaml)."""

    threshold: float = 0.1
    alpha: float | None = 0.05
    fire_on: str = "max"  # max: any drifting feature | share: more than `share` of them
    share: float = 0.1
    min_rows: int = 20
    min_expected: float = 5.0
    top_n: int = 6

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> DriftSettings:
        s = dict(section or {})
        measure = str(s.get("measure", MEASURE))
        if measure != MEASURE:
            raise ConfigError(
                f"drift.measure must be {MEASURE!r} ({MEASURE_NAME}), got {measure!r}"
            )
        fire_on = str(s.get("fire_on", "max"))
        if fire_on not in ("max", "share"):
            raise ConfigError(f"drift.fire_on must be 'max' or 'share', got {fire_on!r}")
        alpha = s.get("alpha", 0.05)
        if alpha is not None and not 0 < float(alpha) < 1:
            raise ConfigError(f"drift.alpha must lie in (0, 1) or be null, got {alpha!r}")
        return cls(
            threshold=float(s.get("threshold", 0.1)),
            alpha=None if alpha is None else float(alpha),
            fire_on=fire_on,
            share=float(s.get("share", 0.1)),
            min_rows=int(s.get("min_rows", 20)),
            min_expected=float(s.get("min_expected") or 0.0),
            top_n=int(s.get("top_n", 6)),
        )

    def describe(self) -> str:
        """The rule in a few words, e.g. "PSI > 0.1 & p < 0.05/k" (k: features judged)."""
        floor = "" if self.alpha is None else f" & p < {self.alpha:g}/k"
        scope = "" if self.fire_on == "max" else f" in > {self.share:.0%} of k"
        return f"PSI > {self.threshold:g}{floor}{scope}"


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's PSI, the figure it had to beat, and both binned distributions."""

    feature: str
    kind: str
    psi: float
    p_value: float
    drifting: bool
    edges: tuple[float, ...]
    reference: tuple[float, ...]
    recent: tuple[float, ...]
    reference_mean: float | None
    recent_mean: float

    def row(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "kind": self.kind,
            "psi": self.psi,
            "p_value": self.p_value,
            "drifting": self.drifting,
            "bins": len(self.reference),
            "reference_mean": self.reference_mean,
            "recent_mean": self.recent_mean,
        }


@dataclass(frozen=True)
class DriftReport:
    """PSI of every reference feature on the recent rows, and the verdict under `settings`."""

    settings: DriftSettings
    n_reference: int
    n_recent: int
    features: tuple[FeatureDrift, ...] = field(default_factory=tuple)

    @property
    def ranked(self) -> list[FeatureDrift]:
        return sorted(self.features, key=lambda f: f.psi, reverse=True)

    @property
    def drifting(self) -> list[FeatureDrift]:
        return [f for f in self.ranked if f.drifting]

    @property
    def max_psi(self) -> float:
        return max((f.psi for f in self.features), default=0.0)

    @property
    def max_feature(self) -> str | None:
        return self.ranked[0].feature if self.features else None

    @property
    def share_drifting(self) -> float:
        return len(self.drifting) / len(self.features) if self.features else 0.0

    @property
    def fired(self) -> bool:
        if self.settings.fire_on == "share":
            return self.share_drifting > self.settings.share
        return bool(self.drifting)

    def table(self) -> pd.DataFrame:
        rows = [f.row() for f in self.ranked]
        return pd.DataFrame(
            rows,
            columns=[
                "feature",
                "kind",
                "psi",
                "p_value",
                "drifting",
                "bins",
                "reference_mean",
                "recent_mean",
            ],
        )

    def summary(self) -> dict[str, Any]:
        s = self.settings
        return {
            "measure": MEASURE,
            "measure_name": MEASURE_NAME,
            "threshold": s.threshold,
            "alpha": s.alpha,
            "fire_on": s.fire_on,
            "share": s.share,
            "n_reference": self.n_reference,
            "n_recent": self.n_recent,
            "n_features": len(self.features),
            "n_drifting": len(self.drifting),
            "share_drifting": self.share_drifting,
            "max_psi": self.max_psi,
            "max_feature": self.max_feature,
            "fired": self.fired,
        }

    def figure_text(self) -> str:
        top = f" ({self.max_feature})" if self.max_feature else ""
        return (
            f"max PSI {self.max_psi:.3f}{top}; {len(self.drifting)}/{len(self.features)} "
            f"features drift (n={self.n_recent} recent vs {self.n_reference} training rows)"
        )


def compare(
    reference: Mapping[str, Any],
    encoder: Any,
    X: Any,
    settings: DriftSettings | None = None,
) -> DriftReport:
    """PSI of each reference feature: recent documents `X`, encoded by the version's encoder.

    A feature the encoder no longer produces is skipped (it cannot drift in what the model
    sees); so is a malformed reference entry.
    """
    settings = settings or DriftSettings()
    specs: Mapping[str, Any] = reference.get("features") or {}
    n_reference = int(reference.get("n_rows") or 0)
    columns = encoded_columns(encoder, X, list(specs))
    level = settings.alpha / len(columns) if settings.alpha is not None and columns else None
    out = []
    n_recent = 0
    for name, values in columns.items():
        spec = specs[name]
        edges = [float(e) for e in spec.get("edges") or []]
        ref = [float(p) for p in spec.get("proportions") or []]
        if len(ref) != len(edges) + 1:
            continue
        shares, n = bin_proportions(values, edges)
        n_recent = max(n_recent, n)
        if n == 0:
            continue
        if settings.min_expected:
            merged_edges, ref = coarsen(edges, ref, n, settings.min_expected)
            shares, _ = bin_proportions(values, merged_edges)
            edges = merged_edges
        ref_s = smoothed(ref, n_reference) if n_reference else np.asarray(ref)
        value = psi(ref_s, smoothed(shares, n))
        p_value = shift_p_value(ref, shares, n, n_reference)
        significant = level is None or p_value < level
        out.append(
            FeatureDrift(
                feature=name,
                kind=str(spec.get("kind", "numeric")),
                psi=value,
                p_value=p_value,
                drifting=value > settings.threshold and significant,
                edges=tuple(edges),
                reference=tuple(float(r) for r in ref),
                recent=tuple(float(c) for c in shares),
                reference_mean=spec.get("mean"),
                recent_mean=float(np.nanmean(values)),
            )
        )
    return DriftReport(settings, n_reference, n_recent, tuple(out))


__all__ = ["DriftReport", "DriftSettings", "FeatureDrift", "compare"]
