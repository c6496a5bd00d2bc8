"""Spec 002's LSTM, built from `conf/model/lstm.yaml`, and its fit loop.

Architecture (spec defaults): LSTM 50 (sequences) -> Dropout 0.2 -> LSTM 50 -> Dropout 0.2 ->
Dense 25 relu -> Dense 1; Adam 1e-3; MSE-family loss; early stopping on the validation windows
(carved from the end of the training part, never the test windows as the spec did) with the
best weights restored. `unroll` unrolls the 20-step recurrence (same maths, far faster on CPU).

This module computes only; `viralab.forecasting` logs what `fit_network` returns.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from viralab.errors import ConfigError
from viralab.tracking.trial import epoch_callbacks  # in a sweep trial: its pruning callback

log = logging.getLogger(__name__)

LOSSES = ("mse", "mae", "huber")


def configure_threads(threads: int | None) -> None:
    """Cap TensorFlow's thread pools (a no-op once TF has started its runtime).

    On a small shared machine TF's default of one pool thread per core for both intra- and
    inter-op work oversubscribes the CPU; one inter-op thread is enough for a Sequential net.
    """
    import tensorflow as tf

    n = int(threads or os.cpu_count() or 1)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # runtime already initialised: keep what it has
        pass


def masked_loss(loss: str, huber_delta: float = 1.0) -> Any:
    """``loss`` over the known targets only: a horizon past the end of a window's part is NaN.

    Direct multi-horizon targets (one output per horizon) are unknown for origins near the
    end of a part; masking keeps those windows for the horizons they do have.
    """
    from keras import ops

    def masked(y_true: Any, y_pred: Any) -> Any:
        known = ops.logical_not(ops.isnan(y_true))
        err = ops.where(known, y_true, 0.0) - ops.where(known, y_pred, 0.0)
        if loss == "mae":
            per = ops.abs(err)
        elif loss == "mse":
            per = ops.square(err)
        else:
            a = ops.abs(err)
            per = ops.where(a <= huber_delta, 0.5 * a * a, huber_delta * (a - 0.5 * huber_delta))
        weight = ops.cast(known, per.dtype)
        return ops.sum(per * weight) / ops.maximum(ops.sum(weight), 1.0)

    masked.__name__ = f"masked_{loss}"
    return masked


def _layer_seeds(seed: int | None) -> Iterator[int | None]:
    """One seed per initializer and dropout layer, drawn from `seed` alone.

    Keras draws an unseeded layer's seed from Python's global `random` when the layer is made,
    and any thread of the process may use that generator in between (urllib3's retry jitter
    does, in the tracking client's background requests): with explicit seeds, the same
    `seed` gives the same weights whatever else the process is doing."""
    if seed is None:
        return itertools.repeat(None)
    state = np.random.SeedSequence(int(seed)).generate_state(16)
    return iter(int(s) % (2**31 - 1) for s in state)


def build_lstm(
    model_cfg: Mapping[str, Any],
    input_shape: tuple[int, int],
    seed: int | None = None,
    n_outputs: int = 1,
) -> Any:
    """A compiled Keras model for windows of ``input_shape`` = (sequence_length, n_inputs).

    Clears the Keras session first so repeated builds (three targets, CV folds) do not pile
    up graph state, then seeds every generator (weights, dropout, shuffling) for repeatable
    runs. ``n_outputs`` > 1: one output per forecast horizon (direct multi-horizon), trained
    with a loss that skips unknown (NaN) targets. ``model.lstm_units_2: 0`` drops the second
    recurrent layer (faster).
    """
    import keras

    loss = str(model_cfg["loss"])
    if loss not in LOSSES:
        raise ConfigError(f"model.loss must be one of {LOSSES}, got {loss!r}")
    keras.backend.clear_session()
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    seeds = _layer_seeds(seed)
    unroll = bool(model_cfg["unroll"])
    dropout = float(model_cfg["dropout_rate"])
    units_2 = int(model_cfg["lstm_units_2"] or 0)

    def recurrent(units: int, return_sequences: bool) -> list[Any]:
        return [
            keras.layers.LSTM(
                units,
                return_sequences=return_sequences,
                unroll=unroll,
                kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
                recurrent_initializer=keras.initializers.Orthogonal(seed=next(seeds)),
                seed=next(seeds),
            ),
            keras.layers.Dropout(dropout, seed=next(seeds)),
        ]

    def dense(units: int, activation: str) -> Any:
        init = keras.initializers.GlorotUniform(seed=next(seeds))
        return keras.layers.Dense(units, activation=activation, kernel_initializer=init)

    layers = [
        keras.Input(shape=input_shape),
        *recurrent(int(model_cfg["lstm_units_1"]), units_2 > 0),
    ]
    if units_2 > 0:
        layers += recurrent(units_2, False)
    layers += [dense(int(model_cfg["dense_units"]), "relu"), dense(int(n_outputs), "linear")]
    model = keras.Sequential(layers, name="lstm_forecaster")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=float(model_cfg["learning_rate"])),
        loss=masked_loss(loss, float(model_cfg["huber_delta"]))
        if n_outputs > 1
        else {
            "mse": "mse",
            "mae": "mae",
            "huber": keras.losses.Huber(delta=float(model_cfg["huber_delta"])),
        }[loss],
        metrics=[] if n_outputs > 1 else ["mae"],
        jit_compile=bool(model_cfg["jit_compile"]),
    )
    return model


@dataclass
class FitResult:
    """What one fit produced: per-epoch history and the numbers spec 002 logs."""

    history: dict[str, list[float]]
    epochs_trained: int
    best_epoch: int  # 1-based epoch whose weights were kept
    training_time: float
    seconds_per_epoch: float
    peak_ram_percent: float
    epoch_seconds: list[float] = field(default_factory=list)


def _progress_callback(label: str, epochs: int) -> Any:
    import keras
    import psutil

    class EpochProgress(keras.callbacks.Callback):
        """One console line per epoch; records epoch times and peak RAM use."""

        def __init__(self) -> None:
            super().__init__()
            self.epoch_seconds: list[float] = []
            self.peak_ram = 0.0
            self._start = 0.0

        def on_epoch_begin(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Mapping[str, float] | None = None) -> None:
            took = time.perf_counter() - self._start
            self.epoch_seconds.append(took)
            self.peak_ram = max(self.peak_ram, psutil.virtual_memory().percent)
            logs = logs or {}
            log.info(
                "%s epoch %d/%d loss=%.6g val_loss=%.6g (%.1fs)",
                label,
                epoch + 1,
                epochs,
                logs.get("loss", float("nan")),
                logs.get("val_loss", float("nan")),
                took,
            )

    return EpochProgress()


def fit_network(
    model: Any,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray, np.ndarray],
    model_cfg: Mapping[str, Any],
    label: str = "lstm",
) -> FitResult:
    """Fit with early stopping on ``val`` (restoring the best weights) and time it.

    With no validation windows the model trains for all epochs on ``train`` and the training
    loss stands in for the validation loss.
    """
    import keras

    epochs = int(model_cfg["epochs"])
    has_val = len(val[0]) > 0
    monitor = "val_loss" if has_val else "loss"
    progress = _progress_callback(label, epochs)
    callbacks = [progress, *epoch_callbacks()]
    patience = model_cfg["early_stopping_patience"]
    if patience is not None and int(patience) > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor,
                patience=int(patience),
                restore_best_weights=bool(model_cfg["restore_best_weights"]),
            )
        )
    start = time.perf_counter()
    hist = model.fit(
        train[0],
        train[1],
        validation_data=val if has_val else None,
        epochs=epochs,
        batch_size=int(model_cfg["batch_size"]),
        shuffle=bool(model_cfg["shuffle"]),
        callbacks=callbacks,
        verbose=0,
    )
    took = time.perf_counter() - start
    history = {k: [float(x) for x in v] for k, v in hist.history.items()}
    if not has_val:
        history["val_loss"] = list(history["loss"])
    monitored = history["val_loss"]
    best = int(np.nanargmin(monitored)) + 1 if monitored else 0
    n = len(history.get("loss", []))
    return FitResult(
        history=history,
        epochs_trained=n,
        best_epoch=best,
        training_time=took,
        seconds_per_epoch=took / n if n else float("nan"),
        peak_ram_percent=progress.peak_ram,
        epoch_seconds=progress.epoch_seconds,
    )


def predict_scaled(
    model: Any, X: np.ndarray, batch_size: int = 1024, n_outputs: int | None = None
) -> np.ndarray:
    """Network outputs for windows ``X`` (no per-call Keras overhead): a flat float64 array,
    or (n, n_outputs) when ``n_outputs`` is given (one column per horizon)."""
    if len(X) == 0:
        return np.empty(0) if n_outputs is None else np.empty((0, max(n_outputs, 1)))
    out = [
        np.asarray(model(X[i : i + batch_size], training=False))
        for i in range(0, len(X), batch_size)
    ]
    flat = np.concatenate(out).astype("float64")
    return flat.reshape(-1) if n_outputs is None else flat.reshape(len(X), -1)


def permutation_importance(
    score: Any,
    X: np.ndarray,
    feature_names: list[str],
    repeats: int = 3,
    seed: int = 42,
) -> dict[str, float]:
    """Mean rise of ``score(X)`` (an error, lower is better) when one input is shuffled.

    A feature's whole sequence is swapped between windows, so each window keeps a realistic
    series for that input but one unrelated to its target.
    """
    if len(X) == 0:
        return {name: float("nan") for name in feature_names}
    rng = np.random.default_rng(seed)
    base = float(score(X))
    out = {}
    for j, name in enumerate(feature_names):
        rises = []
        for _ in range(max(1, repeats)):
            shuffled = X.copy()
            shuffled[:, :, j] = X[rng.permutation(len(X)), :, j]
            rises.append(float(score(shuffled)) - base)
        out[name] = float(np.mean(rises))
    return out
