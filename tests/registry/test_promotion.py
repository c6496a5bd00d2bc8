"""Promotion and rollback: gates first, then the marker moves and who/when/why is recorded."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest
from typer.testing import CliRunner

from tests.registry.kit import GOOD_FORECAST, GOOD_PREFERENCE, RegistryKit
from viralab.promotion.commands import EXIT_ERROR, EXIT_REFUSED, app
from viralab.promotion.events import read_events
from viralab.promotion.promote import PromotionRefused, promote, rollback
from viralab.registry.client import RegistryError
from viralab.registry.sync import sync_registry

runner = CliRunner()


def aliases(kit: RegistryKit, model: str = "preference") -> dict[str, int]:
    return dict(kit.client.get_registered_model(model).aliases)


def tags(kit: RegistryKit, version: int | str, model: str = "preference") -> dict[str, str]:
    return dict(kit.client.get_model_version(model, str(version)).tags)


def test_promote_records_who_when_why(kit, settings, user):
    kit.quick_version("preference", GOOD_PREFERENCE)
    result = runner.invoke(app, ["promote", "preference", "1", "--to", "champion"])
    assert result.exit_code == 0, result.output
    assert "PASS mae < 0.15: mae = 0.11" in result.stdout
    assert "PASS r2 > 0.6: r2 = 0.72" in result.stdout
    assert "no current champion" in result.stdout
    assert "preference version 1 is now the champion" in result.stdout
    assert aliases(kit) == {"champion": 1}
    t = tags(kit, 1)
    assert t["viralab.promoted_to"] == "champion"
    assert t["viralab.promoted_by"] == user
    assert datetime.fromisoformat(t["viralab.promoted_at"]).utcoffset().total_seconds() == 0
    assert t["viralab.promotion_reason"] == "gates passed"
    assert t["viralab.promotion_forced"] == "false"
    (event,) = read_events("preference")
    assert (event["actor"], event["source"], event["kind"]) == (user, "cli", "promotion")
    assert (event["from_version"], event["to_version"], event["marker"]) == (None, 1, "champion")
    assert event["gates"]["passed"] and event["reason"] == "gates passed"


def test_threshold_refusal_names_gate_and_figures(kit):
    kit.quick_version("preference", {**GOOD_PREFERENCE, "mae": 0.21, "r2": 0.45})
    result = runner.invoke(app, ["promote", "preference", "1", "--to", "champion"])
    assert result.exit_code == EXIT_REFUSED
    assert "FAIL mae < 0.15: mae = 0.21" in result.stderr
    assert "FAIL r2 > 0.6: r2 = 0.45" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: refused to make preference version 1 the champion: 2 gate(s)")
    assert "--force --reason" in last and "Traceback" not in result.output
    assert aliases(kit) == {}


def test_forecaster_must_beat_the_naive_baseline(kit, settings):
    kit.quick_version("youtube-lstm-views", {**GOOD_FORECAST, "mae": 40.0})
    with pytest.raises(PromotionRefused) as refused:
        promote(kit.client, settings, "youtube-lstm-views", 1, "challenger")
    (failure,) = refused.value.report.failures
    assert failure.gate == "beats naive baseline (mae < best_baseline_mae)"
    assert failure.detail == "mae 40 >= 15"


def test_force_with_reason_overrides_and_is_recorded(kit, user):
    kit.quick_version("preference", {**GOOD_PREFERENCE, "mae": 0.21})
    no_reason = runner.invoke(app, ["promote", "preference", "1", "--to", "champion", "--force"])
    assert no_reason.exit_code == EXIT_ERROR
    assert no_reason.stderr.strip() == (
        "error: --force needs --reason '...': the override is recorded with why"
    )
    forced = runner.invoke(
        app,
        ["promote", "preference", "1", "--to", "champion", "--force", "--reason", "hotfix"],
    )
    assert forced.exit_code == 0, forced.output
    assert "FORCED past 1 failed gate(s)" in forced.stdout
    t = tags(kit, 1)
    assert t["viralab.force_reason"] == "hotfix"
    assert t["viralab.promotion_reason"] == "hotfix"
    assert t["viralab.promotion_forced"] == "true"
    assert "FAIL mae < 0.15: mae = 0.21" in t["viralab.gates"]
    assert aliases(kit) == {"champion": 1}


def test_challenger_beats_champion_on_champion_eval_set(kit, settings, user):
    kit.model_version("preference", GOOD_PREFERENCE, slope=1.3)  # v1: biased
    kit.model_version("preference", GOOD_PREFERENCE, slope=1.0)  # v2: exact
    promote(kit.client, settings, "preference", 1, "champion")
    promote(kit.client, settings, "preference", 2, "challenger")
    assert aliases(kit) == {"champion": 1, "challenger": 2}

    outcome = promote(kit.client, settings, "preference", "challenger", "champion")
    comparison = outcome.report.results[-1]
    assert comparison.gate == "not worse than champion" and comparison.passed
    assert "champion version 1 MAE" in comparison.detail
    assert "on the champion's eval/test_set.parquet (n=40)" in comparison.detail
    assert aliases(kit) == {"champion": 2}  # the challenger alias left with the promotion
    last = read_events("preference", "champion")[-1]
    assert (last["from_version"], last["to_version"]) == (1, 2)

    # the old champion, now worse, cannot come back through promote without --force
    with pytest.raises(PromotionRefused, match="not worse than champion"):
        promote(kit.client, settings, "preference", 1, "champion")


def test_worse_challenger_is_refused_with_both_maes(kit, settings):
    kit.model_version("preference", GOOD_PREFERENCE, slope=1.0)
    kit.model_version("preference", GOOD_PREFERENCE, slope=1.5)
    promote(kit.client, settings, "preference", 1, "champion")
    result = runner.invoke(app, ["promote", "preference", "2", "--to", "champion"])
    assert result.exit_code == EXIT_REFUSED
    assert "FAIL not worse than champion: version 2 MAE" in result.stderr
    assert "> champion version 1 MAE" in result.stderr
    assert aliases(kit) == {"champion": 1}


def test_missing_eval_set_falls_back_to_logged_mae(kit, settings):
    kit.quick_version("preference", {**GOOD_PREFERENCE, "mae": 0.10})
    kit.quick_version("preference", {**GOOD_PREFERENCE, "mae": 0.12})
    promote(kit.client, settings, "preference", 1, "champion")
    with pytest.raises(PromotionRefused) as refused:
        promote(kit.client, settings, "preference", 2, "champion")
    report = refused.value.report
    assert report.notes[-1] == (
        "champion run has no eval/test_set.parquet: compared the runs' logged mae instead"
    )
    assert report.failures[0].detail.startswith("version 2 MAE 0.12 > champion version 1 MAE 0.1")


def test_rollback_returns_to_previous_champion(kit, settings, user):
    for mae in (0.10, 0.09, 0.08):
        kit.quick_version("preference", {**GOOD_PREFERENCE, "mae": mae})
    for version in (1, 2, 3):
        promote(kit.client, settings, "preference", version, "champion")
    assert read_events("preference", "champion")[-1]["from_version"] == 2

    result = runner.invoke(app, ["rollback", "preference", "--reason", "bad live MAE"])
    assert result.exit_code == 0, result.output
    assert "champion comparison skipped" in result.stdout
    assert "preference version 2 is now the champion" in result.stdout
    assert aliases(kit) == {"champion": 2}
    t2, t3 = tags(kit, 2), tags(kit, 3)
    assert t2["viralab.promotion_kind"] == "rollback"
    assert t2["viralab.rolled_back_from"] == "3"
    assert t2["viralab.promotion_reason"] == "bad live MAE"
    assert t3["viralab.rolled_back_reason"] == "bad live MAE"
    assert t3["viralab.rolled_back_by"] == user
    history = [(e["kind"], e["to_version"]) for e in read_events("preference")]
    assert history == [("promotion", 1), ("promotion", 2), ("promotion", 3), ("rollback", 2)]
    assert read_events("preference")[-1]["reason"] == "bad live MAE"

    rollback(kit.client, settings, "preference")  # walks further back: 2 replaced 1
    assert aliases(kit) == {"champion": 1}
    with pytest.raises(RegistryError, match="no previous champion recorded"):
        rollback(kit.client, settings, "preference")


def test_rollback_follows_events_not_stale_tags(kit, settings):
    for _ in range(3):
        kit.quick_version("preference", GOOD_PREFERENCE)
    for version in (1, 2):
        promote(kit.client, settings, "preference", version, "champion")
    # a reviewer (through the server app: source ui) re-promotes 1, then the CLI promotes 3
    promote(kit.client, settings, "preference", 1, "champion", source="ui", user="ann")
    promote(kit.client, settings, "preference", 3, "champion")
    kit.client.set_model_version_tag("preference", "3", "viralab.previous_champion", "2")
    outcome = rollback(kit.client, settings, "preference")
    assert outcome.version == "1" and aliases(kit) == {"champion": 1}


def test_rollback_without_a_recorded_move_is_refused(kit, settings):
    kit.quick_version("preference", GOOD_PREFERENCE)
    kit.quick_version("preference", GOOD_PREFERENCE)
    promote(kit.client, settings, "preference", 1, "champion")
    kit.client.set_registered_model_alias("preference", "champion", "2")  # unguarded UI
    with pytest.raises(RegistryError, match="no event shows what version 2 replaced"):
        rollback(kit.client, settings, "preference")
    assert aliases(kit) == {"champion": 2}


def test_stage_mode_promotion_archives_the_previous_production(kit, stage_settings, user):
    kit.quick_version("preference", GOOD_PREFERENCE)
    kit.quick_version("preference", GOOD_PREFERENCE)
    result = runner.invoke(
        app, ["promote", "preference", "1", "--to", "champion", "--mode", "stage"]
    )
    assert result.exit_code == 0, result.output
    assert "stage 'Production'" in result.stdout
    promote(kit.client, stage_settings, "preference", 2, "challenger")
    assert kit.client.get_model_version("preference", "2").current_stage == "Staging"
    promote(kit.client, stage_settings, "preference", 2, "champion")
    stages = {v.version: v.current_stage for v in kit.client.search_model_versions()}
    assert stages == {1: "Archived", 2: "Production"}
    last = read_events("preference", "Production")[-1]
    assert (last["from_version"], last["to_version"]) == (1, 2)
    rollback(kit.client, stage_settings, "preference")
    assert kit.client.get_model_version("preference", "1").current_stage == "Production"
    assert aliases(kit) == {}  # stage mode never touches aliases


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["alias", "stage"])
def test_promotion_reaches_the_mirror(kit, settings, pg_url, mode):
    chosen = replace(settings, mode=mode)
    kit.quick_version("preference", GOOD_PREFERENCE)
    kit.quick_version("preference", GOOD_PREFERENCE)
    promote(kit.client, chosen, "preference", 1, "champion")
    sync_registry(chosen, pg_url)
    promote(kit.client, chosen, "preference", 2, "champion")
    result = sync_registry(chosen, pg_url)
    assert (result.activated, result.deactivated) == (1, 1)
    assert result.active == {"preference": 2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["promote", "nope", "1", "--to", "champion"], "error: unknown model 'nope'"),
        (["promote", "preference", "9", "--to", "champion"], "error: unknown version 9"),
        (["promote", "preference", "gold", "--to", "champion"], "error: unknown version 'gold'"),
        (["promote", "preference", "1", "--to", "king"], "error: unknown alias 'king'"),
        (["rollback", "preference"], "error: model 'preference' has no champion (alias"),
        (["rollback", "nope"], "error: unknown model 'nope'"),
    ],
)
def test_unknown_names_are_one_line_errors(kit, args, message):
    kit.quick_version("preference", GOOD_PREFERENCE)
    result = runner.invoke(app, args)
    assert result.exit_code == EXIT_ERROR
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_dry_run_changes_nothing(kit):
    kit.quick_version("preference", GOOD_PREFERENCE)
    result = runner.invoke(app, ["promote", "preference", "1", "--to", "champion", "--dry-run"])
    assert result.exit_code == 0 and "dry run: preference version 1 would become" in result.stdout
    assert aliases(kit) == {} and "viralab.promoted_to" not in tags(kit, 1)


def test_promoting_the_current_holder_is_a_no_op(kit, settings):
    kit.quick_version("preference", GOOD_PREFERENCE)
    promote(kit.client, settings, "preference", 1, "champion")
    outcome = promote(kit.client, settings, "preference", "champion", "champion")
    assert not outcome.changed
    with pytest.raises(RegistryError, match="is the champion; it cannot also be the challenger"):
        promote(kit.client, settings, "preference", 1, "challenger")
