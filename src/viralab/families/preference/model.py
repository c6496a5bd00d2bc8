"""What the pyfunc model of a preference run needs installed: its pinned requirements.

The wrapper itself is `serve/preference_model.py` (run at load time, not a pickle); logging and
registering it (signature, model config, the version's tags) is `families.preference.log`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version

#: What the logged model imports when it is loaded (pinned to this environment's versions).
#: Listed rather than inferred: MLflow's inference loads the model in a subprocess (~7 s).
MODEL_REQUIREMENTS = (
    "mlflow",
    "scikit-learn",
    "scipy",
    "pandas",
    "numpy",
    "joblib",
    "skops",  # the fitted pipeline's format (serve.preference_model)
    "shap",  # serve.explain: top factors of tree models
    "orjson",  # serve.scoring: JSON parsing on the scoring path
    "cachetools",  # features.flatten: the byte-bounded flatten cache
)


def model_requirements() -> list[str]:
    """`MODEL_REQUIREMENTS` pinned to the installed versions (unpinned if not installed)."""
    pins = []
    for dist in MODEL_REQUIREMENTS:
        try:
            pins.append(f"{dist}=={dist_version(dist)}")
        except PackageNotFoundError:
            pins.append(dist)
    return pins
