"""Chronological split per video, without spec 002's leaks.

Leakage fixes against spec 002 (which scaled each whole video before splitting, kept only the
last video's scaler and split by concatenation order, so later videos were the test set):

- the split is chronological *per video*: each video's first ``1 - test_fraction`` of rows
  (by time) trains and the rest tests; the validation rows for early stopping are the last
  ``validation_fraction`` of each training part, never test rows;
- one scaler per run is fitted on the *fit* rows only (training part minus validation), of
  all videos, and is saved with the model; test rows are transformed, never fitted;
- a window belongs to the part of its *target* row; its inputs are earlier rows of the same
  segment (known at prediction time), so no target is ever inside a training window.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from viralab.errors import ConfigError

SPLITS = ("by_time", "by_video")


def assign_parts(
    clean: pd.DataFrame,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.2,
    split: str = "by_time",
    seed: int = 42,
) -> pd.Series:
    """Label each cleaned row `fit`, `val` or `test`, by time within its own video.

    A video's first ``1 - test_fraction`` of rows train; the last ``validation_fraction`` of
    those are the validation rows (early stopping), the rest are the fit rows (weights and
    scaler). Split on the video, not the segment, so no training row is later than a test
    row of the same video.

    ``split="by_video"`` (``data.split``): whole videos are held out instead: a seeded
    ``test_fraction`` of the videos (at least one, and at least one left to train) is all
    `test`; the others are split into fit/val by time as above, without a test part. The
    models never see a test video: the hardest honest test.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"task.test_fraction must be in (0, 1), got {test_fraction}")
    if not 0.0 <= validation_fraction < 1.0:
        raise ConfigError(f"task.validation_fraction must be in [0, 1), got {validation_fraction}")
    if split not in SPLITS:
        raise ConfigError(f"data.split must be one of {SPLITS}, got {split!r}")
    parts = pd.Series("fit", index=clean.index, dtype=object)
    held_out: set[str] = set()
    if split == "by_video":
        videos = sorted(clean["video_id"].astype(str).unique())
        if len(videos) < 2:
            raise ConfigError("data.split=by_video needs at least two videos")
        n_test = min(max(1, round(len(videos) * test_fraction)), len(videos) - 1)
        order = np.random.default_rng(seed).permutation(len(videos))
        held_out = {videos[i] for i in order[:n_test]}
    for video, idx in clean.groupby("video_id", sort=False).groups.items():
        if str(video) in held_out:
            parts.loc[idx] = "test"
            continue
        if split == "by_video":
            order = clean.loc[idx, "timestamp"].sort_values(kind="stable").index
            n_fit = len(order) - int(np.floor(len(order) * validation_fraction))
            parts.loc[order[n_fit:]] = "val"
            continue
        order = clean.loc[idx, "timestamp"].sort_values(kind="stable").index
        n = len(order)
        n_train = int(np.floor(n * (1.0 - test_fraction)))
        n_fit = n_train - int(np.floor(n_train * validation_fraction))
        parts.loc[order[n_train:]] = "test"
        parts.loc[order[n_fit:n_train]] = "val"
    return parts


def expanding_window_folds(clean: pd.DataFrame, n_splits: int = 5) -> list[pd.Series]:
    """Spec 002's `time_series_split_validation`, per video and without its empty last fold.

    Each video's rows are cut into ``n_splits + 1`` equal blocks by time; fold k trains on
    blocks ``0..k`` and tests on block ``k + 1`` (the spec's loop cut ``n_splits`` blocks, so
    its last fold trained on everything and tested on nothing). Returns one part labelling
    (`fit`/`test`/`unused`) per fold; validation rows are carved later by the caller.
    """
    if n_splits < 1:
        raise ConfigError(f"cross_validation.n_splits must be >= 1, got {n_splits}")
    folds = []
    for k in range(n_splits):
        parts = pd.Series("unused", index=clean.index, dtype=object)
        for _, idx in clean.groupby("video_id", sort=False).groups.items():
            order = clean.loc[idx, "timestamp"].sort_values(kind="stable").index
            block = len(order) // (n_splits + 1)
            parts.loc[order[: (k + 1) * block]] = "fit"
            parts.loc[order[(k + 1) * block : (k + 2) * block]] = "test"
        folds.append(parts)
    return folds


def carve_validation(parts: pd.Series, clean: pd.DataFrame, fraction: float) -> pd.Series:
    """Relabel the last `fraction` of each video's `fit` rows as `val`."""
    parts = parts.copy()
    for _, idx in clean.groupby("video_id", sort=False).groups.items():
        fit_idx = [
            i
            for i in clean.loc[idx, "timestamp"].sort_values(kind="stable").index
            if parts.at[i] == "fit"
        ]
        n_val = int(np.floor(len(fit_idx) * fraction))
        if n_val:
            parts.loc[fit_idx[-n_val:]] = "val"
    return parts
