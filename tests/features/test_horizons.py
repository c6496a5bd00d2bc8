"""Direct multi-horizon windows: the target at o + H never enters an input, nor crosses a part."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from viralab.errors import ConfigError
from viralab.features import horizons as hz
from viralab.features import sequence as seq

L = 4
HORIZONS = (1, 3, 6)


def frame() -> pd.DataFrame:
    """Two videos; counts encode their own row number so leaks are visible."""
    parts = []
    for video, n in (("a", 40), ("b", 30)):
        i = np.arange(n)
        parts.append(
            pd.DataFrame(
                {
                    "timestamp": pd.date_range("2025-07-01", periods=n, freq="min", tz="UTC"),
                    "video_id": video,
                    "view_count": 1000 + i * 7 + (i % 3),
                    "like_count": 10 + i,
                    "comment_count": i // 5,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def prepared():
    clean, _ = seq.clean_stats(frame(), sequence_length=L)
    parts = seq.assign_parts(clean, 0.25, 0.25)
    inputs = seq.model_inputs(clean)
    scaled = seq.scale_inputs(inputs, seq.fit_scaler(inputs, parts == "fit"))
    return clean, parts, seq.make_windows(clean, scaled, parts, L)


def test_targets_lie_after_every_input_row_and_inside_the_same_part() -> None:
    clean, parts, windows = prepared()
    counts = clean[list(seq.COUNT_COLUMNS)].to_numpy(dtype="float64")
    segments = clean["segment"].to_numpy()
    for part in seq.PARTS:
        hw = hz.horizon_windows(clean, parts, windows[part], part, HORIZONS)
        assert len(hw) == len(windows[part]) > 0
        input_rows = hw.windows.target_row[:, None] - np.arange(L, 0, -1)[None, :]
        # the inputs end at the origin ...
        assert (input_rows.max(axis=1) == hw.origin_row).all()
        np.testing.assert_array_equal(hw.windows.levels, counts[input_rows])
        for j, h in enumerate(HORIZONS):
            rows = hw.origin_row + h
            known = ~np.isnan(hw.future[:, j, 0])
            # ... and every known target is later than all of them, in the same part/segment
            assert (rows[known] > input_rows[known].max(axis=1)).all()
            np.testing.assert_array_equal(hw.future[known, j], counts[rows[known]])
            assert (parts.to_numpy()[rows[known]] == part).all()
            assert (segments[rows[known]] == segments[hw.origin_row[known]]).all()
            # unknown: beyond the part or the segment (never a value from another part)
            for r in rows[~known]:
                assert r >= len(clean) or parts.iloc[r] != part or segments[r] != segments[r - h]
        assert np.isnan(hw.future[:, -1, 0]).any()  # the last origins of a part lack H=6


def test_direct_targets_at_h1_equal_the_next_step_targets() -> None:
    clean, parts, windows = prepared()
    inputs = seq.model_inputs(clean)
    scaler = seq.fit_scaler(inputs, parts == "fit")
    hw = hz.horizon_windows(clean, parts, windows["fit"], "fit", HORIZONS)
    for predict in seq.PREDICT_MODES:
        lo, rng = seq.column_scale(scaler, 0)
        direct = hz.direct_targets(hw, 0, predict, lo, rng)
        nxt = seq.window_targets(windows["fit"], "views", predict, scaler, 0)
        np.testing.assert_allclose(direct[:, 0], nxt, rtol=1e-5)
        # and back to counts: the known future counts (floored at the last count)
        back = hz.direct_to_counts(direct, hw.windows.levels[:, :, 0], HORIZONS, predict, lo, rng)
        known = ~np.isnan(hw.future[:, :, 0])
        np.testing.assert_allclose(back[known], hw.future[:, :, 0][known], rtol=1e-4)


def test_stride_keeps_every_kth_origin_of_each_segment() -> None:
    clean, parts, windows = prepared()
    every = hz.horizon_windows(clean, parts, windows["fit"], "fit", HORIZONS)
    third = hz.horizon_windows(clean, parts, windows["fit"], "fit", HORIZONS, stride=3)
    for seg in np.unique(every.windows.segment):
        rows = every.origin_row[every.windows.segment == seg]
        np.testing.assert_array_equal(third.origin_row[third.windows.segment == seg], rows[::3])


def test_history_is_nan_before_the_segment_starts() -> None:
    clean, _, _ = prepared()
    start_b = int(np.flatnonzero(clean["video_id"].to_numpy() == "b")[0])
    hist = hz.history_levels(clean, np.array([start_b + 2]), 5)
    assert np.isnan(hist[0, :2]).all()
    np.testing.assert_array_equal(
        hist[0, 2:, 0], clean["view_count"].to_numpy()[start_b : start_b + 3]
    )


@pytest.mark.parametrize("bad", [[], [0, 1], [15, 60], ["x"]])
def test_horizons_must_be_positive_and_include_one(bad) -> None:
    with pytest.raises(ConfigError, match=r"task\.horizons"):
        hz.check_horizons(bad)


def test_by_video_split_keeps_whole_videos_out() -> None:
    clean, _ = seq.clean_stats(frame(), sequence_length=L)
    parts = seq.assign_parts(clean, 0.25, 0.25, split="by_video", seed=1)
    by_video = parts.groupby(clean["video_id"]).agg(set)
    assert sorted(map(sorted, by_video)) == [["fit", "val"], ["test"]]
    with pytest.raises(ConfigError, match=r"data\.split"):
        seq.assign_parts(clean, split="random")
