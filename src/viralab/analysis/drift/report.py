"""The drift report as MLflow artifacts: a table, a PSI bar plot and per-feature histograms.

Plots use `matplotlib.figure.Figure` directly (no pyplot state), like `viralab.analysis.plots`;
matplotlib is imported when a report is drawn, not when drift is computed at training time.
"""

from __future__ import annotations

import itertools
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from viralab.analysis.drift.binning import MEASURE_NAME
from viralab.analysis.drift.check import DriftReport, FeatureDrift
from viralab.tracking.log import log_artifact, log_dict, log_figure, log_metrics


def psi_bars(report: DriftReport, top: int = 30) -> Any:
    """Horizontal bars of the `top` highest PSIs, drifting features highlighted, with the
    threshold line."""
    from matplotlib.figure import Figure

    ranked = report.ranked[:top][::-1]  # barh draws the first item at the bottom
    fig = Figure(figsize=(9, max(3.0, 0.24 * len(ranked) + 1.4)), layout="constrained")
    ax = fig.add_subplot()
    if ranked:
        ax.barh(
            [f.feature for f in ranked],
            [f.psi for f in ranked],
            color=["#e76f51" if f.drifting else "#8ab6d6" for f in ranked],
        )
    ax.axvline(report.settings.threshold, color="black", linewidth=0.8, linestyle="--")
    ax.set_xlabel(f"PSI ({MEASURE_NAME}); dashed: threshold {report.settings.threshold:g}")
    ax.set_title(
        f"Feature drift: {len(report.drifting)}/{len(report.features)} drifting "
        f"(n={report.n_recent} recent vs {report.n_reference} training rows)"
    )
    ax.tick_params(axis="y", labelsize=7)
    return fig


def _bin_labels(edges: Sequence[float]) -> list[str]:
    if not edges:
        return ["all"]
    labels = [f"<= {edges[0]:.3g}"]
    labels += [f"({lo:.3g}, {hi:.3g}]" for lo, hi in itertools.pairwise(edges)]
    labels.append(f"> {edges[-1]:.3g}")
    return labels


def feature_histogram(feature: FeatureDrift) -> Any:
    """The training and recent proportions of one feature in the reference bins."""
    from matplotlib.figure import Figure

    labels = _bin_labels(feature.edges)
    x = np.arange(len(labels))
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.bar(x - 0.2, feature.reference, width=0.4, label="training (reference)", color="#8ab6d6")
    ax.bar(x + 0.2, feature.recent, width=0.4, label="recent", color="#e76f51")
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("share of rows")
    ax.set_title(f"{feature.feature}: PSI {feature.psi:.3f} (shift p = {feature.p_value:.2g})")
    ax.legend()
    return fig


def safe_name(feature: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in feature)[:120]


def log_report(report: DriftReport, artifact_dir: str = "drift") -> None:
    """Log `psi.csv`, `psi.json`, `psi.png` and `hist/<feature>.png` (top-N drifting) plus
    summary metrics to the active MLflow run."""

    with tempfile.TemporaryDirectory(prefix="viralab-drift-") as tmp:
        path = Path(tmp) / "psi.csv"
        report.table().to_csv(path, index=False)
        log_artifact(str(path), artifact_path=artifact_dir)
    log_dict(
        {"summary": report.summary(), "features": _json_rows(report)}, f"{artifact_dir}/psi.json"
    )
    log_figure(psi_bars(report), f"{artifact_dir}/psi.png")
    for feature in report.drifting[: report.settings.top_n]:
        log_figure(
            feature_histogram(feature), f"{artifact_dir}/hist/{safe_name(feature.feature)}.png"
        )
    s = report.summary()
    log_metrics(
        {
            "drift.max_psi": s["max_psi"],
            "drift.n_drifting": float(s["n_drifting"]),
            "drift.share_drifting": s["share_drifting"],
            "drift.n_recent": float(s["n_recent"]),
        }
    )


def _json_rows(report: DriftReport) -> list[dict[str, Any]]:
    rows = []
    for f in report.ranked:
        row = f.row()
        for key, value in row.items():
            if isinstance(value, float) and not math.isfinite(value):
                row[key] = None
        row.update(edges=list(f.edges), reference=list(f.reference), recent=list(f.recent))
        rows.append(row)
    return rows


__all__ = ["feature_histogram", "log_report", "psi_bars", "safe_name"]
