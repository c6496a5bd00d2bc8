"""The viralab MLflow server app: gates and an audit row for promotions made in the UI.

`mlflow server --app-name viralab` (or `viralab-auth`, on top of MLflow's basic-auth) adds a
Flask `before_request` to MLflow's own app. It answers the registry calls that move the
champion/challenger markers of a guarded model (one with `gates` in `conf/registry/`) itself:
the alias set/delete and stage transitions, on the UI's `/ajax-api/2.0/...` paths and the REST
`/api/2.0/...` ones. They go through the same `promote` / `remove` as the CLI: gates,
compare-and-set, one `registry_events` row naming the (authenticated) reviewer, the move and a
mirror sync in one transaction. Everything else reaches MLflow's handlers untouched.

Policy `registry.guard.policy`: `enforce` answers a failing promotion with HTTP 403 and
`{"error_code": "PERMISSION_DENIED", "message": "<one line>"}` (MLflow's alias dialog shows the
message in red and leaves the alias where it was); a reviewer overrides by first setting the
version tag `viralab.force_reason`. `warn` lets it through, tagged `viralab.promotion_flagged`.
Hydra overrides for the server's config come from `$VIRALAB_SERVER_OVERRIDES`
(e.g. `registry.guard.policy=warn`); the application database from `$VIRALAB_DATABASE_URL`.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import shlex
from typing import Any
from urllib.parse import urlparse

from flask import Flask, Response, g, jsonify, request
from mlflow import MlflowClient

from viralab.config import compose
from viralab.errors import ViralabError
from viralab.promotion import events
from viralab.promotion.events import MarkerMoved
from viralab.promotion.promote import PromotionRefused, promote, remove
from viralab.registry.client import RegistryError
from viralab.registry.markers import RegistrySettings, holder, target_of
from viralab.tracking.tags import FORCE_REASON

log = logging.getLogger(__name__)

OVERRIDES_ENV = "VIRALAB_SERVER_OVERRIDES"
ROUTE = re.compile(
    r"/(?P<api>ajax-api|api)/2\.0/mlflow/"
    r"(?P<what>registered-models/alias|model-versions/transition-stage)$"
)


@functools.cache
def server_settings() -> RegistrySettings:
    """The project's registry config, composed once per server process."""

    cfg = compose(shlex.split(os.environ.get(OVERRIDES_ENV, "")))
    return RegistrySettings.from_config(cfg.registry)


@functools.cache
def server_client() -> MlflowClient:
    """A client on this server's own backend/registry stores (no HTTP round trip)."""
    from mlflow.server import BACKEND_STORE_URI_ENV_VAR, REGISTRY_STORE_URI_ENV_VAR

    tracking = os.environ.get(BACKEND_STORE_URI_ENV_VAR)
    registry = os.environ.get(REGISTRY_STORE_URI_ENV_VAR) or tracking
    _resolve_proxied_artifacts_locally()
    return MlflowClient(tracking_uri=tracking, registry_uri=registry)


def _resolve_proxied_artifacts_locally() -> None:
    """Runs logged through this server name artifacts `mlflow-artifacts:/...`, which a client
    resolves over HTTP; inside the server they live under `--artifacts-destination`."""
    from mlflow.server import ARTIFACTS_DESTINATION_ENV_VAR
    from mlflow.store.artifact.artifact_repository_registry import (
        _artifact_repository_registry,
        get_artifact_repository,
    )

    destination = os.environ.get(ARTIFACTS_DESTINATION_ENV_VAR)
    if not destination:
        return

    def local_repository(
        uri: str, tracking_uri: str | None = None, registry_uri: str | None = None
    ):
        path = urlparse(uri).path.lstrip("/")
        return get_artifact_repository(f"{destination.rstrip('/')}/{path}")

    _artifact_repository_registry.register("mlflow-artifacts", local_repository)


def actor() -> str:
    """The authenticated user under basic-auth; otherwise nobody can be named."""
    user = getattr(g, "mlflow_authenticated_user", None)
    if isinstance(user, str) and user:
        return user
    auth = request.authorization
    if auth is not None and auth.username:
        return auth.username
    return "anonymous"


def _params() -> dict[str, Any]:
    body = request.get_json(silent=True)
    return {**request.args.to_dict(), **(body if isinstance(body, dict) else {})}


def _error(status: int, code: str, message: str) -> Response:
    response = jsonify({"error_code": code, "message": message})
    response.status_code = status
    return response


def refusal_message(exc: PromotionRefused, model: str, version: str, target: str) -> str:
    failed = "; ".join(f"{r.gate} ({r.detail})" for r in exc.report.failures)
    return (
        f"viralab refused to make {model} version {version} the {target}: "
        f"{len(exc.report.failures)} gate(s) failed: {failed}. To override, first set the "
        f"version tag {FORCE_REASON} to your reason."
    )


def guard_request() -> Response | None:
    """`before_request`: answer a guarded marker move, or return None to let MLflow handle it."""
    match = ROUTE.search(request.path)
    if match is None:
        return None
    is_alias = match["what"].endswith("alias")
    if request.method not in (("POST", "DELETE") if is_alias else ("POST",)):
        return None
    params = _params()
    model = str(params.get("name") or "")
    settings = server_settings()
    if not model or not settings.guarded(model) or (settings.mode == "alias") != is_alias:
        return None
    marker = str(params.get("alias") if is_alias else params.get("stage") or "")
    source = "ui" if match["api"] == "ajax-api" else "api"
    try:
        return _apply(settings, model, marker, params, is_alias, source)
    except PromotionRefused as exc:
        version, target = str(params.get("version")), str(target_of(settings, marker))
        return _error(403, "PERMISSION_DENIED", refusal_message(exc, model, version, target))
    except MarkerMoved as exc:
        return _error(409, "RESOURCE_CONFLICT", str(exc))
    except RegistryError as exc:
        return _error(400, "INVALID_PARAMETER_VALUE", str(exc).splitlines()[0])
    except ViralabError as exc:
        log.error("guarded registry change failed: %s", exc)
        return _error(500, "INTERNAL_ERROR", str(exc).splitlines()[0])


def _apply(
    settings: RegistrySettings,
    model: str,
    marker: str,
    params: dict[str, Any],
    is_alias: bool,
    source: str,
) -> Response | None:
    client = server_client()
    target = target_of(settings, marker)
    removing = is_alias and request.method == "DELETE"
    if not is_alias and target is None:  # a stage transition away from a marker's stage
        version = str(params.get("version"))
        for held in ("champion", "challenger"):
            current = holder(client, settings, model, held)  # type: ignore[arg-type]
            if current is not None and str(current.version) == version:
                target, removing = held, True  # type: ignore[assignment]
                break
    if target is None:
        return None
    if removing:
        remove(client, settings, model, target, user=actor(), source=source)
    else:
        version = str(params.get("version"))
        with_tags = client.get_model_version(model, version).tags or {}
        override = (with_tags.get(FORCE_REASON) or "").strip() or None
        warn = settings.guard_policy == "warn"
        promote(
            client,
            settings,
            model,
            version,
            target,
            force=override is not None and not warn,
            flag=warn,
            reason=override,
            user=actor(),
            source=source,
        )
    if is_alias:
        return jsonify({})
    return _stage_response(client, model, str(params.get("version")))


def _stage_response(client: MlflowClient, model: str, version: str) -> Response:
    from mlflow.protos.model_registry_pb2 import TransitionModelVersionStage
    from mlflow.utils.proto_json_utils import message_to_json

    response = TransitionModelVersionStage.Response()
    response.model_version.MergeFrom(client.get_model_version(model, version).to_proto())
    return Response(message_to_json(response), mimetype="application/json")


def install_guard(app: Flask) -> Flask:
    """Register the guard on MLflow's Flask app (after any auth hook, so users are known)."""
    events.KEEP_ENGINES = True
    app.before_request(guard_request)
    return app


def _as_served(app: Flask):
    from mlflow.environment_variables import _MLFLOW_SGI_NAME

    if _MLFLOW_SGI_NAME.get() == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return create_fastapi_app(app)
    return app


def create_app(app: Flask | None = None):
    """`mlflow server --app-name viralab`: MLflow's server with the registry guard."""
    from mlflow.server import app as mlflow_app

    return _as_served(install_guard(app or mlflow_app))


def create_auth_app(app: Flask | None = None):
    """`mlflow server --app-name viralab-auth`: MLflow's basic-auth app plus the guard; the
    guard runs after authentication, so events name the logged-in reviewer."""
    from mlflow.server import app as mlflow_app
    from mlflow.server.auth import create_app as create_basic_auth_app

    flask_app = app or mlflow_app
    served = create_basic_auth_app(flask_app)
    install_guard(flask_app)
    return served
