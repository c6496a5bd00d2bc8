"""How a saved forecaster is scored on new stats rows: the family's `score_recent`.

The monitor (retrain triggers, the challenger check) calls this and nothing inside the model:
the windows are cut and the forecasts converted by the model's own `SequenceChain` (the one
training used), asked through the wrapper's public methods (`serve.pyfunc_output`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from viralab.serve.pyfunc_output import forecaster


def score_recent(model: Any, rows: pd.DataFrame, *, after: pd.Timestamp) -> tuple[float, int]:
    """MAE (original units) of a loaded forecaster pyfunc on every window of ``rows`` whose
    target row is after ``after``, its inputs taken from whatever rows precede it; and the
    window count (NaN, 0 when there is none).

    Batched through the network (one call per 1024 windows) rather than `predict` (one call
    per video per step): the same cleaning, inputs, scaler and count conversion as training's
    test evaluation.

    Raises:
        DataError: the model is not a network forecaster, or ``rows`` has no usable rows.
    """
    model = forecaster(model)
    windows = model.windows_after(rows, after)
    if len(windows) == 0:
        return float("nan"), 0
    counts = model.next_step_counts(windows)
    actual = windows.next_levels[:, model.target_index]
    return float(np.mean(np.abs(counts - actual))), len(windows)


__all__ = ["score_recent"]
