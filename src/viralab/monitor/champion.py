"""The champion a check judges, its training run(s), and the time stamps read from them.

Shared by the preference and forecast triggers and the retrain's comparison.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from viralab.registry.client import (
    RegistryError,
    RunData,
    load_pyfunc,
    registry_errors,
    require_model,
    run_data,
)
from viralab.registry.markers import RegistrySettings, holder

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

PARENT_TAG = "mlflow.parentRunId"


def champion_of(
    client: MlflowClient, registry: RegistrySettings, model: str
) -> tuple[ModelVersion, RunData]:
    """The active version of `model` and its training run.

    Raises:
        RegistryError: unknown model, no champion, or a champion without a run.
    """
    require_model(client, model)
    version = holder(client, registry, model, "champion")
    if version is None:
        raise RegistryError(
            f"model {model!r} has no active version ({registry.describe('champion')}): nothing "
            f"to check against; promote one: viralab registry promote {model} <version> "
            "--to champion"
        )
    run = run_data(client, version.run_id)
    if run is None:
        raise RegistryError(
            f"{model} version {version.version} has no training run: its data cannot be known"
        )
    return version, run


def lineage(client: MlflowClient, run: RunData) -> list[RunData]:
    """The run, then its parent (a `target=all` child logs no data tags itself)."""
    runs = [run]
    parent_id = run.tags.get(PARENT_TAG)
    if parent_id:
        parent = run_data(client, parent_id)
        if parent is not None:
            runs.append(parent)
    return runs


def first_found(runs: list[RunData], getter: Any) -> Any:
    for r in runs:
        value = getter(r)
        if value is not None:
            return value
    return None


def parse_time(text: str | None) -> pd.Timestamp | None:
    if not text:
        return None
    stamp = pd.to_datetime(text, utc=True, errors="coerce")
    return None if pd.isna(stamp) else stamp


def run_started(run: RunData) -> pd.Timestamp | None:
    return pd.Timestamp(run.start_time, unit="ms", tz="UTC") if run.start_time else None


def parse_stamps(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")


def load_champion(version: ModelVersion) -> Any:
    """The champion's pyfunc (not cached: tests and long processes switch stores)."""

    with registry_errors(f"loading {version.name} version {version.version}"):
        return load_pyfunc(f"models:/{version.name}/{version.version}")


__all__ = [
    "PARENT_TAG",
    "champion_of",
    "first_found",
    "lineage",
    "load_champion",
    "parse_stamps",
    "parse_time",
    "run_started",
]
