"""The team deployment, for real: `mlflow server` on PostgreSQL with artifacts in S3.

A real PostgreSQL cluster (backend store), moto's S3 in server mode (artifact store, reached
only by the server: clients go through `--serve-artifacts`) and a real `mlflow server`
process, all on loopback. Training, registration and artifact reads go through the server
exactly as a team's machines would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import mlflow
import pytest
import requests

from tests.support.services import (
    PG_PASSWORD,
    S3_ACCESS_KEY,
    S3_SECRET_KEY,
    ManagedProcess,
    PostgresServer,
    require_service,
    s3_env,
    start_mlflow_server,
    start_s3,
)
from viralab.config import compose
from viralab.train import train

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BUCKET = "mlflow-artifacts"


@pytest.fixture(scope="module")
def s3() -> Iterator[ManagedProcess]:
    try:
        server = start_s3(BUCKET)
    except (RuntimeError, OSError) as exc:
        require_service(f"moto S3 server: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def team_server(postgres_server: PostgresServer, s3: ManagedProcess) -> Iterator[ManagedProcess]:
    backend_db = postgres_server.create_database("mlflow_backend")
    try:
        server = start_mlflow_server(
            postgres_server.url(backend_db),
            artifacts_destination=f"s3://{BUCKET}/mlartifacts",
            extra_env=s3_env(s3.url),
        )
    except (RuntimeError, OSError) as exc:
        require_service(f"mlflow server: {exc}")
    yield server
    server.stop()
    postgres_server.drop_database(backend_db)


@pytest.fixture
def via_server(team_server: ManagedProcess, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point this test's client at the server; the client holds no S3 or database secret."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team_server.url)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_S3_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    mlflow.set_tracking_uri(team_server.url)
    return team_server.url


def _bucket_keys(s3: ManagedProcess) -> list[str]:
    client = boto3.client(
        "s3",
        endpoint_url=s3.url,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        region_name="us-east-1",
    )
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_training_through_the_server_stores_artifacts_in_s3(
    via_server: str, s3: ManagedProcess, tmp_path: Path
) -> None:
    metrics = train(compose(["tracking=server", "data.n_videos=200"]))
    assert metrics["mae"] < metrics["baseline_mae"]

    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name("preference")
    assert exp.artifact_location.startswith("mlflow-artifacts:")  # proxied by the server
    [run] = client.search_runs([exp.experiment_id], max_results=1)
    assert run.info.status == "FINISHED"

    # Artifacts read back through the server...
    config_path = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="config.yaml", dst_path=str(tmp_path)
    )
    assert "model:" in Path(config_path).read_text()
    # ...and they really live in the S3 bucket.
    keys = _bucket_keys(s3)
    assert any(run.info.run_id in k and k.endswith("config.yaml") for k in keys), keys[:20]

    # The registered version loads through the server and scores raw documents.
    [version] = client.search_model_versions("name='preference'")
    model = mlflow.pyfunc.load_model(f"models:/preference/{version.version}")
    from viralab.data.sample import generate_ratings

    doc = generate_ratings(n_videos=1, seed=5)[0]["video"]["visual_analysis"]
    import pandas as pd

    out = model.predict(pd.DataFrame({"visual_analysis": [json.dumps(doc)]}))
    assert 0 <= float(out["score"].iloc[0]) <= 10

    # No secret of the deployment reached params, tags or the logged config.
    logged = json.dumps([run.data.params, run.data.tags]) + Path(config_path).read_text()
    for secret in (PG_PASSWORD, S3_SECRET_KEY, S3_ACCESS_KEY):
        assert secret not in logged


def test_basic_auth_server_rejects_anonymous_and_accepts_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth_ini = tmp_path / "basic_auth.ini"
    auth_ini.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{tmp_path}/auth.db\n"
        "admin_username = admin\n"
        "admin_password = viralab-admin-pw-123\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    try:
        server = start_mlflow_server(
            f"sqlite:///{tmp_path}/backend.db",
            artifacts_destination=str(tmp_path / "artifacts"),
            extra_env={
                "MLFLOW_AUTH_CONFIG_PATH": str(auth_ini),
                "MLFLOW_FLASK_SERVER_SECRET_KEY": "viralab-test-flask-key",
            },
            app_name="basic-auth",
        )
    except (RuntimeError, OSError) as exc:
        require_service(f"mlflow server --app-name basic-auth: {exc}")
    try:
        search = f"{server.url}/api/2.0/mlflow/experiments/search?max_results=5"
        assert requests.get(search, timeout=30).status_code == 401
        assert requests.get(search, auth=("admin", "wrong"), timeout=30).status_code == 401
        ok = requests.get(search, auth=("admin", "viralab-admin-pw-123"), timeout=30)
        assert ok.status_code == 200

        monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "viralab-admin-pw-123")
        mlflow.set_tracking_uri(server.url)
        train(compose(["tracking=server", "data.n_videos=150", "register=false"]))
        runs = mlflow.search_runs(experiment_names=["preference"])
        assert len(runs) == 1 and runs["status"].iloc[0] == "FINISHED"
        assert "viralab-admin-pw-123" not in json.dumps(runs.astype(str).to_dict())
    finally:
        server.stop()


def test_sweep_promotion_and_sync_through_the_server(
    via_server: str, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A team's loop against one server: sweep, register the best, promote, mirror to PG."""
    from sqlalchemy import text
    from typer.testing import CliRunner

    from viralab.cli import app
    from viralab.data.database import make_engine
    from viralab.sweeps.runner import run_sweep

    optuna_db = postgres_server.create_database()
    mirror_db = postgres_server.create_database()
    monkeypatch.setenv("VIRALAB_OPTUNA_STORAGE", postgres_server.url(optuna_db))

    result = run_sweep(
        [
            "sweep=ridge",
            "n_trials=3",
            "tracking=server",
            "data.n_videos=200",
            "register_best=true",
            "sweep.study_name=team-ridge",
        ]
    )
    assert result.counts.get("COMPLETE") == 3, result.counts
    assert result.registered_version is not None

    client = mlflow.MlflowClient()
    parent = client.get_run(result.parent_run_id)
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.parent_run_id}'",
    )
    assert len(children) == 3 and all(c.info.status == "FINISHED" for c in children)
    assert "team-ridge" in parent.data.tags.values()
    assert PG_PASSWORD not in json.dumps(parent.data.tags)

    runner = CliRunner()
    version = str(result.registered_version)
    promoted = runner.invoke(
        app, ["registry", "promote", "preference", version, "--to", "champion"]
    )
    assert promoted.exit_code == 0, promoted.output
    assert str(client.get_model_version_by_alias("preference", "champion").version) == version

    mirror_url = postgres_server.url(mirror_db)
    synced = runner.invoke(app, ["registry", "sync", "--database-url", mirror_url])
    assert synced.exit_code == 0, synced.output
    assert PG_PASSWORD not in synced.output
    with make_engine(mirror_url).connect() as conn:
        rows = conn.execute(
            text(
                "SELECT registry_version, is_active, run_id FROM model_versions "
                "WHERE model_name = 'preference'"
            )
        ).all()
    active = [r for r in rows if r.is_active]
    assert len(active) == 1 and str(active[0].registry_version) == version
