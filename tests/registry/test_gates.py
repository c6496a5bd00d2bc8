"""Promotion gates: pure rules over metrics, and the thresholds the project config sets."""

from __future__ import annotations

import math

import pytest

from viralab.errors import ConfigError
from viralab.registry.gates import (
    BaselineRule,
    GateReport,
    GateResult,
    check_baseline,
    check_metrics,
    check_thresholds,
    compare_mae,
    gate_spec,
)
from viralab.registry.markers import RegistrySettings


def test_project_config_sets_spec_thresholds_for_every_model(settings: RegistrySettings):
    pref = settings.gate_spec("preference")
    assert {t.label for t in pref.thresholds} == {"mae < 0.15", "r2 > 0.6"}
    assert pref.beats_baseline is None
    for name in ("youtube-lstm-views", "youtube-lstm-likes"):
        spec = settings.gate_spec(name)
        labels = {t.label for t in spec.thresholds}
        assert labels == {"mase_h60 < 1", "relative_mae_h60 <= 1"}
        assert spec.beats_baseline == BaselineRule(
            "mae", "best_baseline_mae", "viralab.beats_naive"
        )
    # comments can at best tie persistence: "no worse than the best naive baseline"
    comments = settings.gate_spec("youtube-lstm-comments")
    assert {t.label for t in comments.thresholds} == {
        "mase_h60 < 1",
        "relative_mae_h60 <= 1",
        "relative_mae <= 1",
    }
    assert comments.beats_baseline is None
    assert settings.mode == "alias"
    assert settings.champion_comparison.enabled
    assert settings.champion_comparison.eval_artifact == "eval/test_set.parquet"


def test_preference_thresholds_pass_and_fail_with_figures(settings: RegistrySettings):
    spec = settings.gate_spec("preference")
    ok = check_thresholds({"mae": 0.12, "r2": 0.68}, spec)
    assert all(r.passed for r in ok)
    bad = check_thresholds({"mae": 0.15, "r2": 0.41}, spec)
    assert [r.passed for r in bad] == [False, False]  # 0.15 is not < 0.15
    assert bad[0].line() == "FAIL mae < 0.15: mae = 0.15"
    assert bad[1].detail == "r2 = 0.41"


def test_exponent_written_as_yaml_text_still_parses():
    # YAML 1.1 reads a bare 1e-4 as a string
    spec = gate_spec({"m": {"thresholds": {"mse": {"le": "1e-4"}}}}, "m")
    assert spec.thresholds[0].value == pytest.approx(1e-4)


def test_missing_or_nan_metric_fails(settings: RegistrySettings):
    spec = settings.gate_spec("preference")
    results = check_thresholds({"mae": math.nan}, spec)
    assert [r.passed for r in results] == [False, False]
    assert results[0].detail == "mae was not logged by the run"
    assert results[1].detail == "r2 was not logged by the run"


def test_forecaster_bounds_are_inclusive(settings: RegistrySettings):
    spec = settings.gate_spec("youtube-lstm-views")
    at_bound = check_metrics(
        {"mase_h60": 0.9, "relative_mae_h60": 1.0, "mae": 10, "best_baseline_mae": 11}, {}, spec
    )
    assert at_bound.passed
    over = check_metrics(
        {"mase_h60": 0.9, "relative_mae_h60": 1.01, "mae": 10, "best_baseline_mae": 11}, {}, spec
    )
    assert [r.gate for r in over.failures] == ["relative_mae_h60 <= 1"]


def test_baseline_gate_uses_metrics_then_tag():
    rule = BaselineRule()
    worse = check_baseline({"mae": 40.0, "best_baseline_mae": 12.0}, {}, rule)[0]
    assert not worse.passed and worse.detail == "mae 40 >= 12"
    # the metrics decide even when the tag says otherwise
    assert check_baseline(
        {"mae": 10.0, "best_baseline_mae": 12.0}, {"viralab.beats_naive": "false"}, rule
    )[0].passed
    by_tag = check_baseline({}, {"viralab.beats_naive": "true"}, rule)[0]
    assert by_tag.passed and "viralab.beats_naive" in by_tag.detail
    assert not check_baseline({}, {"viralab.beats_naive": "false"}, rule)[0].passed
    missing = check_baseline({"mae": 3.0}, {}, rule)[0]
    assert not missing.passed and missing.detail == "best_baseline_mae was not logged by the run"
    assert check_baseline({}, {}, None) == []


def test_compare_mae_with_tolerance():
    same = compare_mae(0.1, 0.1, 0.0, candidate="v2", champion="v1", basis="eval")
    assert same.passed
    worse = compare_mae(0.11, 0.1, 0.0, candidate="v2", champion="v1", basis="eval")
    assert not worse.passed
    assert worse.detail == "v2 MAE 0.11 > v1 MAE 0.1 on eval"
    assert compare_mae(0.11, 0.1, 0.15, candidate="v2", champion="v1", basis="eval").passed
    assert not compare_mae(math.nan, 0.1, 0.0, candidate="v2", champion="v1", basis="e").passed


def test_unconfigured_model_has_no_threshold_gates():
    report = check_metrics({"mae": 9.0}, {}, gate_spec({}, "mystery"))
    assert report.passed and report.results == ()
    assert report.notes == ("no threshold gates configured for 'mystery'",)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"mae": {"below": 0.1}}, "unknown operator 'below'"),
        ({"mse": {"le": "tiny"}}, "'tiny' is not a number"),
        ({"mae": 0.1}, "must map an operator"),
    ],
)
def test_bad_gate_config_is_a_config_error(rule, message):
    with pytest.raises(ConfigError, match=message):
        gate_spec({"m": {"thresholds": rule}}, "m")


def test_mode_must_be_alias_or_stage():
    with pytest.raises(ConfigError, match="'alias' or 'stage'"):
        RegistrySettings.from_config({"mode": "tags"})
    stage = RegistrySettings.from_config({"mode": "stage"})
    assert stage.marker("champion") == "Production"
    assert stage.marker("challenger") == "Staging"
    assert RegistrySettings().marker("challenger") == "challenger"


def test_report_summary_fits_in_a_tag():
    results = tuple(GateResult(f"gate {i}", True, "x" * 100) for i in range(100))
    summary = GateReport(results).summary()
    assert len(summary) == 5000 and summary.endswith("...")
    assert GateReport().summary() == "no gates configured"
