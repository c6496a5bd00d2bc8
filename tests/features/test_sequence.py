"""Messy-row rules, per-video chronological split, train-only scaler and windows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import MinMaxScaler

from viralab.errors import ConfigError, DataError
from viralab.features import sequence as seq

L = 4


def stats(video: str, n: int, start: str = "2025-07-01T00:00:00Z", step: int = 10) -> pd.DataFrame:
    """`n` minute rows of one video, counts rising by `step` (views), 1 (likes), 0/1 (comments)."""
    i = np.arange(n)
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(start, periods=n, freq="min"),
            "video_id": video,
            "view_count": 1000 + step * i,
            "like_count": 50 + i,
            "comment_count": 5 + i // 2,
        }
    )


def clean(frame: pd.DataFrame, **kw) -> tuple[pd.DataFrame, seq.CleaningReport]:
    return seq.clean_stats(frame, sequence_length=kw.pop("sequence_length", L), **kw)


# ---------------------------------------------------------------- messy rows


def test_clean_rows_pass_untouched() -> None:
    out, report = clean(stats("a", 30))
    assert len(out) == 30 and report.rows_out == 30
    assert report.messages() == []
    assert out["segment"].unique().tolist() == ["a"]
    assert (out["view_count"].diff().dropna() == 10).all()


def test_out_of_order_rows_are_sorted_and_counted() -> None:
    frame = stats("a", 30)
    frame = pd.concat([frame.iloc[10:], frame.iloc[:10]])  # one jump back in time
    out, report = clean(frame)
    assert report.rows_out_of_order == 1
    assert out["timestamp"].is_monotonic_increasing
    assert len(out) == 30


def test_duplicate_timestamps_keep_the_last_reading() -> None:
    frame = stats("a", 30)
    dup = frame.iloc[[5]].assign(view_count=frame.at[5, "view_count"] + 3)
    frame = pd.concat([frame.iloc[:6], dup, frame.iloc[6:]], ignore_index=True)
    out, report = clean(frame)
    assert report.duplicate_timestamps == 1
    assert len(out) == 30
    assert out.loc[5, "view_count"] == frame.at[5, "view_count"] + 3


def test_off_grid_timestamps_are_floored_then_deduplicated() -> None:
    frame = stats("a", 30)
    frame.loc[7, "timestamp"] += pd.Timedelta(seconds=20)
    extra = frame.iloc[[7]].assign(timestamp=frame.at[7, "timestamp"] + pd.Timedelta(seconds=30))
    out, report = clean(pd.concat([frame, extra], ignore_index=True))
    assert report.timestamps_realigned == 2
    assert report.duplicate_timestamps == 1
    assert len(out) == 30 and (out["timestamp"].dt.second == 0).all()


def test_counter_correction_is_held_at_the_running_maximum() -> None:
    frame = stats("a", 30)
    frame.loc[10, "view_count"] = 900  # dropped below earlier readings
    out, report = clean(frame)
    assert report.counter_corrections == 1
    assert out.loc[10, "view_count"] == out.loc[9, "view_count"]
    assert (out[list(seq.COUNT_COLUMNS)].diff().dropna() >= 0).all().all()


def test_short_gap_is_interpolated_on_the_grid() -> None:
    frame = stats("a", 30).drop(index=[10, 11, 12])
    out, report = clean(frame, max_gap_steps=3)
    assert (report.gaps_filled, report.rows_interpolated, report.gaps_split) == (1, 3, 0)
    assert len(out) == 30
    assert out.loc[11, "view_count"] == pytest.approx(1000 + 10 * 11)
    assert (out["timestamp"].diff().dropna() == pd.Timedelta("1min")).all()


def test_long_gap_splits_the_video_into_segments() -> None:
    frame = stats("a", 30).drop(index=range(10, 16))
    out, report = clean(frame, max_gap_steps=3)
    assert report.gaps_split == 1 and report.rows_interpolated == 0
    assert out["segment"].unique().tolist() == ["a#0", "a#1"]
    assert (out["video_id"] == "a").all()


def test_short_segments_and_videos_are_dropped_and_counted() -> None:
    frame = pd.concat(
        [
            stats("long", 30),
            stats("tiny", L),  # one row short of a window + target
            stats("split", 30).drop(index=range(3, 10)),  # 3-row head segment + 20-row tail
        ]
    )
    out, report = clean(frame, max_gap_steps=2)
    assert report.videos_too_short == 1 and report.too_short_video_ids == ["tiny"]
    assert report.short_segments_dropped == 2  # tiny, split's head
    assert report.short_segment_rows_dropped == L + 3
    assert sorted(out["video_id"].unique()) == ["long", "split"]
    assert report.videos_used == 2


def test_missing_counts_are_dropped_and_counted() -> None:
    frame = stats("a", 30).astype({"view_count": "float64"})
    frame.loc[4, "view_count"] = np.nan
    _, report = clean(frame, max_gap_steps=2)
    assert report.rows_missing_values == 1
    assert report.rows_interpolated == 1  # the hole is then a one-row gap


def test_no_video_long_enough_is_a_data_error() -> None:
    with pytest.raises(DataError, match="consecutive usable rows"):
        clean(stats("a", L))


def test_growth_rates_are_recomputed_from_clean_counts() -> None:
    frame = stats("a", 30).assign(views_growth_rate=99.0)
    out, _ = clean(frame)
    assert out.loc[0, "views_growth_rate"] == 0.0
    assert out.loc[1, "views_growth_rate"] == pytest.approx(10 / 1000 * 100)


# ---------------------------------------------------------------- inputs


def test_input_columns_are_the_spec_six_plus_optional_time_features() -> None:
    assert seq.input_columns("level") == [*seq.COUNT_COLUMNS, *seq.GROWTH_COLUMNS]
    assert len(seq.input_columns("increment", time_features=True)) == 10
    with pytest.raises(ConfigError):
        seq.input_columns("delta")


def test_increments_restart_at_each_segment() -> None:
    out, _ = clean(stats("a", 30).drop(index=range(10, 16)), max_gap_steps=3)
    inputs = seq.model_inputs(out, "increment")
    firsts = out.groupby("segment").head(1).index
    assert (inputs.loc[firsts, "view_count_increment"] == 0).all()
    assert (inputs.drop(index=firsts)["view_count_increment"] == 10).all()


def test_time_features_are_in_unit_range() -> None:
    ts = pd.Series(pd.date_range("2025-07-05T22:58:00Z", periods=5, freq="min"))  # a Saturday
    tf = seq.time_features(ts)
    assert list(tf.columns) == list(seq.TIME_FEATURES)
    assert tf.to_numpy().min() >= 0 and tf.to_numpy().max() <= 1
    assert (tf["is_weekend"] == 1).all()
    assert tf.loc[0, "hour"] == pytest.approx(22 / 23)


# ---------------------------------------------------------------- split


def test_split_is_chronological_within_each_video() -> None:
    frame = pd.concat([stats("a", 100), stats("b", 50, start="2025-07-10T00:00:00Z")])
    out, _ = clean(frame)
    parts = seq.assign_parts(out, test_fraction=0.2, validation_fraction=0.25)
    for video, n in (("a", 100), ("b", 50)):
        p = parts[out["video_id"] == video].tolist()
        n_train = int(n * 0.8)
        n_fit = n_train - int(n_train * 0.25)
        assert p == ["fit"] * n_fit + ["val"] * (n_train - n_fit) + ["test"] * (n - n_train)
    # unlike spec 002's concatenation split, every video is in every part
    for part in seq.PARTS:
        assert set(out.loc[parts == part, "video_id"]) == {"a", "b"}


def test_split_follows_time_not_segments() -> None:
    out, _ = clean(stats("a", 100).drop(index=range(70, 80)), max_gap_steps=3)
    parts = seq.assign_parts(out, test_fraction=0.2, validation_fraction=0.2)
    last_train = out.loc[parts != "test", "timestamp"].max()
    assert last_train < out.loc[parts == "test", "timestamp"].min()
    assert out.loc[parts == "test", "segment"].unique().tolist() == ["a#1"]


def test_expanding_folds_grow_and_never_test_the_past() -> None:
    out, _ = clean(stats("a", 60))
    folds = seq.expanding_window_folds(out, n_splits=5)
    assert len(folds) == 5
    sizes = [(f == "fit").sum() for f in folds]
    assert sizes == sorted(sizes) and sizes[0] == 10
    for fold in folds:
        assert (fold == "test").sum() == 10  # the spec's last fold was empty
        assert (
            out.loc[fold == "fit", "timestamp"].max() < out.loc[fold == "test", "timestamp"].min()
        )
    carved = seq.carve_validation(folds[1], out, 0.25)
    assert (carved == "val").sum() == 5 and (carved == "fit").sum() == 15


# ---------------------------------------------------------------- scaler


def test_scaler_sees_training_rows_only() -> None:
    """Spec 002 fitted MinMax on the whole series; the test rows' larger counts leaked."""
    frame = stats("a", 100, step=10)
    frame.loc[80:, "view_count"] += 100_000  # the test part is far above anything trained on
    out, _ = clean(frame)
    parts = seq.assign_parts(out, test_fraction=0.2, validation_fraction=0.2)
    inputs = seq.model_inputs(out, "level")
    scaler = seq.fit_scaler(inputs, parts == "fit")

    fit_views = out.loc[parts == "fit", "view_count"]
    assert scaler.data_max_[0] == fit_views.max()
    leaky = MinMaxScaler().fit(inputs[seq.learned_columns(inputs.columns)])
    assert leaky.data_max_[0] > scaler.data_max_[0]  # what the spec's recipe would have seen

    scaled = seq.scale_inputs(inputs, scaler)
    assert scaled[(parts == "fit").to_numpy(), 0].max() == pytest.approx(1.0)
    assert scaled[(parts == "test").to_numpy(), 0].min() > 1.0  # test rows transformed only


def test_time_features_bypass_the_fitted_scaler() -> None:
    out, _ = clean(stats("a", 30))
    inputs = seq.model_inputs(out, "increment", time_features_on=True)
    scaler = seq.fit_scaler(inputs, np.ones(len(inputs), bool))
    assert scaler.n_features_in_ == 6
    scaled = seq.scale_inputs(inputs, scaler)
    np.testing.assert_allclose(scaled[:, 6:], inputs[list(seq.TIME_FEATURES)], rtol=1e-6)


# ---------------------------------------------------------------- windows


def _windows(frame: pd.DataFrame, counts_as: str = "level", **kw):
    out, _ = clean(frame, **kw)
    parts = seq.assign_parts(out)
    inputs = seq.model_inputs(out, counts_as)
    scaler = seq.fit_scaler(inputs, parts == "fit")
    scaled = seq.scale_inputs(inputs, scaler)
    return out, parts, scaler, scaled, seq.make_windows(out, scaled, parts, L)


def test_windows_hold_the_previous_rows_and_belong_to_their_target_part() -> None:
    out, parts, _, scaled, windows = _windows(stats("a", 50))
    assert sum(len(w) for w in windows.values()) == 50 - L
    for part, w in windows.items():
        assert w.X.shape[1:] == (L, 6) and w.X.dtype == np.float32
        assert (parts.to_numpy()[w.target_row] == part).all()
        for i, t in enumerate(w.target_row):
            np.testing.assert_array_equal(w.X[i], scaled[t - L : t])
            np.testing.assert_array_equal(w.levels[i], out[list(seq.COUNT_COLUMNS)][t - L : t])
            np.testing.assert_array_equal(w.next_levels[i], out.loc[t, list(seq.COUNT_COLUMNS)])


def test_windows_never_cross_a_segment_boundary() -> None:
    frame = stats("a", 60).drop(index=range(30, 40))
    out, _, _, _, windows = _windows(frame, max_gap_steps=3)
    total = sum(len(w) for w in windows.values())
    assert total == (30 - L) + (20 - L)
    for w in windows.values():
        for t, segment in zip(w.target_row, w.segment, strict=True):
            assert (out.loc[t - L : t, "segment"] == segment).all()


@pytest.mark.parametrize("predict", seq.PREDICT_MODES)
def test_targets_map_back_to_the_actual_counts(predict: str) -> None:
    counts_as = "level" if predict == "level" else "increment"
    _, _, scaler, _, windows = _windows(stats("a", 60, step=7), counts_as=counts_as)
    test = windows["test"]
    for target in seq.TARGETS:
        k = seq.COUNT_COLUMNS.index(seq.target_column(target))
        y = seq.window_targets(test, target, predict, scaler, k)
        back = seq.predictions_to_counts(y, test.levels[:, :, k], predict, scaler, k)
        np.testing.assert_allclose(back, test.next_levels[:, k], rtol=1e-5, atol=1e-3)


def test_forecasts_never_fall_below_the_last_count() -> None:
    scaler = MinMaxScaler().fit(np.array([[0.0], [10.0]]))
    levels = np.array([[100.0, 110.0, 120.0]])
    out = seq.predictions_to_counts(np.array([-5.0]), levels, "increment", scaler, 0)
    assert out[0] == 120.0


def test_unknown_target_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown target"):
        seq.target_column("shares")
