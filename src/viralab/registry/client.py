"""The edge to MLflow's Model Registry: lookups whose failures read as one line.

Promotion and sync both need "this model / version / alias exists" and "the store answered";
MLflow reports those as `MlflowException`s (or, for a server, `requests` errors) with long
messages. Translating them here keeps every command's error to a single readable line, with
any credentials in the store URI masked.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from viralab.config import redact_text
from viralab.errors import ViralabError


class RegistryError(ViralabError):
    """An unknown model, version or alias, or a registry that does not answer."""


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", None) or exc).strip()
    return redact_text(text.splitlines()[0] if text else type(exc).__name__)[:400]


@contextlib.contextmanager
def registry_errors(action: str) -> Iterator[None]:
    """Re-raise anything the store throws while doing `action` as one `RegistryError` line."""
    try:
        yield
    except ViralabError:
        raise
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise RegistryError(f"{action}: {_first_line(exc)}") from None
        raise RegistryError(
            f"MLflow store at {store_uri()} failed while {action}: {_first_line(exc)}"
        ) from None
    except Exception as exc:  # requests / SQLAlchemy / OS errors from the store's client
        what = "unreachable" if _is_connection_error(exc) else "failed"
        raise RegistryError(
            f"MLflow store at {store_uri()} {what} while {action}: "
            f"{type(exc).__name__}: {_first_line(exc)}"
        ) from None


def _is_connection_error(exc: BaseException) -> bool:
    import requests
    from sqlalchemy.exc import OperationalError

    return isinstance(exc, requests.exceptions.ConnectionError | OperationalError | ConnectionError)


def store_uri() -> str:
    """The registry URI, safe to print."""
    return redact_text(mlflow.get_registry_uri() or mlflow.get_tracking_uri())


def require_store(uri: str | None = None) -> None:
    """Refuse a local tracking store that does not exist yet instead of letting MLflow create
    an empty one: a registry command started from the wrong directory would otherwise see
    "no models" and act on that (a sync deleting the whole mirror).

    Raises:
        RegistryError: a `sqlite:///` file or a file-store folder that is not there.
    """
    from urllib.parse import urlparse

    uri = uri or mlflow.get_registry_uri() or mlflow.get_tracking_uri()
    path: str | None = None
    if uri.startswith("sqlite:///"):
        path = uri.removeprefix("sqlite:///").split("?", 1)[0]
        if path in ("", ":memory:"):
            return
    elif uri.startswith("file:"):
        path = urlparse(uri).path
    elif "://" not in uri:
        path = uri
    if path is not None and not os.path.exists(os.path.expanduser(path)):
        raise RegistryError(
            f"no MLflow store at {redact_text(uri)} (it does not exist yet): run from the "
            "project root, or point MLFLOW_TRACKING_URI (or tracking.uri) at the store that "
            "holds your models"
        )


def set_version_tags(client: MlflowClient, name: str, version: str, tags: dict[str, str]) -> None:
    """Set several version tags. `MlflowClient.set_model_version_tag` first loads the whole
    registered model (a prompt check) for every tag, which made a promotion's tags cost more
    than everything else it does; the registry client behind it writes the tag alone."""
    registry = getattr(client, "_get_registry_client", None)
    with registry_errors(f"tagging {name} version {version}"):
        for key, value in tags.items():
            if registry is not None:
                registry().set_model_version_tag(name, str(version), key, value)
            else:  # pragma: no cover - a future MLflow without the private accessor
                client.set_model_version_tag(name, str(version), key, value)


def versions_filter(model: str) -> str:
    """A `search_model_versions` filter for every version of one model."""
    escaped = model.replace("'", "\\'")
    return f"name = '{escaped}'"


def get_client() -> MlflowClient:
    """A client for the configured tracking/registry store (see `configure_tracking`)."""
    with registry_errors("connecting"):
        return MlflowClient()


def require_model(client: MlflowClient, name: str) -> None:
    """Raises RegistryError("unknown model ...") when `name` is not registered."""
    with registry_errors(f"looking up model {name!r}"):
        try:
            client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise RegistryError(
                    f"unknown model {name!r}: not in the registry at {store_uri()}"
                ) from None
            raise


def resolve_version(client: MlflowClient, name: str, ref: str | int) -> ModelVersion:
    """A version by number ("3") or by alias ("challenger", "@challenger").

    Raises:
        RegistryError: unknown model, version or alias, or an unreachable store.
    """
    require_model(client, name)
    text = str(ref).strip()
    if text.isdigit():
        with registry_errors(f"reading {name} version {text}"):
            try:
                return client.get_model_version(name, text)
            except MlflowException as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                    raise RegistryError(f"unknown version {text} of model {name!r}") from None
                raise
    alias = text.removeprefix("@")
    if not alias:
        raise RegistryError(f"unknown version {ref!r} of model {name!r}")
    with registry_errors(f"resolving alias {alias!r} of {name}"):
        try:
            return client.get_model_version_by_alias(name, alias)
        except MlflowException as exc:
            if exc.error_code in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
                raise RegistryError(
                    f"unknown version {ref!r} of model {name!r}: neither a version number "
                    "nor an alias it holds"
                ) from None
            raise


@dataclass(frozen=True)
class RunData:
    """What the registry mirror and the gates need from a version's run."""

    run_id: str
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    start_time: int | None = None
    end_time: int | None = None
    artifact_uri: str | None = None

    @classmethod
    def from_run(cls, run: Any) -> RunData:
        return cls(
            run.info.run_id,
            dict(run.data.metrics),
            dict(run.data.tags),
            run.info.start_time,
            run.info.end_time,
            run.info.artifact_uri,
        )


def run_data(client: MlflowClient, run_id: str | None) -> RunData | None:
    """The run's latest metrics and tags, or None when the version has no (surviving) run."""
    if not run_id:
        return None
    with registry_errors(f"reading run {run_id}"):
        try:
            run = client.get_run(run_id)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
    return RunData.from_run(run)


def json_safe_metrics(metrics: dict[str, Any]) -> dict[str, float | None]:
    """Metrics as JSON numbers: NaN/inf have no JSON form (PostgreSQL JSONB rejects them)."""
    out: dict[str, float | None] = {}
    for key in sorted(metrics):
        value = metrics[key]
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        out[key] = number if math.isfinite(number) else None
    return out


def load_json_artifact(client: MlflowClient, run: RunData, path: str) -> Any | None:
    """A small JSON artifact of the run, or None when the run has no such file.

    Reads straight from the run's artifact location: `client.download_artifacts` would look
    the run up again (three store queries per file), which dominates a sync of many versions.
    """
    parent = path.rsplit("/", 1)[0] if "/" in path else None
    with registry_errors(f"reading {path} of run {run.run_id}"):
        if run.artifact_uri:
            from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

            repo = get_artifact_repository(run.artifact_uri)
            listed = {f.path for f in repo.list_artifacts(parent)}
            fetch = repo.download_artifacts
        else:
            listed = {f.path for f in client.list_artifacts(run.run_id, parent)}

            def fetch(artifact: str, dst_path: str) -> str:
                return client.download_artifacts(run.run_id, artifact, dst_path)

        if path not in listed:
            return None
        with tempfile.TemporaryDirectory(prefix="viralab-artifact-") as tmp:
            local = fetch(path, dst_path=tmp)
            with open(local, encoding="utf-8") as handle:
                return json.load(handle)


def mlflow_client() -> MlflowClient:
    """A plain `MlflowClient()` for the configured store: no error translation (that is
    `get_client`), for code outside the registry adapter that must not import MLflow."""
    return MlflowClient()


def load_pyfunc(model_uri: str, **kwargs: Any) -> Any:
    """`mlflow.pyfunc.load_model(model_uri)`: a registered or logged model, loaded."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(model_uri, **kwargs)


def register_run_model(run_id: str, path: str, name: str) -> str:
    """Register the model the run logged at ``path`` as ``name``; returns the new version.

    Raises:
        RegistryError: the registry refused it (MLflow's message).
    """
    run = mlflow.get_run(run_id)
    # MLflow 3 keeps a logged model as a LoggedModel of its run: register that one directly
    # (runs:/<id>/<path> still resolves to it, with a warning).
    logged = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run_id}' AND name = '{path}'",
        output_format="list",
    )
    uri = f"models:/{logged[0].model_id}" if logged else f"runs:/{run_id}/{path}"
    try:
        version = mlflow.register_model(uri, name)
    except MlflowException as exc:
        raise RegistryError(str(exc)) from None
    return str(version.version)
