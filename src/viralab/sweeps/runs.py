"""A sweep's MLflow runs: one parent per sweep invocation, one nested child per trial.

Each trial's child run is opened here (the active run of the sweep's thread) *before*
`train(cfg)` runs, offered to the training code's `tracked_run` (`offer_active_run`), and ended
here once the trial's state is known. So the sweep knows every trial's run id up front, tags it
(`optuna.trial_number`, `optuna.state`), gives it its status, and worker processes nest their
trials under a parent they did not open. The parent is therefore handled with the client, never
pushed on MLflow's (thread-local) fluent run stack: the trial's run must be the active one.

Why the trial's run is opened with the fluent API and handed over, not created with the client
and re-opened by id (`MLFLOW_RUN_ID`): re-opening a run costs two reads and a status update
(three requests per trial against a server), and the trial's state tags now join the run's
queued writes, flushed when the run ends. A finished trial's data is in the store before
Optuna records the trial (on the embedded store its status too; against a server the status
update follows in the background, see `finish_trial_run`). As any run opened with
`mlflow.start_run`, a trial's run carries MLflow's source tags (`mlflow.source.name`,
`mlflow.source.type`, `mlflow.user`). Against a server the run is created with the client on
another thread while the trial's point is sampled (`viralab.tracking.create_run`, with the
tags `mlflow.start_run` resolves) and put on MLflow's stack of the thread's active runs as
`start_run` does (`open_created_run`): no request to re-open it.

Trial states on the child run:
    COMPLETE -> FINISHED, tag optuna.state=COMPLETE
    PRUNED   -> KILLED,   tag optuna.state=PRUNED (and optuna.pruned_at_step)
    FAIL     -> FAILED,   tag optuna.state=FAIL (viralab.error holds the message);
                KILLED when the sweep itself was interrupted (Ctrl-C, SIGTERM)
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
import optuna
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from viralab.config import redact_text
from viralab.tracking import (
    artifact_batch,
    discard_held_tag,
    early_writes_of,
    end_run_later,
    ensure_experiment,
    hold_writes,
    offer_active_run,
    set_tags,
    write_held,
)
from viralab.tracking.tags import (
    CONFIG_ARTIFACT,
    ERROR,
    FAILED_ATTR,
    INVOCATION_ATTR,
    SWEEP_BEST_RUN_ID,
    SWEEP_BEST_TRIAL,
    SWEEP_INVOCATION,
    SWEEP_PREFIX,
    SWEEP_STUDY,
)

log = logging.getLogger(__name__)

STATE_TAG = "optuna.state"
TRIAL_TAG = "optuna.trial_number"
RUN_ID_ATTR = "mlflow_run_id"
_ENDS = {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}  # the trial states ended later


def _tags(values: Mapping[str, Any]) -> list[RunTag]:
    return [RunTag(k, str(v)[:5000]) for k, v in values.items()]


@contextlib.contextmanager
def parent_run(*, experiment: str, run_name: str, tags: Mapping[str, Any]) -> Iterator[str]:
    """Open the sweep's parent run (or adopt `mlflow run`'s `MLFLOW_RUN_ID`); yield its id.

    It ends FINISHED, or FAILED (KILLED on Ctrl-C or SIGTERM) with a redacted `viralab.error`
    tag if the body raises — `tracked_run`'s contract, kept off the fluent stack (see module
    docstring).
    """
    client = MlflowClient()
    adopted = os.environ.pop("MLFLOW_RUN_ID", None)
    if adopted:
        run_id = adopted
        client.set_tag(run_id, "mlflow.runName", run_name)
    else:
        run = client.create_run(ensure_experiment(experiment), run_name=run_name)
        run_id = run.info.run_id
    client.log_batch(run_id, tags=_tags(tags))
    try:
        yield run_id
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt | SystemExit) else "FAILED"
        with contextlib.suppress(Exception):
            client.set_tag(run_id, ERROR, redact_text(f"{type(exc).__name__}: {exc}")[:500])
        with contextlib.suppress(Exception):
            client.set_terminated(run_id, status)
        raise
    client.set_terminated(run_id, "FINISHED")


def start_trial_run(
    parent_id: str, experiment_id: str, run_name: str, tags: Mapping[str, Any]
) -> str:
    """Open a trial's child run under ``parent_id`` as the thread's active run; returns its id.

    `train()` logs into it inside `adopt_run`; `finish_trial_run` ends it.
    """
    if mlflow.active_run() is not None:
        raise RuntimeError("a sweep trial must start with no active MLflow run in its thread")
    run = mlflow.start_run(
        experiment_id=experiment_id,
        run_name=run_name,
        tags={"mlflow.parentRunId": parent_id, **{k: str(v) for k, v in tags.items()}},
    )
    hold_writes(run.info.run_id)  # written in one go by `finish_trial_run`
    return run.info.run_id


@contextlib.contextmanager
def adopt_run(run_id: str | None) -> Iterator[None]:
    """`train()` inside the body logs into the trial's open run ``run_id``, not a new run."""
    if run_id is None:
        yield
        return
    active = mlflow.active_run()
    if active is None or active.info.run_id != run_id:
        raise RuntimeError(f"the trial's run {run_id} is not the active MLflow run")
    try:
        # the trial's files (config, figures, tables) go up in one round when `train()` returns
        with offer_active_run(), artifact_batch():
            yield
    finally:
        while (run := mlflow.active_run()) is not None and run.info.run_id != run_id:
            mlflow.end_run("FAILED")  # a family that left a run of its own open


def finish_trial_run(
    run_id: str | None, state: str, *, error: BaseException | None = None, step: int | None = None
) -> None:
    """Tag the trial's run with its Optuna state and end it with the matching status.

    The tags join the trial's held writes (`hold_writes`), written in one go, and this returns
    once they are stored: Optuna hears of the trial after its run holds everything. On the
    embedded store the status follows them; against a server (early writes) a failed trial's
    goes beside the last batch (`write_held(along=...)`), a finished or pruned trial's after
    it in the background (`end_run_later`): the next trial's run creation waits for it.
    A process killed in between leaves a RUNNING run with its state tag, or a FINISHED run
    Optuna never recorded; a later sweep of the study ends either (`close_orphans`).
    """
    if run_id is None:
        return
    client = MlflowClient()
    tags: dict[str, Any] = {STATE_TAG: state}
    if state == "PRUNED":
        if step is not None:
            tags["optuna.pruned_at_step"] = step
        # pruning is not an error: drop the error tag `tracked_run` set (held, or written)
        if not discard_held_tag(ERROR, run_id):
            with contextlib.suppress(Exception):
                client.delete_tag(run_id, ERROR)
    elif error is not None:
        tags[ERROR] = redact_text(f"{type(error).__name__}: {error}")[:500]
    status = "FINISHED"
    if state == "PRUNED":
        status = "KILLED"
    elif state == "FAIL":
        interrupted = isinstance(error, KeyboardInterrupt | SystemExit)
        status = "KILLED" if interrupted else "FAILED"
    ended = False

    def end() -> None:
        nonlocal ended
        ended = True
        active = mlflow.active_run()
        if active is not None and active.info.run_id == run_id:
            mlflow.end_run(status)
        else:  # not on this thread's stack (a family ended it): set the status all the same
            client.set_terminated(run_id, status)

    later = state in _ENDS and early_writes_of(run_id)
    try:
        set_tags({k: str(v)[:5000] for k, v in tags.items()}, run_id=run_id)
        write_held(run_id, along=None if later else end)
    finally:  # the run leaves the thread's stack even then: the next trial opens its own
        if later:
            end_run_later(run_id, status)
        elif not ended:
            end()


def log_sweep_start(
    run_id: str, params: Mapping[str, Any], config_yaml: str, space_yaml: str
) -> None:
    client = MlflowClient()
    existing = client.get_run(run_id).data.params
    fresh = [Param(k, str(v)[:6000]) for k, v in params.items() if k not in existing]
    for i in range(0, len(fresh), 100):
        client.log_batch(run_id, params=fresh[i : i + 100])
    client.log_text(run_id, config_yaml, CONFIG_ARTIFACT)
    client.log_text(run_id, space_yaml, "search_space.yaml")


def log_sweep_summary(
    run_id: str,
    study: optuna.Study,
    *,
    metric: str,
    key_values: Mapping[str, Any],
    counts: Mapping[str, int],
    seconds: float,
    seed: int | None,
) -> dict[str, str]:
    """Best trial, counts and plots on the parent run; returns notes (e.g. a skipped plot)."""
    client = MlflowClient()
    now = int(time.time() * 1000)
    metrics = [Metric(f"n_{k.lower()}", float(v), now, 0) for k, v in counts.items()]
    metrics.append(Metric("sweep_seconds", float(seconds), now, 0))
    done = sum(counts.values())
    if seconds > 0 and done:
        metrics.append(Metric("trials_per_minute", 60.0 * done / seconds, now, 0))
    tags: dict[str, Any] = {}
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    params: list[Param] = []
    if complete:
        best = study.best_trial
        if best.value is not None and math.isfinite(best.value):
            metrics.append(Metric(f"best_{metric}", float(best.value), now, 0))
        metrics.append(Metric("best_trial_number", float(best.number), now, 0))
        tags[SWEEP_BEST_TRIAL] = best.number
        if best.user_attrs.get(RUN_ID_ATTR):
            tags[SWEEP_BEST_RUN_ID] = best.user_attrs[RUN_ID_ATTR]
        existing = client.get_run(run_id).data.params
        params = [Param(k, str(v)) for k, v in key_values.items() if k not in existing]
    notes = log_plots(run_id, study, len(complete), seed, metric)
    tags.update({f"{SWEEP_PREFIX}{k}": v for k, v in notes.items()})
    client.log_batch(run_id, metrics=metrics, params=params, tags=_tags(tags))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trials.csv"
        study.trials_dataframe().to_csv(path, index=False)
        client.log_artifact(run_id, str(path))
    return notes


def log_plots(
    run_id: str, study: optuna.Study, n_complete: int, seed: int | None, metric: str
) -> dict[str, str]:
    """Optimisation history and parameter importances (matplotlib) as parent artifacts."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    client = MlflowClient()
    notes: dict[str, str] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's matplotlib plots are "experimental"
        if n_complete < 1:
            notes["history_plot"] = "skipped: no complete trial"
        else:
            ax = ovm.plot_optimization_history(study, target_name=metric)
            ax.figure.tight_layout()
            client.log_figure(run_id, ax.figure, "plots/optimization_history.png")
            plt.close(ax.figure)
        if n_complete < 2:
            notes["importance_plot"] = f"skipped: {n_complete} complete trial(s), 2 needed"
        else:
            try:
                evaluator = optuna.importance.FanovaImportanceEvaluator(
                    n_trees=IMPORTANCE_TREES, seed=seed
                )
                ax = ovm.plot_param_importances(study, evaluator=evaluator, target_name=metric)
                ax.figure.tight_layout()
                client.log_figure(run_id, ax.figure, "plots/param_importances.png")
                plt.close(ax.figure)
            except (ValueError, RuntimeError) as exc:  # e.g. every trial had the same params
                notes["importance_plot"] = f"skipped: {exc}"[:300]
    return notes


#: Trees of the fANOVA forest behind the parameter-importance plot (Optuna's default: 64).
#: Why: with 64 the plot took about 0.45 s of a 50-trial ridge sweep's ~0.6 s of summary,
#: with 16 about 0.12 s; the importances of a 50-trial study moved by about 0.02 (alpha
#: 0.918 -> 0.891, the order of the parameters kept).
IMPORTANCE_TREES = 16


DEAD_WORKER = (
    "the process running this trial died (no heartbeat for the grace period): "
    "Optuna failed the trial and runs it again"
)


def close_orphans(
    study: optuna.Study,
    experiment_id: str,
    *,
    grace_s: float,
    current_parent: str | None = None,
) -> list[str]:
    """End the MLflow runs a killed sweep process left RUNNING; returns their ids.

    - a trial's run whose Optuna trial is FAIL (failed as stale: its worker died) ends KILLED
      with `optuna.state=FAIL` and a `viralab.error` saying so (also when `train()` had just
      finished it: the study never got its value);
    - a trial's run left RUNNING with its `optuna.state` tag (`end_run_later`) ends as it says;
    - a parent run of this study (other than ``current_parent``) ends KILLED when none of its
      invocation's trials is running and its last trial ended (or it started) more than
      ``grace_s`` ago: its coordinator is gone, or it would have started the next trial.

    Why: otherwise the UI shows a dead sweep as running for ever. Call it after
    `optuna.storages.fail_stale_trials` (trials still inside their grace period look alive).
    """
    name = study.study_name
    client = MlflowClient()
    trials = study.get_trials(deepcopy=False)
    closed: list[str] = []
    for trial in trials:  # failed as stale: no mark of a failure in its own process
        run_id = trial.user_attrs.get(RUN_ID_ATTR)
        if trial.state != optuna.trial.TrialState.FAIL or trial.user_attrs.get(FAILED_ATTR):
            continue
        if not run_id:
            continue
        try:
            run = client.get_run(run_id)
        except Exception:  # deleted, or another store
            continue
        if STATE_TAG in run.data.tags and run.info.status != "RUNNING":
            continue  # closed before
        # RUNNING, or FINISHED by train() just before the kill, before Optuna heard of it
        client.log_batch(run_id, tags=_tags({STATE_TAG: "FAIL", ERROR: DEAD_WORKER}))
        client.set_terminated(run_id, "KILLED")
        closed.append(run_id)
    if "'" in name:  # not expressible in an MLflow filter string
        return closed
    trial_runs = client.search_runs([experiment_id], max_results=1000, filter_string=(
        f"tags.`optuna.study_name` = '{name}' AND attributes.status = 'RUNNING'"))  # fmt: skip
    for run in (r for r in trial_runs if r.data.tags.get(STATE_TAG) in _ENDS):
        client.set_terminated(run.info.run_id, _ENDS[run.data.tags[STATE_TAG]])
        closed.append(run.info.run_id)
    parents = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{SWEEP_STUDY}` = '{name}' AND attributes.status = 'RUNNING'",
        max_results=1000,
    )
    now = time.time()
    for run in parents:
        if run.info.run_id == current_parent:
            continue
        invocation = run.data.tags.get(SWEEP_INVOCATION)
        mine = [t for t in trials if invocation and t.user_attrs.get(INVOCATION_ATTR) == invocation]
        if any(t.state == optuna.trial.TrialState.RUNNING for t in mine):
            continue
        # a trial failed as stale ends "now", when it was found dead: count when it started
        stamps = [run.info.start_time / 1000.0]
        stamps += [t.datetime_start.timestamp() for t in mine if t.datetime_start]
        stamps += [
            t.datetime_complete.timestamp()
            for t in mine
            if t.datetime_complete
            and (t.state != optuna.trial.TrialState.FAIL or t.user_attrs.get(FAILED_ATTR))
        ]
        if now - max(stamps) <= grace_s:
            continue
        client.set_tag(
            run.info.run_id,
            ERROR,
            "the sweep process ended without closing this run (killed); closed by a later "
            "sweep of the same study",
        )
        client.set_terminated(run.info.run_id, "KILLED")
        closed.append(run.info.run_id)
    return closed


def run_experiment_id(run_id: str) -> str:
    """The experiment id of one run."""
    return MlflowClient().get_run(run_id).info.experiment_id


def set_run_tag(run_id: str, key: str, value: str) -> None:
    """One tag on a run by id (the parent's, from outside its run)."""
    MlflowClient().set_tag(run_id, key, value)


def has_active_run() -> bool:
    """Whether an MLflow run is active in this thread."""
    return mlflow.active_run() is not None
