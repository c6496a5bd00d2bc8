"""The preference family: what the rest of viralab uses of it (train, columns, data).

Entry points call `train(cfg)`; the monitor and the registry read the columns and the
extraction from `prepare` (the family's bottom layer, free of MLflow writes; the names of the
tags they read are in `viralab.tracking.tags`); the monitor scores a saved model with
`score_recent` and bins its drift with `drift_features` (`score`).
"""

from importlib import import_module
from typing import Any

#: The family's interface, by the module that defines it. Resolved on first use (PEP 562):
#: the monitor and the registry read `prepare`'s columns and extraction at start-up of every
#: `viralab` command, and importing the package eagerly loaded scikit-learn for them.
_EXPORTS = {
    "ANALYSIS_COLUMN": "prepare",
    "DIMENSION_PREFIX": "prepare",
    "LABEL": "prepare",
    "dimension_names": "prepare",
    "extract_usable": "prepare",
    "records_frame": "prepare",
    "PreferenceResult": "fit",
    "build_pipeline": "fit",
    "fit_preference": "fit",
    "data_status": "milestones",
    "decide_training": "milestones",
    "load_preference_data": "run",
    "drift_features": "score",
    "score_recent": "score",
}

__all__ = sorted([*_EXPORTS, "train"])


def __getattr__(name: str) -> Any:
    if name == "train":  # today's `train_preference`, under the family interface's name
        return import_module(f"{__name__}.run").train_preference
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
