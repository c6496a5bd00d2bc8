"""A run's params, metrics and tags: held and written in one go, or sent early on background
threads while the run goes on (issue 18's cheaper tracking).

Why a module of its own: the held writes (`_held`) and the background pool are this
process's single shared state for them; `artifacts` hands its uploads to the same pool and
the same held runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunTag

from viralab.tracking.writer import ClientCall, background_pool, submit

log = logging.getLogger(__name__)


ASYNC_BUFFER_ENV = "MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"


@contextlib.contextmanager
def async_logging() -> Iterator[None]:
    """MLflow's asynchronous logging of params, metrics and tags for the body, flushed at exit.

    Why: each fluent call otherwise waits for its own store transaction; queued, they are merged
    into a few `log_batch` calls on MLflow's logging thread while training goes on. Ending a
    run (`set_terminated`) drains the queue first, and the flush here covers a body that
    raises, so a finished run holds everything it logged; a killed process may lose the
    batch still queued for its running run, never a finished run's data.
    """
    from mlflow.environment_variables import MLFLOW_ENABLE_ASYNC_LOGGING

    was = MLFLOW_ENABLE_ASYNC_LOGGING.get()
    if was:  # an outer async_logging (a sweep trial's) flushes, merging this body's writes
        yield  # with what it queues after (the trial's state tags)
        return
    buffering = os.environ.get(ASYNC_BUFFER_ENV)
    # With a buffering time, MLflow's logging thread waits on its stop event and then merges
    # everything queued into as few `log_batch` calls as the limits allow; without one it logs
    # each call on its own and polls its queue with a 1 s timeout, which every run end (the
    # thread is joined) waits out.
    os.environ.setdefault(ASYNC_BUFFER_ENV, "10")
    mlflow.config.enable_async_logging(True)
    try:
        yield
    finally:
        try:
            mlflow.flush_async_logging()
        finally:
            mlflow.config.enable_async_logging(was)
            if buffering is None:
                os.environ.pop(ASYNC_BUFFER_ENV, None)


@dataclass
class RunWrites:
    """A run's params, metrics and tags held until `write_held` (one `log_batch`), and the
    writes already sent for it in the background (`send_early`), joined by `write_held`."""

    params: dict[str, str] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    early: bool = False
    sent: list[Future] = field(default_factory=list)
    early_tags: set[str] = field(default_factory=set)  # tag keys sent with an early batch
    early_batches: list[Future] = field(default_factory=list)  # those batches (in `sent` too)
    after: list[Callable[[], None]] = field(default_factory=list)


#: Runs whose writes are held, by run id (see `hold_writes`).
_held: dict[str, RunWrites] = {}

#: `VIRALAB_EARLY_WRITES=1|0` forces early writes on or off; unset: on for a remote store
#: (a tracking server), off for SQLite (see `early_writes`).
EARLY_WRITES_ENV = "VIRALAB_EARLY_WRITES"


def early_writes(tracking_uri: str | None = None) -> bool:
    """Whether a held run sends its params and finished files while its body goes on.

    Why: against a tracking server a trial's ~100 params were two `log_batch` requests and
    each file an upload, all made after the training, one after the other; sent while the
    trial computes they wait on the network, not on the compute. On the embedded SQLite store
    a write is Python work that would compete with the compute for the interpreter.
    """
    forced = os.environ.get(EARLY_WRITES_ENV, "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return True
    if forced in ("0", "false", "no", "off"):
        return False
    uri = tracking_uri or mlflow.get_tracking_uri()
    return not uri.startswith(("sqlite:", "file:", "/")) and "://" in uri


def hold_writes(run_id: str, early: bool | None = None) -> bool:
    """Hold the run's params, metrics and tags logged through this module until `write_held`;
    False when they are held already (the caller then leaves writing them to whoever held).

    Why: MLflow's asynchronous logging merged them into few `log_batch` calls too, but set up
    and joined its logging threads for every run: about 18 ms a run on the embedded store,
    more than the writes themselves (a 150-param, 40-metric, 30-tag run: 26 ms held and
    written at once, 45 ms queued). Held writes are written when the run ends, before its
    status changes (or beside it, see below): a finished run holds everything; a killed
    process loses its running run's writes, never a finished run's, as with MLflow's queue.

    ``early`` (default: `early_writes()`): params (in full batches of 100, and the rest at
    `send_params_early`, each with the tags held so far), and the files of an artifact batch
    once it ends, are sent at once in the background (`send_early`) instead of held;
    `write_held` waits for them before it returns. A status update passed to `write_held` as
    ``along`` is then sent beside the run's last writes rather than after them (a sweep trial
    against a server: its caller hears of the end only once both are stored).
    """
    if run_id in _held:
        return False
    _held[run_id] = RunWrites(early=early_writes() if early is None else early)
    return True


def early_writes_of(run_id: str) -> bool:
    """Whether ``run_id``'s writes are held and go early (see `hold_writes`)."""
    writes = _held.get(run_id)
    return writes is not None and writes.early


def send_early(run_id: str, fn: Callable[[], None], *, quiet: bool = False) -> bool:
    """Start ``fn`` (a write for the held run ``run_id``) in the background now: in the
    tracking writer process when it is a `writer.Call`, else on a background thread; False
    when the run's writes are not held (the caller writes it itself). `write_held` joins it
    (raising its error, unless ``quiet``)."""
    writes = _held.get(run_id)
    if writes is None:
        return False
    future = submit(fn)
    writes.sent.append(_quietly(future, run_id) if quiet else future)
    return True


def _quietly(future: Future, run_id: str) -> Future:
    """``future``'s outcome with a failure logged (debug) instead of raised."""
    quiet: Future = Future()

    def settle(done: Future) -> None:
        if done.exception() is not None:
            log.debug("a background write for run %s failed", run_id, exc_info=done.exception())
        quiet.set_result(None)

    future.add_done_callback(settle)
    return quiet


def _send_batch_early(run_id: str, fn: Callable[[], None]) -> None:
    send_early(run_id, fn)
    writes = _held[run_id]
    writes.early_batches.append(writes.sent[-1])


def _join(writes: RunWrites) -> None:
    """Wait for every write sent for the run; then run its clean-ups; raise the first error."""
    error: BaseException | None = None
    for future in writes.sent:
        try:
            future.result()
        except BaseException as exc:
            error = error or exc
    writes.sent.clear()
    for cleanup in writes.after:  # removing a folder is disk work nobody waits for: a
        background_pool().submit(cleanup)  # trial's took ~2 ms on this machine's disk
    writes.after.clear()
    if error is not None:
        raise error


def write_held(run_id: str, along: Callable[[], None] | None = None) -> None:
    """Write (and stop holding) the run's held writes: as few `log_batch` calls as MLflow's
    limits allow (100 params, 100 tags, 1000 entities a call), while the writes sent early
    finish; returns once all of them are in the store.

    ``along`` (a request of the caller's, e.g. the run's status update) is made on the calling
    thread after the last batch, even when that raised; for a run whose writes go early
    (`hold_writes`) while the last batch is sent in the background instead: one round
    trip less at the end of a run against a server (MLflow's store takes a batch for a
    finished run). Either way this returns (or raises the first error) only once both are
    done.
    """
    writes = _held.pop(run_id, None)
    if writes is None:
        if along is not None:
            along()
        return
    batch: ClientCall | None = None
    if writes.params or writes.metrics or writes.tags:
        batch = ClientCall(
            mlflow.get_tracking_uri(),
            "log_batch",
            (run_id,),
            {
                "metrics": writes.metrics,
                "params": [Param(k, v) for k, v in writes.params.items()],
                "tags": [RunTag(k, v) for k, v in writes.tags.items()],
            },
        )
    if writes.early_tags & writes.tags.keys():  # a newer value of a tag sent early: the
        wait(writes.early_batches)  # early batch lands first, so the newer value stays
        # (only the batches: waiting for the run's uploads too put its last batch, the
        # longest request of a trial's end, behind them)
    try:
        if batch is not None and along is not None and writes.early:
            writes.sent.append(submit(batch))
            along()
            return
        try:
            if batch is not None:
                batch()
        finally:
            if along is not None:
                along()
    finally:
        _join(writes)


def flush_held(run_id: str | None = None) -> None:
    """Write the active run's (or ``run_id``'s) held writes now and keep holding the rest:
    before something reads the run back from the store (registration, evidence)."""
    run = mlflow.active_run()
    run_id = run_id or (run.info.run_id if run is not None else None)
    if run_id and run_id in _held:
        early = _held[run_id].early
        write_held(run_id)
        _held[run_id] = RunWrites(early=early)


@contextlib.contextmanager
def held_writes() -> Iterator[None]:
    """`hold_writes` for the active run over the body, written at its end (also on a raise).
    Inside an outer hold of the same run (a sweep trial's) it joins it."""
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("held_writes() needs an active MLflow run")
    if not hold_writes(run.info.run_id):
        yield
        return
    try:
        yield
    finally:
        write_held(run.info.run_id)


def _holding(run_id: str | None = None) -> RunWrites | None:
    if run_id is None:
        run = mlflow.active_run()
        run_id = run.info.run_id if run is not None else None
    return _held.get(run_id) if run_id else None


#: MLflow's most params (and tags) in one `log_batch` request.
PARAMS_PER_BATCH = 100


def log_params(params: Mapping[str, Any]) -> None:
    """`mlflow.log_params` on the active run, held while its writes are (`hold_writes`)."""
    run = mlflow.active_run()
    held = _holding(run.info.run_id if run is not None else None)
    if held is None:
        mlflow.log_params(dict(params))
    else:
        held.params.update({k: str(v) for k, v in params.items()})
        if held.early and len(held.params) >= PARAMS_PER_BATCH:
            # full batches go now, while the run's body goes on (`write_held` waits for them);
            # the rest waits for `send_params_early` or joins the run's last batch
            _send_params(run.info.run_id, held, whole_batches_only=True)


def send_params_early() -> None:
    """Send the active run's held params now (a run whose writes go early), rather than with
    its last batch.

    Why: a run logs its params when it opens (its config), and what is sent early is stored
    while the run computes, on a core the computation does not use; its last batch, which the
    run's end waits for, is then its metrics and tags only. Against a server a trial's 117
    params made a full early batch and 17 left for the last one, whose params step (reading
    the run's 100 stored params to check for changes, then a commit) the trial waited for.
    """
    run = mlflow.active_run()
    held = _holding(run.info.run_id if run is not None else None)
    if held is not None and held.early and held.params:
        _send_params(run.info.run_id, held, whole_batches_only=False)


def _send_params(run_id: str, held: RunWrites, *, whole_batches_only: bool) -> None:
    items = list(held.params.items())
    cut = len(items) - len(items) % PARAMS_PER_BATCH if whole_batches_only else len(items)
    held.params = dict(items[cut:])
    uri = mlflow.get_tracking_uri()
    for start in range(0, cut, PARAMS_PER_BATCH):
        batch = [Param(k, v) for k, v in items[start : start + PARAMS_PER_BATCH]]
        # the tags held so far ride along in the same request (up to MLflow's 100): off the
        # run's last batch, and in the store early (a sweep's command for its trial)
        tags = [RunTag(k, v) for k, v in list(held.tags.items())[:PARAMS_PER_BATCH]]
        for tag in tags:
            del held.tags[tag.key]
            held.early_tags.add(tag.key)
        _send_batch_early(
            run_id, ClientCall(uri, "log_batch", (run_id,), {"params": batch, "tags": tags})
        )


def log_metrics(metrics: Mapping[str, float], step: int = 0) -> None:
    """`mlflow.log_metrics` on the active run, held while its writes are."""
    held = _holding()
    if held is None:
        mlflow.log_metrics(dict(metrics), step=step)
    else:
        now = int(time.time() * 1000)
        held.metrics.extend(Metric(k, float(v), now, step) for k, v in metrics.items())


def set_tags(tags: Mapping[str, Any], run_id: str | None = None) -> None:
    """`mlflow.set_tags` on the active run (or ``run_id``), held while its writes are."""
    held = _holding(run_id)
    if held is not None:
        held.tags.update({k: str(v) for k, v in tags.items()})
    elif run_id is None:
        mlflow.set_tags(dict(tags))
    else:
        mlflow.MlflowClient().log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def discard_held_tag(key: str, run_id: str) -> bool:
    """Drop a held tag not yet written; False when the run's writes are not held, or when
    the tag went with an early batch: that batch is then stored before this returns, and the
    caller deletes the tag from the store."""
    held = _holding(run_id)
    if held is None:
        return False
    held.tags.pop(key, None)
    if key in held.early_tags:
        wait(held.sent)
        return False
    return True
