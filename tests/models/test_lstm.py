"""The spec-002 network built from config, its fit loop and permutation importance."""

from __future__ import annotations

import logging
import random
import threading
import time

import numpy as np
import pytest

from viralab.config import compose
from viralab.errors import ConfigError
from viralab.models import lstm


@pytest.fixture(scope="module")
def model_cfg():
    return compose(["model=lstm", "target=views"]).model


SPEC = ["model.lstm_units_1=50", "model.lstm_units_2=50", "model.dense_units=25"]


def test_the_spec_architecture_is_three_overrides_away() -> None:
    import keras

    model_cfg = compose(["model=lstm", "target=views", *SPEC]).model
    model = lstm.build_lstm(model_cfg, (20, 6), seed=1)
    kinds = [(type(layer).__name__, getattr(layer, "units", None)) for layer in model.layers]
    assert kinds == [
        ("LSTM", 50),
        ("Dropout", None),
        ("LSTM", 50),
        ("Dropout", None),
        ("Dense", 25),
        ("Dense", 1),
    ]
    assert model.layers[0].return_sequences and not model.layers[2].return_sequences
    assert [model.layers[i].rate for i in (1, 3)] == [0.2, 0.2]
    assert model.layers[4].activation is keras.activations.relu
    assert model.input_shape == (None, 20, 6) and model.output_shape == (None, 1)
    assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    # 11,400 + 20,200 + 1,275 + 26: spec 002 says "~27,000" for this very layout
    assert model.count_params() == 32_901


def test_default_is_one_small_layer_with_one_output_per_horizon(model_cfg) -> None:
    model = lstm.build_lstm(model_cfg, (20, 6), seed=1, n_outputs=4)
    kinds = [(type(layer).__name__, getattr(layer, "units", None)) for layer in model.layers]
    assert kinds == [("LSTM", 32), ("Dropout", None), ("Dense", 16), ("Dense", 4)]
    assert not model.layers[0].return_sequences
    assert model.output_shape == (None, 4)


def test_masked_loss_ignores_unknown_horizons() -> None:
    y_true = np.array([[1.0, np.nan], [2.0, 5.0]], dtype="float32")
    y_pred = np.array([[0.0, 100.0], [2.0, 4.0]], dtype="float32")
    assert float(lstm.masked_loss("mae")(y_true, y_pred)) == pytest.approx(2 / 3)
    assert float(lstm.masked_loss("mse")(y_true, y_pred)) == pytest.approx(2 / 3)


def test_every_number_is_overridable() -> None:
    cfg = compose(
        [
            "model=lstm",
            "model.lstm_units_1=8",
            "model.lstm_units_2=4",
            "model.dense_units=3",
            "model.dropout_rate=0.1",
            "model.learning_rate=0.01",
            "model.loss=mse",
        ]
    ).model
    model = lstm.build_lstm(cfg, (5, 3))
    assert [getattr(layer, "units", None) for layer in model.layers] == [8, None, 4, None, 3, 1]
    assert model.layers[1].rate == 0.1
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)
    assert model.loss == "mse"


def test_unknown_loss_is_a_config_error(model_cfg) -> None:
    with pytest.raises(ConfigError, match=r"model\.loss"):
        lstm.build_lstm({**model_cfg, "loss": "hinge"}, (20, 6))


@pytest.mark.slow
def test_fit_reports_history_and_prints_one_line_per_epoch(
    model_cfg, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(0)
    X = rng.random((64, 5, 3), dtype=np.float32)
    y = X[:, -1, 0]
    cfg = {**model_cfg, "epochs": 2, "batch_size": 32, "unroll": False}
    model = lstm.build_lstm(cfg, (5, 3), seed=0)
    with caplog.at_level(logging.INFO, logger="viralab.models.lstm"):
        fit = lstm.fit_network(model, (X[:48], y[:48]), (X[48:], y[48:]), cfg, label="t")
    assert fit.epochs_trained == 2 and len(fit.history["val_loss"]) == 2
    assert 1 <= fit.best_epoch <= 2
    assert fit.training_time > 0 and len(fit.epoch_seconds) == 2
    assert 0 < fit.peak_ram_percent <= 100
    lines = [r.getMessage() for r in caplog.records if "epoch" in r.getMessage()]
    assert lines[0].startswith("t epoch 1/2 loss=") and len(lines) == 2
    assert lstm.predict_scaled(model, X).shape == (64,)


@pytest.mark.slow
def test_same_seed_same_weights_whatever_else_uses_the_global_generators(model_cfg) -> None:
    """Another thread may draw from Python's `random` between two builds (urllib3's retry
    jitter in a background tracking request did, in CI): the weights must not move."""
    a = lstm.build_lstm(model_cfg, (5, 3), seed=7).get_weights()
    stop = threading.Event()

    def draw() -> None:
        while not stop.is_set():
            random.random()
            time.sleep(0.0005)

    drawer = threading.Thread(target=draw)
    drawer.start()
    try:
        b = lstm.build_lstm(model_cfg, (5, 3), seed=7).get_weights()
    finally:
        stop.set()
        drawer.join()
    c = lstm.build_lstm(model_cfg, (5, 3), seed=8).get_weights()
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a[0], c[0])


def test_permutation_importance_ranks_the_input_that_matters() -> None:
    rng = np.random.default_rng(0)
    X = rng.random((200, 4, 3))
    target = X[:, -1, 1]

    def mae(x: np.ndarray) -> float:
        return float(np.mean(np.abs(x[:, -1, 1] - target)))

    imp = lstm.permutation_importance(mae, X, ["a", "b", "c"], repeats=2)
    assert imp["a"] == 0 and imp["c"] == 0 and imp["b"] > 0.2
