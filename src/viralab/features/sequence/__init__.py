"""Forecaster features (spec 002): clean per-video series, inputs, split, scaler, windows.

Training and the logged pyfunc both call this package, so the rules hold in both places:
`cleaning` (messy rows, counted), `inputs` (features and the scaler), `splits` (the
chronological split per video), `windows` (windows, targets and outputs back to counts);
`columns` names everything.
"""

from viralab.features.sequence.cleaning import CleaningReport, clean_stats, growth_rates
from viralab.features.sequence.columns import (
    COUNT_COLUMNS,
    COUNT_MODES,
    GROWTH_COLUMNS,
    PARTS,
    PREDICT_MODES,
    TARGETS,
    TIME_FEATURES,
    input_columns,
    target_column,
)
from viralab.features.sequence.inputs import (
    column_scale,
    fit_scaler,
    learned_columns,
    model_inputs,
    scale_inputs,
    time_features,
)
from viralab.features.sequence.splits import (
    SPLITS,
    assign_parts,
    carve_validation,
    expanding_window_folds,
)
from viralab.features.sequence.windows import (
    Windows,
    make_windows,
    predictions_to_counts,
    window_targets,
)

__all__ = [
    "COUNT_COLUMNS",
    "COUNT_MODES",
    "GROWTH_COLUMNS",
    "PARTS",
    "PREDICT_MODES",
    "SPLITS",
    "TARGETS",
    "TIME_FEATURES",
    "CleaningReport",
    "Windows",
    "assign_parts",
    "carve_validation",
    "clean_stats",
    "column_scale",
    "expanding_window_folds",
    "fit_scaler",
    "growth_rates",
    "input_columns",
    "learned_columns",
    "make_windows",
    "model_inputs",
    "predictions_to_counts",
    "scale_inputs",
    "target_column",
    "time_features",
    "window_targets",
]
