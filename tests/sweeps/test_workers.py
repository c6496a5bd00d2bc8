"""Worker processes share one study in a real PostgreSQL storage without duplicating trials."""

from __future__ import annotations

import mlflow
import optuna
import pytest

from viralab.sweeps.runner import run_sweep

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_two_workers_share_a_postgres_study_and_the_trials_add_up(pg_url: str) -> None:
    result = run_sweep(
        [
            "sweep=ridge",
            "n_trials=4",
            "workers=2",
            "data.n_videos=200",
            f"sweep.storage={pg_url}",
            "sweep.study_name=shared",
        ]
    )
    study = optuna.load_study(study_name="shared", storage=pg_url)
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]  # numbered once each
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert sorted(t.user_attrs["viralab.worker"] for t in trials) == ["1", "1", "2", "2"]
    run_ids = [t.user_attrs["mlflow_run_id"] for t in trials]
    assert len(set(run_ids)) == 4
    assert result.counts == {"COMPLETE": 4, "PRUNED": 0, "FAIL": 0}
    assert result.trial_numbers == [0, 1, 2, 3]

    parent = mlflow.get_run(result.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert "viralab-test-secret" not in parent.data.tags["viralab.sweep.storage"]
    assert parent.data.tags["viralab.sweep.storage"].startswith("postgresql+psycopg2://")
    children = mlflow.MlflowClient().search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.parent_run_id}'",
    )
    assert sorted(c.info.run_id for c in children) == sorted(run_ids)
    assert sorted(c.data.tags["optuna.trial_number"] for c in children) == ["0", "1", "2", "3"]
    assert all(c.info.status == "FINISHED" for c in children)
    best = min(children, key=lambda c: c.data.metrics["cv_mae"])
    assert parent.data.tags["viralab.sweep.best_run_id"] == best.info.run_id

    # A later sweep against the same storage resumes the shared study's numbering.
    more = run_sweep(
        ["sweep=ridge", "n_trials=1", "data.n_videos=200", f"sweep.storage={pg_url}",
         "sweep.study_name=shared"]
    )  # fmt: skip
    assert more.trial_numbers == [4]
