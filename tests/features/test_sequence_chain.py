"""The forecaster's preprocessing chain: one set of settings, the steps in one order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from viralab.config import compose
from viralab.data.sample import generate_stats
from viralab.errors import ConfigError
from viralab.features import horizons as hz
from viralab.features import sequence as seq
from viralab.features.sequence_chain import CONFIG_KEYS, SequenceChain


def forecast_cfg(*overrides: str):
    return compose(["model=lstm", *overrides])


def test_from_settings_reads_the_composed_config() -> None:
    chain = SequenceChain.from_settings(forecast_cfg("task.predict=level"))
    assert chain == SequenceChain(
        sequence_length=20,
        time_features=False,
        frequency="1min",
        max_gap_steps=5,
        predict="level",
        counts_as="level",
        round_forecasts=True,
        horizons=(1, 15, 60, 240),
    )
    assert SequenceChain.from_saved(chain.to_settings()) == chain


@pytest.mark.parametrize(("section", "key"), CONFIG_KEYS)
def test_from_settings_is_strict_every_key_is_required(section: str, key: str) -> None:
    # a composed config is typed (its schema always has the key): the strict read guards
    # settings built by hand, so test it on the same config as plain data
    cfg = OmegaConf.create(OmegaConf.to_container(forecast_cfg()))
    del cfg[section][key]
    with pytest.raises(ConfigError, match=rf"{section}\.{key}"):
        SequenceChain.from_settings(cfg)


def test_from_settings_refuses_a_bad_predict_or_horizons() -> None:
    with pytest.raises(ConfigError, match=r"task\.predict"):
        SequenceChain.from_settings(forecast_cfg("task.predict=ratio"))
    with pytest.raises(ConfigError, match=r"task\.horizons"):
        SequenceChain.from_settings(forecast_cfg("task.horizons=[15,60]"))


def test_from_saved_fills_what_older_models_did_not_save() -> None:
    """A model logged before these settings existed: the grid, the gap rule, rounding, time
    features and horizons take what that model was trained with."""
    old = {"sequence_length": 5, "predict": "residual", "counts_as": "increment"}
    chain = SequenceChain.from_saved(old)
    assert chain.max_gap_steps == 5
    assert chain.frequency == "1min"
    assert chain.time_features is False
    assert chain.round_forecasts is False
    assert chain.horizons == (1,)
    assert chain.counts_as == "increment"
    # what a model saved keeps precedence over the defaults
    newer = SequenceChain.from_saved({**old, "max_gap_steps": 2, "horizons": [1, 15]})
    assert (newer.max_gap_steps, newer.horizons) == (2, (1, 15))
    with pytest.raises(ConfigError, match="sequence_length"):
        SequenceChain.from_saved({"predict": "level"})


def _stats() -> pd.DataFrame:
    start = "2025-07-01T00:00:00Z"
    frame = pd.concat(
        [
            generate_stats(seed=5, videos={"vid-a": 150}, start=start),
            generate_stats(seed=6, videos={"vid-b": 120}, start=start),
        ],
        ignore_index=True,
    )
    return frame.drop(index=range(60, 70)).reset_index(drop=True)  # a gap: a second segment


@pytest.mark.parametrize("predict", seq.PREDICT_MODES)
def test_the_chain_equals_the_old_step_by_step_result(predict: str) -> None:
    """clean -> inputs -> scale -> windows -> counts -> round, as training, serving and the
    monitor each spelled it out before the chain existed."""
    cfg = forecast_cfg(f"task.predict={predict}", "features.sequence_length=8")
    chain = SequenceChain.from_settings(cfg)
    raw = _stats()
    L, k = 8, 0
    counts_as = "level" if predict == "level" else "increment"

    # the old steps, one by one
    clean0, _ = seq.clean_stats(raw, sequence_length=L, frequency="1min", max_gap_steps=5)
    parts0 = seq.assign_parts(clean0)
    inputs0 = seq.model_inputs(clean0, counts_as, False)
    scaler0 = seq.fit_scaler(inputs0, parts0 == "fit")
    windows0 = seq.make_windows(clean0, seq.scale_inputs(inputs0, scaler0), parts0, L)
    rng = np.random.default_rng(0)
    outputs = rng.normal(0.0, 0.05, size=(len(windows0["test"]), 4))
    counts0 = np.round(
        seq.predictions_to_counts(
            outputs[:, 0], windows0["test"].levels[:, :, k], predict, scaler0, k
        )
    )
    lo, rg = seq.column_scale(scaler0, k)
    direct0 = hz.direct_to_counts(
        outputs, windows0["test"].levels[:, :, k], (1, 15, 60, 240), predict, lo, rg
    )

    # the chain
    clean, _ = chain.clean(raw)
    pd.testing.assert_frame_equal(clean, clean0)
    parts = seq.assign_parts(clean)
    inputs = chain.inputs(clean)
    pd.testing.assert_frame_equal(inputs, inputs0)
    scaler, windows = chain.scale_and_window(clean, inputs, parts)
    np.testing.assert_array_equal(scaler.data_min_, scaler0.data_min_)
    for part in seq.PARTS:
        np.testing.assert_array_equal(windows[part].X, windows0[part].X)
        np.testing.assert_array_equal(windows[part].target_row, windows0[part].target_row)
    test = windows["test"]
    np.testing.assert_array_equal(chain.next_step_counts(outputs, test, scaler, k), counts0)
    np.testing.assert_array_equal(
        chain.direct_counts(outputs, test.levels[:, :, k], chain.horizons, scaler, k), direct0
    )
    # training targets map back to the actual next counts through the same chain
    y = chain.targets(test, "views", scaler, k)
    back = chain.counts(y, test.levels[:, :, k], scaler, k)
    np.testing.assert_allclose(back, test.next_levels[:, k], rtol=1e-5, atol=1e-2)


def test_the_newest_window_of_one_video_matches_its_last_training_window() -> None:
    """Serving's window (growth rates recomputed from the newest L + 1 rows) is the window
    training cut for the same target row."""
    chain = SequenceChain.from_saved(
        {"sequence_length": 6, "predict": "residual", "counts_as": "increment"}
    )
    raw = generate_stats(seed=7, videos={"vid-a": 40})
    segment = chain.last_segment(raw)
    clean, _ = chain.clean(raw)
    inputs = chain.inputs(clean)
    parts = pd.Series("fit", index=clean.index)
    scaler, windows = chain.scale_and_window(clean, inputs, parts)
    history = segment[["timestamp", *seq.COUNT_COLUMNS]]
    X, levels = chain.recent_window(history.iloc[:-1], scaler)  # the rows before the last
    np.testing.assert_allclose(X[0], windows["fit"].X[-1], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(levels, windows["fit"].levels[-1])
