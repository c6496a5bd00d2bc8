"""`viralab registry sync`: the registry mirrored into model_versions, on PostgreSQL and SQLite.

Real services only: the PostgreSQL fixture, a real MLflow store per test; failures are made by
killing the database connection (or the whole server) in the middle of a sync.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy import create_engine, func, select
from typer.testing import CliRunner

from tests.registry.kit import GOOD_FORECAST, GOOD_PREFERENCE, WEIGHTS, RegistryKit
from tests.support.services import PG_PASSWORD, free_port
from viralab.data.database import normalize_url
from viralab.errors import DataError
from viralab.promotion.commands import app
from viralab.registry.markers import RegistrySettings
from viralab.registry.mirror import mirror_engine, model_versions
from viralab.registry.sync import reading as sync_reading
from viralab.registry.sync import sync_registry
from viralab.registry.sync import writing as sync_writing

ROOT = Path(__file__).resolve().parents[2]


def rows(url: str) -> list[dict]:
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            result = conn.execute(
                select(model_versions).order_by(
                    model_versions.c.model_name, model_versions.c.registry_version
                )
            )
            return [dict(r._mapping) for r in result]
    finally:
        engine.dispose()


def active(url: str) -> dict[str, int]:
    return {r["model_name"]: r["registry_version"] for r in rows(url) if r["is_active"]}


def populate(kit: RegistryKit) -> None:
    """Two preference versions (v2 champion, v1.0 tag, notes) and one forecaster version."""
    kit.quick_version(
        "preference",
        GOOD_PREFERENCE,
        weights=WEIGHTS,
        version_tags={"viralab.version_tag": "v1.0"},
        description="First production model",
    )
    kit.quick_version("preference", {**GOOD_PREFERENCE, "mae": 0.1}, weights=WEIGHTS)
    kit.quick_version("youtube-lstm-views", GOOD_FORECAST, run_tags={"viralab.beats_naive": "true"})
    kit.client.set_registered_model_alias("preference", "champion", "2")
    kit.client.set_registered_model_alias("preference", "challenger", "1")


def check_first_and_repeat_sync(url: str, kit: RegistryKit, settings: RegistrySettings) -> None:
    populate(kit)
    first = sync_registry(settings, url)
    assert (first.inserted, first.updated, first.deleted, first.activated) == (3, 0, 0, 1)
    assert first.models == 2 and first.versions == 3
    assert first.artifact_downloads == 3  # one feature_weights.json look-up per run
    table = rows(url)
    v1, v2, views = table
    assert (v1["model_name"], v1["registry_version"]) == ("preference", 1)
    assert v1["version_tag"] == "v1.0"
    assert v1["notes"] == "First production model" and v1["is_active"] is False
    assert v1["aliases"] == ["challenger"]
    assert v2["is_active"] is True and v2["aliases"] == ["champion"] and v2["version_tag"] == "v2"
    assert v2["feature_weights"] == WEIGHTS
    assert v2["accuracy_metrics"]["mae"] == pytest.approx(0.1)
    assert v2["accuracy_metrics"]["r2"] == pytest.approx(0.72)
    assert v2["training_video_count"] == 200
    assert v2["trained_at"] is not None and v2["synced_at"] is not None
    assert v2["model_uri"] == "models:/preference/2" and v2["run_id"]
    assert views["feature_weights"] is None and views["is_active"] is False
    assert views["accuracy_metrics"]["mae_scaled"] == pytest.approx(0.004)

    again = sync_registry(settings, url)
    assert not again.changed
    assert again.summary().startswith("no changes")
    assert again.artifact_downloads == 0
    assert rows(url) == table  # identical, synced_at included


@pytest.mark.integration
def test_first_sync_then_idempotent_resync_postgres(pg_url, kit, settings):
    check_first_and_repeat_sync(pg_url, kit, settings)


def test_first_sync_then_idempotent_resync_sqlite(tmp_path, kit, settings):
    check_first_and_repeat_sync(f"sqlite:///{tmp_path}/viralab.db", kit, settings)


@pytest.mark.integration
def test_alias_moves_deletions_and_new_metrics_are_mirrored(pg_url, kit, settings):
    populate(kit)
    sync_registry(settings, pg_url)
    kit.client.set_registered_model_alias("preference", "champion", "1")
    kit.client.set_registered_model_alias("youtube-lstm-views", "champion", "1")
    moved = sync_registry(settings, pg_url)
    assert (moved.updated, moved.activated, moved.deactivated) == (3, 2, 1)
    assert active(pg_url) == {"preference": 1, "youtube-lstm-views": 1}

    run_id = kit.client.get_model_version("preference", "2").run_id
    kit.client.log_metric(run_id, "r2", 0.9)
    kit.client.delete_model_version("preference", "1")  # the champion disappears
    changed = sync_registry(settings, pg_url)
    assert (changed.deleted, changed.updated, changed.activated) == (1, 1, 0)
    table = {r["registry_version"]: r for r in rows(pg_url) if r["model_name"] == "preference"}
    assert list(table) == [2]
    assert table[2]["accuracy_metrics"]["r2"] == pytest.approx(0.9)
    assert active(pg_url) == {"youtube-lstm-views": 1}

    kit.client.delete_registered_model("youtube-lstm-views")
    gone = sync_registry(settings, pg_url)
    assert gone.deleted == 1 and gone.models == 1
    assert [r["model_name"] for r in rows(pg_url)] == ["preference"]


@pytest.mark.integration
def test_stage_mode_reads_production(pg_url, kit, stage_settings):
    populate(kit)
    client = kit.client
    client.transition_model_version_stage("preference", "1", "Production")
    first = sync_registry(stage_settings, pg_url)
    assert first.activated == 1
    assert active(pg_url) == {"preference": 1}  # the champion alias does not count here
    client.transition_model_version_stage(
        "preference", "2", "Production", archive_existing_versions=True
    )
    sync_registry(stage_settings, pg_url)
    assert active(pg_url) == {"preference": 2}
    stages = {
        r["registry_version"]: r["stage"] for r in rows(pg_url) if r["model_name"] == "preference"
    }
    assert stages == {1: "Archived", 2: "Production"}


def _concurrent(url: str, settings: RegistrySettings) -> list:
    barrier = threading.Barrier(3)
    results: list = []
    errors: list = []

    def one() -> None:
        barrier.wait()
        try:
            results.append(sync_registry(settings, url))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


@pytest.mark.integration
def test_concurrent_syncs_postgres(pg_url, kit, settings):
    populate(kit)
    results = _concurrent(pg_url, settings)
    assert sorted(r.inserted for r in results) == [0, 0, 3]
    assert sum(r.changed for r in results) == 1
    table = rows(pg_url)
    assert len(table) == 3 and len({(r["model_name"], r["registry_version"]) for r in table}) == 3
    assert active(pg_url) == {"preference": 2}


def test_concurrent_syncs_sqlite(tmp_path, kit, settings):
    populate(kit)
    url = f"sqlite:///{tmp_path}/viralab.db"
    results = _concurrent(url, settings)
    assert sorted(r.inserted for r in results) == [0, 0, 3]
    assert len(rows(url)) == 3 and active(url) == {"preference": 2}


def _kill_after_first_write(mp: pytest.MonkeyPatch, kill) -> None:
    """Let the sync write its first batch, then take the database away."""
    original = sync_writing.write_rows
    calls = {"n": 0}

    def write_then_kill(conn, inserts, updates):
        original(conn, inserts, updates)
        calls["n"] += 1
        if calls["n"] == 1:
            kill(conn)

    mp.setattr(sync_writing, "write_rows", write_then_kill)


def _table_count(url: str) -> int | None:
    engine = mirror_engine(url)
    try:
        with engine.connect() as conn:
            if not engine.dialect.has_table(conn, "model_versions"):
                return None
            return conn.execute(select(func.count()).select_from(model_versions)).scalar_one()
    finally:
        engine.dispose()


@pytest.mark.integration
def test_connection_killed_mid_sync_rolls_back(pg_url, kit, settings):
    populate(kit)
    sync_registry(settings, pg_url)  # table exists with 3 rows
    kit.client.set_registered_model_alias("preference", "champion", "1")
    kit.quick_version("preference", GOOD_PREFERENCE)

    def terminate(conn) -> None:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        admin = psycopg2.connect(normalize_url(pg_url).replace("postgresql+psycopg2", "postgresql"))
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
        admin.close()

    with pytest.MonkeyPatch.context() as mp, pytest.raises(DataError) as caught:
        _kill_after_first_write(mp, terminate)
        sync_registry(settings, pg_url)
    message = str(caught.value)
    assert message.startswith("database error at postgresql+psycopg2://postgres:***@")
    assert PG_PASSWORD not in message and "\n" not in message
    assert active(pg_url) == {"preference": 2} and len(rows(pg_url)) == 3  # rolled back

    done = sync_registry(settings, pg_url)
    assert (done.inserted, done.activated, done.deactivated) == (1, 1, 1)
    assert active(pg_url) == {"preference": 1} and len(rows(pg_url)) == 4


@pytest.mark.integration
def test_server_down_mid_first_sync_then_next_sync_completes(postgres_server, pg_url, kit):
    populate(kit)
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as mp:
        _kill_after_first_write(mp, lambda conn: postgres_server.stop("immediate"))
        try:
            result = runner.invoke(app, ["sync", "--database-url", pg_url])
        finally:
            postgres_server.start()
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: database error at postgresql+psycopg2://postgres:***@")
    assert "Traceback" not in result.output and PG_PASSWORD not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert _table_count(pg_url) is None  # even the CREATE TABLE was rolled back

    again = runner.invoke(app, ["sync", "--database-url", pg_url])
    assert again.exit_code == 0, again.output
    assert "inserted 3" in again.stdout and PG_PASSWORD not in again.stdout
    assert _table_count(pg_url) == 3


def test_cli_sync_sqlite_default_from_env(tmp_path, kit, monkeypatch):
    populate(kit)
    url = f"sqlite:///{tmp_path}/env.db"
    monkeypatch.setenv("VIRALAB_DATABASE_URL", url)
    runner = CliRunner()
    first = runner.invoke(app, ["sync"])
    assert first.exit_code == 0, first.output
    assert f"mirror: {url}" in first.stdout
    assert "inserted 3, updated 0, deleted 0, activated 1, deactivated 0" in first.stdout
    second = runner.invoke(app, ["sync"])
    assert second.exit_code == 0 and "no changes" in second.stdout
    # --database-url wins over the environment
    other = f"sqlite:///{tmp_path}/other.db"
    third = runner.invoke(app, ["sync", "--database-url", other])
    assert "inserted 3" in third.stdout and len(rows(other)) == 3


def test_cli_watch_keeps_syncing_until_interrupted(tmp_path, kit, monkeypatch):
    populate(kit)
    url = f"sqlite:///{tmp_path}/watch.db"
    naps: list[float] = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 1:
            kit.client.set_registered_model_alias("preference", "champion", "1")
        else:
            raise KeyboardInterrupt

    monkeypatch.setattr("viralab.registry.sync.command.time.sleep", nap)
    result = CliRunner().invoke(app, ["sync", "--database-url", url, "--watch", "5"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert len(lines) == 2 and "inserted 3" in lines[0] and "activated 1" in lines[1]
    assert result.stdout.rstrip().endswith("stopped") and naps == [5.0, 5.0]


@pytest.mark.integration
def test_unreachable_database_is_one_masked_line(kit):
    url = f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{free_port()}/viralab"
    result = CliRunner().invoke(app, ["sync", "--database-url", url])
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: database error at postgresql+psycopg2://postgres:***@127.0.0.1:"
    )
    assert len(result.stderr.strip().splitlines()) == 1
    assert PG_PASSWORD not in result.output and "Traceback" not in result.output


def test_unreachable_mlflow_store_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    result = CliRunner().invoke(app, ["sync", "--database-url", f"sqlite:///{tmp_path}/x.db"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: MLflow store at http://127.0.0.1:")
    assert "listing registered models" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


@pytest.mark.slow
@pytest.mark.integration
def test_module_entry_point_runs(tmp_path, kit, fast_store):
    populate(kit)
    url = f"sqlite:///{tmp_path}/module.db"
    env = {
        **__import__("os").environ,
        "MLFLOW_TRACKING_URI": fast_store,
        "VIRALAB_DATABASE_URL": url,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "viralab.registry.sync", "--mode", "alias"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "inserted 3" in proc.stdout
    assert active(url) == {"preference": 2}


def test_paging_and_run_batches_cover_everything(tmp_path, kit, settings, monkeypatch):
    populate(kit)
    monkeypatch.setattr(sync_reading, "MODELS_PAGE", 1)
    monkeypatch.setattr(sync_reading, "VERSIONS_PAGE", 1)
    monkeypatch.setattr(sync_reading, "RUN_BATCH", 2)
    url = f"sqlite:///{tmp_path}/paged.db"
    result = sync_registry(settings, url)
    assert (result.models, result.versions, result.inserted) == (2, 3, 3)
    assert all(r["accuracy_metrics"] for r in rows(url))


def test_settings_mode_switch_changes_active_rows(tmp_path, kit, settings):
    populate(kit)
    url = f"sqlite:///{tmp_path}/modes.db"
    sync_registry(settings, url)
    assert active(url) == {"preference": 2}
    result = sync_registry(replace(settings, mode="stage"), url)
    assert result.deactivated == 1 and active(url) == {}
