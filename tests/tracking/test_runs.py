"""Ending a run later (`end_run_later`): off the thread's stack at once, its status update in
the background, settled (and sent again once if it failed) by `settle_ended_runs`."""

from __future__ import annotations

import mlflow
import pytest

from viralab.tracking import end_run_later, settle_ended_runs
from viralab.tracking.runs import SUPPRESS_URL_ENV


@pytest.mark.parametrize("links", [True, False])
def test_a_run_ended_later_leaves_the_stack_at_once_and_gets_its_status_when_settled(
    monkeypatch: pytest.MonkeyPatch, links: bool
) -> None:
    if not links:
        monkeypatch.setenv(SUPPRESS_URL_ENV, "true")
    run = mlflow.start_run()
    run_id = run.info.run_id
    end_run_later(run_id, "KILLED")
    assert mlflow.active_run() is None  # the next run may open now
    settle_ended_runs()
    info = mlflow.get_run(run_id).info
    assert info.status == "KILLED"
    assert info.end_time is not None and info.end_time >= info.start_time


def test_a_failed_status_update_is_sent_again_when_settled_and_raises_if_it_fails_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = mlflow.MlflowClient()._tracking_client.store
    update = type(store).update_run_info
    failures = [1]

    def flaky(self: object, *args: object, **kwargs: object) -> object:
        if failures[0] > 0:
            failures[0] -= 1
            raise OSError("the server went away")
        return update(self, *args, **kwargs)

    monkeypatch.setattr(type(store), "update_run_info", flaky)
    monkeypatch.setenv(SUPPRESS_URL_ENV, "true")
    run_id = mlflow.start_run().info.run_id
    end_run_later(run_id, "FINISHED")  # the background update fails
    settle_ended_runs()  # sent again, and stored
    assert mlflow.get_run(run_id).info.status == "FINISHED"

    failures[0] = 2
    run_id = mlflow.start_run().info.run_id
    end_run_later(run_id, "FINISHED")
    with pytest.raises(OSError, match="went away"):
        settle_ended_runs()
    assert mlflow.get_run(run_id).info.status == "RUNNING"
    settle_ended_runs()  # nothing left to wait for
