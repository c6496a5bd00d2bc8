"""A real `mlflow server --app-name viralab[-auth]` for the guard tests, and readers of the
application database it writes (registry_events, the model_versions mirror)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import requests
from sqlalchemy import create_engine, select

from tests.support.services import ManagedProcess, copy_sqlite, require_service, start_mlflow_server
from viralab.promotion.events import read_events
from viralab.registry.mirror import model_versions

ADMIN = ("admin", "viralab-admin-pw-123")


@dataclass
class GuardedServer:
    server: ManagedProcess
    app_db: str  # the application database the server writes events and the mirror to

    @property
    def url(self) -> str:
        return self.server.url

    def events(self, model: str = "preference") -> list[dict]:
        return read_events(model, database_url=self.app_db)

    def active(self, model: str = "preference") -> int | None:
        """The mirror's active version of `model` (None: no active row)."""
        engine = create_engine(self.app_db)
        try:
            with engine.connect() as conn:
                c = model_versions.c
                query = select(c.registry_version).where(c.model_name == model, c.is_active)
                return conn.execute(query).scalar()
        finally:
            engine.dispose()


def start_guarded(
    base: Path,
    template: Path,
    *,
    policy: str = "enforce",
    auth: bool = False,
) -> GuardedServer:
    """Start the server on a copy of the migrated template store (starts in seconds)."""
    backend = base / "backend.db"
    copy_sqlite(template, backend)
    app_db = f"sqlite:///{base}/viralab.db"
    env = {
        "VIRALAB_DATABASE_URL": app_db,
        # its own gate sets (in the app DB, as in production), never the session-wide store
        # other modules' training freezes real-feature gate sets into
        "VIRALAB_GATE_SETS_URL": app_db,
        "VIRALAB_SERVER_OVERRIDES": f"registry.guard.policy={policy}",
    }
    if auth:
        ini = base / "basic_auth.ini"
        ini.write_text(
            "[mlflow]\n"
            "default_permission = EDIT\n"
            f"database_uri = sqlite:///{base}/auth.db\n"
            f"admin_username = {ADMIN[0]}\n"
            f"admin_password = {ADMIN[1]}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )
        env |= {
            "MLFLOW_AUTH_CONFIG_PATH": str(ini),
            "MLFLOW_FLASK_SERVER_SECRET_KEY": "viralab-test-flask-key",
        }
    try:
        server = start_mlflow_server(
            f"sqlite:///{backend}",
            artifacts_destination=str(base / "artifacts"),
            extra_env=env,
            app_name="viralab-auth" if auth else "viralab",
        )
    except (RuntimeError, OSError) as exc:
        require_service(f"mlflow server --app-name viralab: {exc}")
    credentials = ADMIN if auth else None
    deadline = time.monotonic() + 90
    while True:
        try:
            if requests.get(f"{server.url}/health", auth=credentials, timeout=5).ok:
                break
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            server.stop()
            require_service(f"mlflow server never became healthy: {server.log_tail()}")
        time.sleep(0.5)
    return GuardedServer(server, app_db)
