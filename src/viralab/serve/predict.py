"""`predict_virality_score` and forecasts from whatever version the registry says is active.

Loading is cached: one load per process per (model, version). The active version is
re-resolved from the registry (alias `champion`, or stage Production in stage mode) at most
every `resolve_ttl` seconds, so moving the alias — from the CLI or in the MLflow UI — takes
effect in a running process without a restart, and a hot loop does not query the registry on
every call.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Mapping
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities.model_registry import ModelVersion

from viralab.registry.client import RegistryError, get_client, resolve_version
from viralab.registry.markers import RegistrySettings, holder

DEFAULT_RESOLVE_TTL = 5.0

_resolved: dict[tuple[str, str], tuple[float, ModelVersion]] = {}
_lock = threading.Lock()


def _registry_settings(settings: RegistrySettings | Mapping[str, Any] | None) -> RegistrySettings:
    if isinstance(settings, RegistrySettings):
        return settings
    if settings is None:
        from viralab.config import compose

        settings = compose().registry
    return RegistrySettings.from_config(settings)


def resolve(
    name: str,
    ref: str | int | None = None,
    *,
    settings: RegistrySettings | Mapping[str, Any] | None = None,
    resolve_ttl: float = DEFAULT_RESOLVE_TTL,
) -> ModelVersion:
    """The version to use: `ref` (a number or alias) or else the active one.

    Raises:
        RegistryError: unknown model/version/alias, or no version is active yet.
    """
    key = (name, str(ref or ""))
    now = time.monotonic()
    with _lock:
        cached = _resolved.get(key)
        if cached and now - cached[0] < resolve_ttl:
            return cached[1]
    client = get_client()
    if ref not in (None, ""):
        version = resolve_version(client, name, ref)
    else:
        reg = _registry_settings(settings)
        version = holder(client, reg, name, "champion")
        if version is None:
            raise RegistryError(
                f"model {name!r} has no active version ({reg.describe('champion')}); promote "
                f"one first: viralab registry promote {name} <version> --to champion"
            )
    with _lock:
        _resolved[key] = (now, version)
    return version


@functools.lru_cache(maxsize=16)
def load_version(name: str, version: str) -> mlflow.pyfunc.PyFuncModel:
    """One load per process per registered version."""
    return mlflow.pyfunc.load_model(f"models:/{name}/{version}")


def clear_caches() -> None:
    """Forget resolved versions and loaded models (tests, or after a store switch)."""
    with _lock:
        _resolved.clear()
    load_version.cache_clear()


def load_model(
    name: str, ref: str | int | None = None, **kwargs: Any
) -> tuple[mlflow.pyfunc.PyFuncModel, ModelVersion]:
    version = resolve(name, ref, **kwargs)
    return load_version(name, str(version.version)), version


def score_documents(
    documents: Any,
    *,
    model_name: str = "preference",
    ref: str | int | None = None,
    with_factors: bool = True,
    **kwargs: Any,
) -> pd.DataFrame:
    """Score many documents (dicts or JSON text) with the active preference model."""
    model, _ = load_model(model_name, ref, **kwargs)
    python_model = model.unwrap_python_model()
    return python_model.score(documents, with_factors=with_factors)


def predict_virality_score(
    analysis: Mapping[str, Any] | str,
    *,
    model_name: str = "preference",
    ref: str | int | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Spec 000 §7.2: `{score (0-10), confidence, top_factors: [{feature, contribution}]}`."""
    row = score_documents([analysis], model_name=model_name, ref=ref, **kwargs).iloc[0]
    return {
        "score": float(row["score"]),
        "confidence": float(row["confidence"]),
        "top_factors": json.loads(row["top_factors"]),
    }


def forecast(
    rows: pd.DataFrame,
    *,
    target: str = "views",
    horizon: int = 1,
    model_prefix: str = "youtube-lstm-",
    ref: str | int | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Roll a forecaster forward `horizon` minutes from one video's recent rows."""
    model, _ = load_model(f"{model_prefix}{target}", ref, **kwargs)
    return pd.DataFrame(model.predict(rows, params={"horizon": int(horizon)}))
