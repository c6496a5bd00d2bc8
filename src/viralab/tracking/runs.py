"""The run code logs into: opened, attached (`mlflow run`), or offered (a sweep trial), and the
config and commit every run records.

Training code computes and returns results; this is the edge that opens runs in MLflow
(STYLE: "tracking at the edges").
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Run, RunStatus
from mlflow.environment_variables import MLFLOW_RUN_ID
from omegaconf import DictConfig

from viralab.config import (
    config_yaml,
    flatten_params,
    redact,
    redact_text,
    to_safe_container,
)
from viralab.tracking.artifacts import artifact_batch
from viralab.tracking.held import log_params, send_params_early, set_tags
from viralab.tracking.store import ensure_experiment
from viralab.tracking.tags import CONFIG_ARTIFACT, ERROR, GIT_COMMIT
from viralab.tracking.writer import ClientCall, submit

SUPPRESS_URL_ENV = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"


@contextlib.contextmanager
def no_run_links() -> Iterator[None]:
    """No "View run" link printed when a run in the body ends (MLflow's own switch for it).

    Why: against a tracking server MLflow fetches the whole run again (one `runs/get` request)
    only to print that link, once per run. A sweep hides its trials' output anyway, so the
    link was fetched for nothing on every trial.
    """
    was = os.environ.get(SUPPRESS_URL_ENV)
    os.environ[SUPPRESS_URL_ENV] = "true"
    try:
        yield
    finally:
        if was is None:
            os.environ.pop(SUPPRESS_URL_ENV, None)
        else:
            os.environ[SUPPRESS_URL_ENV] = was


def create_run(experiment_id: str, run_name: str, tags: Mapping[str, Any]) -> Run:
    """Create a run with the tags `mlflow.start_run` gives one (MLflow's source tags), without
    opening it: on any thread. `open_created_run` makes it a thread's active run.

    Why: against a tracking server the creation is a request a sweep trial only waited for;
    made on another thread it overlaps the trial's sampling (Optuna, which must run on the
    sweep's own thread) and composition.
    """
    return mlflow.MlflowClient().create_run(
        experiment_id, tags=_run_tags(run_name, tags), run_name=run_name
    )


def create_run_in_background(
    experiment_id: str, run_name: str, tags: Mapping[str, Any]
) -> Future[Run]:
    """`create_run` as a background request (`writer.submit`: against a server, in the
    tracking writer process, whose ~2 ms of client Python per request then do not take the
    interpreter from what this thread does meanwhile). MLflow's source tags are resolved here,
    where the run's context is."""
    call = ClientCall(
        mlflow.get_tracking_uri(),
        "create_run",
        (experiment_id,),
        {"tags": _run_tags(run_name, tags), "run_name": run_name},
    )
    return submit(call)


def _run_tags(run_name: str, tags: Mapping[str, Any]) -> dict[str, str]:
    from mlflow.tracking.context.registry import resolve_tags

    return resolve_tags({"mlflow.runName": run_name, **{k: str(v) for k, v in tags.items()}})


def open_created_run(run: Run) -> str:
    """Make ``run`` (from `create_run`) the thread's active run, as `mlflow.start_run` does
    with the run it creates; returns its id. No request: re-opening it by id
    (`start_run(run_id=...)`) reads it and sets its status again."""
    from mlflow.tracking import fluent

    if mlflow.active_run() is not None:
        raise RuntimeError("a created run is opened only on a thread with no active run")
    # MLflow's own stack of the thread's active runs (`start_run` appends, `end_run` pops)
    fluent._active_run_stack.get().append(fluent.ActiveRun(run))
    return run.info.run_id


@contextlib.contextmanager
def tracked_run(
    *,
    experiment: str,
    run_name: str,
    nested: bool = False,
    tags: Mapping[str, str] | None = None,
) -> Iterator[Run]:
    """Open (or attach to) the run to log into; it ends FAILED if the body raises.

    Under `mlflow run`, `MLFLOW_RUN_ID` names the run the project launcher already created:
    the first top-level run attaches to it (no orphan second run) and keeps its experiment.
    A run opened while another is active becomes its child (`nested` is implied), in the
    parent's experiment; `nested=True` only forbids attaching to `MLFLOW_RUN_ID`. Inside
    `offer_active_run` (a sweep trial) the first non-nested one logs into the offered active
    run instead, and leaves ending it to whoever opened it.
    """
    parent = mlflow.active_run()
    offered = _offered_run.get()
    if offered and not nested and parent is not None and parent.info.run_id == offered[0]:
        offered.clear()  # taken: runs opened inside this one are its children
        yield from _log_into(parent, run_name, tags)
        return
    attach_id = os.environ.get("MLFLOW_RUN_ID") if not nested else None
    if attach_id and parent is None:
        run_ctx = mlflow.start_run(run_id=attach_id)
        os.environ.pop("MLFLOW_RUN_ID", None)  # consumed: later top-level runs are new runs
        mlflow.set_tag("mlflow.runName", run_name)
    elif parent is not None:
        # A run opened inside another (a sweep trial, one target of `target=all`) is its
        # child and lives in the parent's experiment, so the UI shows them together.
        run_ctx = mlflow.start_run(
            experiment_id=parent.info.experiment_id, run_name=run_name, nested=True
        )
    else:
        experiment_id = ensure_experiment(experiment)
        run_ctx = mlflow.start_run(experiment_id=experiment_id, run_name=run_name)
    with run_ctx as run:
        if tags:
            mlflow.set_tags(redact(dict(tags)))
        try:
            yield run
        except BaseException as exc:
            with contextlib.suppress(Exception):
                mlflow.set_tag(ERROR, redact_text(f"{type(exc).__name__}: {exc}")[:500])
            raise


def _log_into(run: Run, run_name: str, tags: Mapping[str, str] | None) -> Iterator[Run]:
    """`tracked_run`'s body in an offered run: the same name and tags, error tag on a raise."""
    if run.info.run_name != run_name:
        set_tags({"mlflow.runName": run_name})
    if tags:
        set_tags(redact(dict(tags)))
    try:
        yield run
    except BaseException as exc:
        with contextlib.suppress(Exception):
            set_tags({ERROR: redact_text(f"{type(exc).__name__}: {exc}")[:500]})
        raise


#: The active run a caller opened for the next `tracked_run` to log into (one-element list,
#: emptied once taken), or None.
_offered_run: ContextVar[list[str] | None] = ContextVar("viralab_offered_run", default=None)


@contextlib.contextmanager
def offer_active_run() -> Iterator[str]:
    """Offer the active run to the first top-level `tracked_run` of the body; yields its id.

    Why: a sweep opens each trial's run itself (it needs the run's id before training, and
    sets the trial's state when training returns). Handing the open run over, rather than
    re-opening it by id through `MLFLOW_RUN_ID`, saves MLflow's reads and status update of a
    resumed run, and the trial's final tags join its queued writes. The caller ends the run.
    """
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("offer_active_run() needs an active MLflow run")
    token = _offered_run.set([run.info.run_id])
    try:
        yield run.info.run_id
    finally:
        _offered_run.reset(token)


def git_commit(path: Path | None = None) -> str | None:
    """The commit of the working tree (with `-dirty` if it has changes), or None outside git.

    Asked once per folder and process (two `git` processes each time otherwise: a sweep asked
    them for every trial); a process that commits mid-way is not a case worth re-asking for.
    """
    return _git_commit((path or Path.cwd()).resolve())


@functools.cache
def _git_commit(cwd: Path) -> str | None:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


#: Params per `log_params` call: under MLflow's 100 per request. With async logging the queue
#: merges queued calls into one request until a merge would reach 100 params, so chunks of 100
#: each took a request of their own, and the run's queued tags a third one.
PARAMS_PER_CALL = 99


def log_config(cfg: DictConfig, extra_tags: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Log the resolved, redacted config as `config.yaml` and as flattened params; the tags
    pass through the same rules (`viralab.redaction`).

    Returns the safe container so callers can reuse it (e.g. child runs).
    """
    safe = to_safe_container(cfg)
    params = flatten_params(safe)
    # The params the run held when it was opened (an `mlflow run` launch logs its entry
    # point's before): the active run already carries them, so the store is not asked again.
    existing = mlflow.active_run().data.params
    fresh = {k: v for k, v in params.items() if k not in existing}
    items = list(fresh.items())
    for i in range(0, len(items), PARAMS_PER_CALL):
        log_params(dict(items[i : i + PARAMS_PER_CALL]))
    with artifact_batch() as artifacts:  # the run's artifact location is known: no store read
        artifacts.text(config_yaml(safe), CONFIG_ARTIFACT)
    tags: dict[str, Any] = {}
    commit = git_commit()
    if commit:
        tags[GIT_COMMIT] = commit
        if "mlflow.source.git.commit" not in mlflow.active_run().data.tags:
            tags["mlflow.source.git.commit"] = commit.removesuffix("-dirty")
    if extra_tags:
        tags.update(extra_tags)
    set_tags(redact({k: str(v) for k, v in tags.items()}))
    send_params_early()  # a held run whose writes go early: stored while it computes
    return safe


#: Trial runs ended by `end_run_later` whose status update is still on its way:
#: (run id, status, end time, the update).
_ending: list[tuple[str, str, int, Future]] = []


def end_run_later(run_id: str, status: str) -> None:
    """End ``run_id`` with ``status``: off the thread's active-run stack now (no request, as
    `open_created_run` put it there), its status update sent in the background (`writer`);
    `settle_ended_runs` waits for it.

    Why: against a tracking server a sweep trial waited for its run's status update (~8 ms of
    the server's time, after its last batch) before Optuna could record the trial and sample
    the next one, which need nothing of it. The run's data is stored before this is called;
    a process killed before the update lands leaves a RUNNING run with its `optuna.state`
    tag, which the next sweep of the study ends (`close_orphans`).
    """
    from mlflow.tracking import fluent

    stack = fluent._active_run_stack.get()
    if stack and stack[-1].info.run_id == run_id:
        if run_id in fluent.run_id_to_system_metrics_monitor:  # its monitor stops in end_run
            mlflow.end_run(status)
            return
        MLFLOW_RUN_ID.unset()  # as `mlflow.end_run` does
        stack.pop()
        fluent._last_active_run_id.set(run_id)
    end_time = int(time.time() * 1000)
    uri = mlflow.get_tracking_uri()
    if os.environ.get(SUPPRESS_URL_ENV, "").lower() == "true":  # no "View run" link, so no
        # request for it (`no_run_links` is over by the time the update is sent)
        args = (run_id, RunStatus.from_string(status), end_time, None)
        update = ClientCall(uri, "update_run_info", args, store=True)
    else:
        update = ClientCall(uri, "set_terminated", (run_id, status, end_time))
    _ending.append((run_id, status, end_time, submit(update)))


def settle_ended_runs() -> None:
    """Wait for the status updates `end_run_later` sent; one that failed is sent once more
    here, and raises if it fails again."""
    while _ending:
        run_id, status, end_time, update = _ending.pop(0)
        if update.exception() is not None:
            mlflow.MlflowClient().set_terminated(run_id, status, end_time)
