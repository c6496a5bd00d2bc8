"""The pyfunc packaging: the fitted pipeline logged as a models-from-code model, registered.

The wrapper itself is `serve/preference_model.py` (run at load time, not a pickle); this is
the training side's glue: signature, requirements, model config and the version's tags.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Any

import mlflow
from mlflow.models import infer_signature
from omegaconf import DictConfig, OmegaConf

import viralab
from viralab.families.preference.fit import PreferenceResult
from viralab.features.documents import ANALYSIS_COLUMN
from viralab.serve import preference_model as preference_model_code
from viralab.serve.limits import ServeLimits
from viralab.serve.preference_model import (
    PARAMS_EXAMPLE,
    PIPELINE_ARTIFACT,
    PIPELINE_FILE,
    VIDEO_ID_COLUMN,
    PreferenceModel,
    save_pipeline,
)

log = logging.getLogger(__name__)


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


def with_video_id(signature: Any) -> Any:
    """The signature plus an optional `video_id` input column: MLflow drops undeclared columns
    before `predict`, and the prediction log needs the id to join later ratings."""
    from mlflow.types.schema import ColSpec, DataType, Schema

    extra = ColSpec(DataType.string, VIDEO_ID_COLUMN, required=False)
    inputs = [*signature.inputs.inputs, extra]
    signature.inputs = Schema(inputs)
    return signature


def log_model(cfg: DictConfig, result: PreferenceResult, tmp: Path) -> str | None:
    """The pyfunc model, registered as `task.registered_model`: models-from-code (the wrapper
    is `serve/preference_model.py`, run at load time, not a pickle) with the fitted pipeline
    as a skops artifact (see `viralab.serve.preference_model` for the trusted types)."""
    pipeline_path = save_pipeline(result.pipeline, tmp / PIPELINE_FILE)
    example = result.test[[ANALYSIS_COLUMN]].head(2)
    # the test R2 scales the served confidence (spec §7.2: coverage x accuracy.r2)
    # serving limits set in the config travel with the model; unset ones stay the defaults
    # (or VIRALAB_* environment variables) of the process that serves it
    serve_cfg = OmegaConf.to_container(cfg.serve) if cfg.get("serve") else {}
    model_config = {"r2": float(result.metrics["r2"]), **serve_cfg}
    limits = ServeLimits.from_config(serve_cfg)
    model = PreferenceModel(result.pipeline, r2=model_config["r2"], limits=limits)
    signature = with_video_id(
        infer_signature(example, model.predict(None, example), params=PARAMS_EXAMPLE)
    )
    registered = cfg.task.registered_model if cfg.get("register", True) else None
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=preference_model_code.__file__,
        artifacts={PIPELINE_ARTIFACT: str(pipeline_path)},
        code_paths=[str(Path(viralab.__file__).parent)],
        signature=signature,
        input_example=example,
        pip_requirements=model_requirements(),
        model_config=model_config,
        registered_model_name=registered,
    )
    version = getattr(info, "registered_model_version", None)
    if version is not None:
        client = mlflow.MlflowClient()
        client.set_model_version_tag(registered, str(version), "viralab.model", cfg.model.name)
        client.set_model_version_tag(
            registered, str(version), "viralab.run_name", mlflow.active_run().info.run_name
        )
        log.info("Registered %s version %s", registered, version)
    return None if version is None else str(version)
