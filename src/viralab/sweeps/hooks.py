"""Epoch reports from training code to the running Optuna trial, without coupling them.

The sweep puts the current trial in a `ContextVar` for the length of one `train(cfg)` call.
Training code that fits epoch by epoch asks for `epoch_callbacks()` and passes them to Keras::

    model.fit(..., callbacks=[*callbacks, *epoch_callbacks()])

Outside a sweep that list is empty, so plain training is untouched. Inside one, a
`PruningCallback` reports `val_loss` after each epoch (`trial.report(value, epoch)`) and raises
`optuna.TrialPruned` when the study's pruner says stop; the exception leaves `train()` through
its MLflow run, and the sweep records the trial as PRUNED.

Neither Optuna nor Keras is imported until needed: importing this module is free for sklearn
runs and for training code that is never swept.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import optuna

log = logging.getLogger(__name__)

_current_trial: ContextVar[optuna.trial.Trial | None] = ContextVar(
    "viralab_sweep_trial", default=None
)


def current_trial() -> optuna.trial.Trial | None:
    """The Optuna trial whose `train()` call is running, or None outside a sweep."""
    return _current_trial.get()


@contextlib.contextmanager
def active_trial(trial: optuna.trial.Trial | None) -> Iterator[None]:
    """Make ``trial`` the current trial for the body (the sweep wraps each `train()` in it)."""
    token = _current_trial.set(trial)
    try:
        yield
    finally:
        _current_trial.reset(token)


def report(value: float, step: int, trial: optuna.trial.Trial | None = None) -> None:
    """Report an intermediate value; raise `optuna.TrialPruned` if the pruner says stop.

    A no-op outside a sweep, so any training loop (Keras or not) may call it each epoch.
    """
    trial = trial if trial is not None else current_trial()
    if trial is None:
        return
    import optuna

    trial.report(float(value), int(step))
    if trial.should_prune():
        pruned = optuna.TrialPruned(f"pruned at epoch {int(step) + 1} (value {float(value):.6g})")
        pruned.step = int(step)  # the sweep tags the trial's run with it
        raise pruned


def epoch_callbacks() -> list[Any]:
    """`[PruningCallback()]` while a sweep trial is running, else `[]`."""
    if current_trial() is None:
        return []
    return [_pruning_callback_class()()]


@functools.cache
def _pruning_callback_class() -> type:
    import keras

    class PruningCallback(keras.callbacks.Callback):
        """Report ``monitor`` after each epoch to the trial; stop the fit when it is pruned.

        Args:
            monitor: the epoch log to report (`val_loss`); when a fit has no validation data
                the training `loss` is reported instead (as the forecaster's history does).
            trial: the trial to report to; default: the sweep's current trial.
        """

        def __init__(
            self, monitor: str = "val_loss", trial: optuna.trial.Trial | None = None
        ) -> None:
            super().__init__()
            self.monitor = monitor
            self.trial = trial if trial is not None else current_trial()
            self._warned = False

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            logs = logs or {}
            value = logs.get(self.monitor, logs.get("loss"))
            if value is None or self.trial is None:
                if not self._warned:
                    log.warning("PruningCallback: no %r in the epoch logs", self.monitor)
                    self._warned = True
                return
            report(float(value), epoch, self.trial)

    PruningCallback.__module__ = __name__
    return PruningCallback


def __getattr__(name: str) -> Any:
    # `PruningCallback` subclasses keras.callbacks.Callback; it is built on first use so that
    # importing this module does not start TensorFlow.
    if name == "PruningCallback":
        return _pruning_callback_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ------------------------------------------------------------------------------------------
# Shared per-sweep artifacts
# ------------------------------------------------------------------------------------------

_parent_run: ContextVar[str | None] = ContextVar("viralab_sweep_parent_run", default=None)
#: (parent run id, dataset digest) pairs this process has logged on a parent run.
_shared_datasets: set[tuple[str, str]] = set()

DATASET_DIGEST_TAG = "viralab.dataset.digest"
DATASET_NAME_TAG = "viralab.dataset.name"
DATASET_RUN_TAG = "viralab.dataset.run_id"


@contextlib.contextmanager
def sweep_parent(run_id: str | None) -> Iterator[None]:
    """The sweep's parent run for the body: a trial's dataset is logged there, once."""
    token = _parent_run.set(run_id)
    try:
        yield
    finally:
        _parent_run.reset(token)


def share_dataset(dataset: Any, context: str = "training") -> str | None:
    """Log ``dataset`` (an `mlflow.data` dataset) on the sweep's parent run, once per digest.

    Returns the parent run's id for the trial to reference (tags: `viralab.dataset.*`), or
    None outside a sweep (the caller logs the dataset on its own run then). Why: every trial of
    a sweep trains on the same data; one dataset input on the parent instead of one per trial
    saves a digest, a schema and three table writes per trial.
    """
    parent = _parent_run.get()
    if parent is None:
        return None
    key = (parent, str(dataset.digest))
    if key not in _shared_datasets:
        _log_on_parent(parent, dataset, context)
        _shared_datasets.add(key)
    return parent


def _log_on_parent(parent: str, dataset: Any, context: str, attempts: int = 4) -> None:
    """`log_inputs` on the parent, again when it raced another worker's first trial.

    Why: MLflow's store looks the dataset up, then inserts it; two worker processes logging
    the same dataset at once both miss it and one insert fails on the unique key (seen in CI:
    `UNIQUE constraint failed: datasets.experiment_id, datasets.name, datasets.digest`). The
    retry finds the row the other wrote and only links it (an input already linked is skipped).
    """
    from mlflow import MlflowClient
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.exceptions import MlflowException

    entity = DatasetInput(
        dataset._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", context)]
    )
    for attempt in range(attempts):
        try:
            MlflowClient().log_inputs(parent, datasets=[entity])
            return
        except MlflowException:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
