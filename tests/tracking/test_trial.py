"""Epoch reports reach the running trial; a pruned Keras fit stops with `optuna.TrialPruned`."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from viralab.tracking import trial as hooks
from viralab.tracking.trial import active_trial, current_trial, epoch_callbacks, report


def test_outside_a_sweep_there_are_no_callbacks_and_reports_are_ignored() -> None:
    assert current_trial() is None
    assert epoch_callbacks() == []
    report(1.0, 0)  # no trial: nothing happens


def test_reports_go_to_the_active_trial_and_raise_when_pruned() -> None:
    study = optuna.create_study(pruner=optuna.pruners.ThresholdPruner(upper=1.0))
    trial = study.ask()
    with active_trial(trial):
        assert current_trial() is trial
        report(0.5, 0)
        with pytest.raises(optuna.TrialPruned) as pruned:
            report(2.0, 1)
    assert pruned.value.step == 1
    assert current_trial() is None
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    assert study.trials[0].intermediate_values == {0: 0.5, 1: 2.0}


@pytest.mark.slow
def test_keras_pruning_callback_prunes_a_worse_trial_in_a_real_study() -> None:
    """Two trials of a tiny net, two epochs each: the one that cannot learn is pruned."""
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = x @ np.array([1.0, -2.0, 0.5, 3.0], dtype="float32")
    x_val, y_val = x[:16], y[:16]

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_categorical("learning_rate", [0.05, 0.0])
        keras.utils.set_random_seed(0)  # the same start: only the learning rate differs
        keras.backend.clear_session()
        model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="mse")
        with active_trial(trial):
            callbacks = epoch_callbacks()
            assert [type(c).__name__ for c in callbacks] == ["PruningCallback"]
            hist = model.fit(
                x, y, validation_data=(x_val, y_val), epochs=2, batch_size=16,
                callbacks=callbacks, verbose=0,
            )  # fmt: skip
        return float(hist.history["val_loss"][-1])

    study = optuna.create_study(
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
    )
    study.enqueue_trial({"learning_rate": 0.05})  # the learner first: it sets the median
    study.enqueue_trial({"learning_rate": 0.0})
    study.optimize(objective, n_trials=2)
    by_lr = {t.params["learning_rate"]: t for t in study.trials}
    assert by_lr[0.05].state == optuna.trial.TrialState.COMPLETE
    assert sorted(by_lr[0.05].intermediate_values) == [0, 1]
    assert by_lr[0.0].state == optuna.trial.TrialState.PRUNED
    assert list(by_lr[0.0].intermediate_values) == [0]  # stopped after its first epoch


@pytest.mark.slow
def test_pruning_callback_class_is_a_keras_callback() -> None:
    import keras

    assert issubclass(hooks.PruningCallback, keras.callbacks.Callback)
    callback = hooks.PruningCallback(monitor="val_mae")
    assert callback.monitor == "val_mae"
    assert callback.trial is None


def _racing_workers(attempts: int, rounds: int = 6, workers: int = 4) -> list[BaseException]:
    """`workers` threads log one new dataset on one parent at the same instant, `rounds` times."""
    import threading

    import mlflow
    import pandas as pd

    errors: list[BaseException] = []
    with mlflow.start_run() as parent:
        for round_ in range(rounds):
            frame = pd.DataFrame({"x": [round_, 1, 2], "y": ["a", "b", "c"]})
            dataset = mlflow.data.from_pandas(frame, name=f"race-{round_}")
            barrier = threading.Barrier(workers)

            def log(barrier: threading.Barrier, dataset: object) -> None:
                barrier.wait()
                try:
                    hooks._log_on_parent(parent.info.run_id, dataset, "training", attempts)
                except Exception as exc:
                    errors.append(exc)

            threads = [
                threading.Thread(target=log, args=(barrier, dataset)) for _ in range(workers)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        if not errors:
            inputs = mlflow.get_run(parent.info.run_id).inputs.dataset_inputs
            names = sorted(d.dataset.name for d in inputs)
            assert names == sorted(f"race-{r}" for r in range(rounds))  # each linked once
    return errors


def test_workers_logging_one_dataset_on_the_parent_at_once_all_succeed() -> None:
    assert _racing_workers(attempts=4) == []


def test_a_shared_json_file_is_logged_on_the_parent_once_per_content() -> None:
    """`share_json`: one copy per content on the parent (a differing object gets its own),
    the text `mlflow.log_dict` writes; outside a sweep the caller logs its own file."""
    import json

    import mlflow

    from viralab.tracking.trial import share_json, sweep_parent

    assert share_json({"a": 1}, "meta") is None  # no sweep
    client = mlflow.MlflowClient()
    with mlflow.start_run() as parent:
        pass
    parent_id = parent.info.run_id
    with sweep_parent(parent_id):
        first = share_json({"a": {"min": 0.0, "values": ["x"]}}, "meta")
        again = share_json({"a": {"min": 0.0, "values": ["x"]}}, "meta")
        other = share_json({"a": {"min": 1.0, "values": ["x"]}}, "meta")
    assert first == again and first is not None and other is not None
    assert first[0] == other[0] == parent_id and first[1] != other[1]
    files = sorted(f.path for f in client.list_artifacts(parent_id, "meta"))
    assert files == sorted([first[1], other[1]])
    text = mlflow.artifacts.load_text(f"runs:/{parent_id}/{first[1]}")
    assert text == json.dumps({"a": {"min": 0.0, "values": ["x"]}}, indent=2, default=str)
