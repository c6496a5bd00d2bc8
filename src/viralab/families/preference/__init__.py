"""The preference family: what the rest of viralab uses of it (train, columns, tags, data).

Entry points call `train(cfg)`; the monitor and the registry read the columns, the retrain
tags and the extraction from `prepare` (the family's bottom layer, free of MLflow writes).
"""

from viralab.families.preference.fit import PreferenceResult, build_pipeline, fit_preference
from viralab.families.preference.milestones import data_status, decide_training
from viralab.families.preference.prepare import (
    ANALYSIS_COLUMN,
    DIMENSION_PREFIX,
    LABEL,
    TAG_MAX_RATED_AT,
    TAG_N_RATINGS,
    dimension_names,
    extract_usable,
    records_frame,
)
from viralab.families.preference.run import load_preference_data
from viralab.families.preference.run import train_preference as train

__all__ = [
    "ANALYSIS_COLUMN",
    "DIMENSION_PREFIX",
    "LABEL",
    "TAG_MAX_RATED_AT",
    "TAG_N_RATINGS",
    "PreferenceResult",
    "build_pipeline",
    "data_status",
    "decide_training",
    "dimension_names",
    "extract_usable",
    "fit_preference",
    "load_preference_data",
    "records_frame",
    "train",
]
