"""Schemas of the `tracking` group (`conf/tracking/*.yaml`): the MLflow store."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LocalTracking:
    """`conf/tracking/local.yaml`: the embedded SQLite store under `mlruns/`."""

    uri: str | None = "sqlite:///mlruns/mlflow.db"
    prediction_log: bool | None = None


@dataclass
class ServerTracking:
    """`conf/tracking/server.yaml`: a team's mlflow server (URI from the environment)."""

    uri: str | None = "${oc.env:MLFLOW_TRACKING_URI}"
    prediction_log: bool | None = True


#: `conf/tracking/<name>.yaml` -> schema.
TRACKING_SCHEMAS: dict[str, type] = {"local": LocalTracking, "server": ServerTracking}
