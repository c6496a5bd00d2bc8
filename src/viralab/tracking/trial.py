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
import hashlib
import json
import logging
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from viralab.tracking import early_writes_of, send_early

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


#: (parent run id, artifact path) pairs this process has logged on a parent run.
_shared_files: set[tuple[str, str]] = set()
#: The last object shared per name, with its JSON text and artifact path (see `share_json`).
_last_json: dict[str, tuple[Any, str, str]] = {}


def share_json(obj: Any, name: str) -> tuple[str, str] | None:
    """Log ``obj`` as `<name>/<digest>.json` on the sweep's parent run, once per content.

    Returns (the parent's run id, the file's path there) for the trial to reference, or None
    outside a sweep (the caller logs the file on its own run then). The text is what
    `mlflow.log_dict` writes for a `.json` file; the digest is the first 16 hex digits of its
    SHA-256, so trials whose objects differ each find their own. Why: a ridge trial's
    `feature_metadata.json` (57 KB, the largest of its files) is the same in every trial of a
    sweep, and serialising and uploading it took time in every trial. An object equal to the
    last one shared under ``name`` (`==`, the whole object) is not serialised again; the
    caller must not change ``obj`` afterwards.

    The upload goes with the active run's early writes when it has them (`send_early`: the
    trial's end waits for it), else at once; a failed upload fails the trial, and the next
    trial tries again.
    """
    parent = _parent_run.get()
    if parent is None:
        return None
    last = _last_json.get(name)
    if last is not None and last[0] == obj:
        text, path = last[1], last[2]
    else:
        text = json.dumps(obj, indent=2, default=str)
        path = _digest_path(name, text, ".json")
        _last_json[name] = (obj, text, path)
    return _share(parent, text, path)


def share_text(text: str, name: str, suffix: str) -> tuple[str, str] | None:
    """`share_json` for a file already written as text (a CSV table): logged on the sweep's
    parent as `<name>/<digest><suffix>`, once per content; None outside a sweep."""
    parent = _parent_run.get()
    if parent is None:
        return None
    return _share(parent, text, _digest_path(name, text, suffix))


def _digest_path(name: str, text: str, suffix: str) -> str:
    return f"{name}/{hashlib.sha256(text.encode()).hexdigest()[:16]}{suffix}"


def _share(parent: str, text: str, path: str) -> tuple[str, str]:
    key = (parent, path)
    if key not in _shared_files:
        import mlflow

        def upload() -> None:
            mlflow.MlflowClient().log_text(parent, text, path)
            _shared_files.add(key)

        run = mlflow.active_run()
        if run is None or not early_writes_of(run.info.run_id):
            upload()
        else:
            send_early(run.info.run_id, upload)
    return parent, path
