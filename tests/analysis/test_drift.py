"""Feature drift: binning, PSI, the significance floor, the reference and the logged report."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest

from tests.monitor.test_triggers import blank, blank_store  # noqa: F401  (fixtures)
from viralab.analysis.drift import (
    MEASURE,
    DriftSettings,
    bin_edges,
    bin_proportions,
    build_reference,
    coarsen,
    compare,
    log_report,
    psi,
    shift_p_value,
)
from viralab.data.extraction import extract_training_records
from viralab.data.sample import generate_ratings
from viralab.errors import ConfigError
from viralab.families.preference.prepare import records_frame
from viralab.features.tabular import ANALYSIS_COLUMN, AnalysisEncoder

SHIFTED = ("production.durationSeconds", "hook.strength")


def usable(n: int, seed: int) -> list[dict[str, Any]]:
    records, _ = extract_training_records(generate_ratings(n_videos=n, seed=seed))
    return records


def shift(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Longer videos and stronger hooks: the two features `SHIFTED` move, nothing else."""
    out = copy.deepcopy(records)
    for r in out:
        analysis = r["video"]["visual_analysis"]
        analysis["production"]["durationSeconds"] *= 2.5
        analysis["hook"]["strength"] = min(10, analysis["hook"]["strength"] + 3)
    return out


def documents(records: list[dict[str, Any]]) -> pd.DataFrame:
    return records_frame(records)[[ANALYSIS_COLUMN]]


@pytest.fixture(scope="module")
def fitted() -> tuple[AnalysisEncoder, dict[str, Any]]:
    """An encoder fitted on the sample's 220 usable ratings and their drift reference."""
    X = documents(usable(220, 42))
    encoder = AnalysisEncoder().fit(X)
    return encoder, build_reference(encoder, X)


# --- pure pieces ------------------------------------------------------------------------------


def test_bin_edges_are_deciles_and_merge_for_discrete_values() -> None:
    assert bin_edges(np.arange(1, 101, dtype=float)) == pytest.approx(
        [10, 20, 30, 40, 50, 60, 70, 80, 90]
    )
    assert bin_edges(np.array([0.0, 1.0] * 50)) == [0.0, 1.0]  # a flag: bins "0" and "1"
    assert bin_edges(np.full(10, 3.0)) == [3.0]
    assert bin_edges(np.array([np.nan, np.nan])) == []
    shares, n = bin_proportions(np.array([0.0, 0.0, 1.0, np.nan]), [0.0, 1.0])
    assert n == 3 and shares.tolist() == pytest.approx([2 / 3, 1 / 3, 0.0])


def test_psi_is_zero_for_equal_distributions_and_matches_the_formula() -> None:
    assert psi([0.25] * 4, [0.25] * 4) == 0.0
    ref, cur = [0.5, 0.5], [0.8, 0.2]
    expected = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert psi(ref, cur) == pytest.approx(expected)
    assert psi([0.5, 0.5], [1.0, 0.0]) > 2  # an empty bin counts as epsilon, not ln(0)


def test_coarsen_merges_bins_until_each_expects_enough_rows() -> None:
    edges, props = coarsen([1, 2, 3, 4], [0.2] * 5, n=10, min_expected=4)
    assert edges == [2.0] and props == pytest.approx([0.4, 0.6])  # the short tail joins
    edges, props = coarsen([1, 2, 3, 4], [0.2] * 5, n=100, min_expected=5)
    assert edges == [1.0, 2.0, 3.0, 4.0] and len(props) == 5  # enough rows: unchanged
    assert sum(coarsen([1, 2, 3], [0.7, 0.1, 0.1, 0.1], n=20, min_expected=5)[1]) == (
        pytest.approx(1.0)
    )


def test_shift_p_value_separates_noise_from_a_shift_and_is_deterministic() -> None:
    ref = [0.1] * 10
    same = [0.1, 0.12, 0.08, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    moved = [0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.1, 0.2, 0.2, 0.4]
    assert shift_p_value(ref, same, n=50, n_ref=200) > 0.5
    small = shift_p_value(ref, moved, n=50, n_ref=200)  # below 0.01: parametric bootstrap
    assert small < 1e-3 and small == shift_p_value(ref, moved, n=50, n_ref=200)
    assert shift_p_value(ref, moved, n=0, n_ref=200) == 1.0


def test_drift_settings_name_the_measure_and_reject_others() -> None:
    settings = DriftSettings.from_config({"measure": "psi", "threshold": 0.2, "alpha": None})
    assert settings.threshold == 0.2 and settings.alpha is None
    assert settings.describe() == "PSI > 0.2"
    assert "p < 0.05/k" in DriftSettings().describe()
    with pytest.raises(ConfigError, match="population stability index"):
        DriftSettings.from_config({"measure": "kl"})
    with pytest.raises(ConfigError, match="fire_on"):
        DriftSettings.from_config({"fire_on": "mean"})


# --- reference and comparison on the sample -----------------------------------------------------


def test_reference_is_compact_and_covers_numeric_and_boolean_features(fitted) -> None:
    encoder, reference = fitted
    assert reference["measure"] == MEASURE and reference["n_rows"] == 220
    kinds = {spec["kind"] for spec in reference["features"].values()}
    assert kinds == {"numeric", "boolean"}
    assert set(reference["features"]) == set(encoder.numeric_) | set(encoder.boolean_)
    for spec in reference["features"].values():
        assert len(spec["proportions"]) == len(spec["edges"]) + 1
        assert sum(spec["proportions"]) == pytest.approx(1.0, abs=1e-5)
    assert len(json.dumps(reference)) < 60_000


def test_same_distribution_does_not_drift_but_a_bare_threshold_would(fitted) -> None:
    encoder, reference = fitted
    recent = documents(usable(60, 7))
    report = compare(reference, encoder, recent)
    assert report.n_recent == 60 and report.n_reference == 220
    assert not report.fired and report.drifting == []
    # spec 000's bare "PSI > 0.1" on 60 ratings: sampling noise alone crosses it widely
    bare = compare(reference, encoder, recent, DriftSettings(alpha=None))
    assert bare.fired and len(bare.drifting) > 20


def test_shifted_features_drift_with_their_figures(fitted) -> None:
    encoder, reference = fitted
    report = compare(reference, encoder, documents(shift(usable(60, 7))))
    assert report.fired
    assert {f.feature for f in report.drifting} == set(SHIFTED)
    assert report.max_feature in SHIFTED and report.max_psi > 1.0
    for feature in report.drifting:
        assert feature.psi > 0.1 and feature.p_value < 0.05 / len(report.features)
    table = report.table()
    assert list(table.columns[:5]) == ["feature", "kind", "psi", "p_value", "drifting"]
    assert table["psi"].is_monotonic_decreasing
    assert "2/" in report.figure_text() and report.max_feature in report.figure_text()
    # "share": fires only when more than that share of the features drift
    share = compare(
        reference, encoder, documents(shift(usable(60, 7))), DriftSettings(fire_on="share")
    )
    assert share.drifting and not share.fired


@pytest.mark.usefixtures("blank")
def test_report_is_logged_as_table_plots_and_metrics(fitted, tmp_path: Path) -> None:
    encoder, reference = fitted
    report = compare(reference, encoder, documents(shift(usable(60, 7))))
    with mlflow.start_run() as run:
        log_report(report)
    client = mlflow.MlflowClient()
    names = {f.path for f in client.list_artifacts(run.info.run_id, "drift")}
    assert names >= {"drift/psi.csv", "drift/psi.json", "drift/psi.png", "drift/hist"}
    hists = {f.path for f in client.list_artifacts(run.info.run_id, "drift/hist")}
    assert hists == {f"drift/hist/{name}.png" for name in SHIFTED}
    saved = json.loads(
        Path(
            client.download_artifacts(run.info.run_id, "drift/psi.json", str(tmp_path))
        ).read_text()
    )
    assert saved["summary"]["measure"] == "psi" and saved["summary"]["n_drifting"] == 2
    assert saved["features"][0]["feature"] in SHIFTED
    metrics = client.get_run(run.info.run_id).data.metrics
    assert metrics["drift.n_drifting"] == 2 and metrics["drift.max_psi"] > 1.0
