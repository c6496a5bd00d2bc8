"""The stats forecaster's MLflow signature: what a registered forecaster declares it takes
and answers (``serve.forecast_model``), written at logging time by training."""

from __future__ import annotations

from mlflow.models import ModelSignature
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema
from mlflow.types.schema import AnyType

from viralab.features.sequence import COUNT_COLUMNS, GROWTH_COLUMNS


def model_signature(multi_horizon: bool = False) -> ModelSignature:
    """Input/output schema and the `horizon` param (growth rates optional, recomputed).

    ``multi_horizon``: also the ``horizons`` param (a list; empty = the next-step output).
    """
    # Counts are whole numbers (long). `timestamp` is typed Any: MLflow's datetime type
    # rejects timezone-aware values, and the sources hold UTC-aware ones; the model parses it
    # itself (ISO strings; naive means UTC).
    inputs = Schema(
        [ColSpec(AnyType(), "timestamp"), ColSpec("string", "video_id", required=False)]
        + [ColSpec("long", c) for c in COUNT_COLUMNS]
        + [ColSpec("double", c, required=False) for c in GROWTH_COLUMNS]
    )
    outputs = Schema(
        [
            ColSpec("string", "video_id"),
            ColSpec("datetime", "timestamp"),
            ColSpec("long", "step"),
            ColSpec("string", "target"),
            ColSpec("double", "prediction"),
        ]
    )
    specs = [ParamSpec("horizon", "long", 1)]
    if multi_horizon:
        specs.append(ParamSpec("horizons", "long", [], shape=(-1,)))
    return ModelSignature(inputs=inputs, outputs=outputs, params=ParamSchema(specs))
