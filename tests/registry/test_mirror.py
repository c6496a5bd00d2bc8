"""The model_versions table: created by the project, migration-safe, one active row per model."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import insert, inspect, text
from sqlalchemy.exc import IntegrityError

from viralab.errors import ConfigError
from viralab.registry.mirror import (
    ACTIVE_INDEX,
    ensure_schema,
    locked_transaction,
    mirror_engine,
    model_versions,
)


def _row(model: str, version: int, active: bool) -> dict:
    return {
        "model_name": model,
        "registry_version": version,
        "version_tag": f"v{version}",
        "is_active": active,
        "feature_weights": {"a": 0.5},
        "accuracy_metrics": {"mae": 0.1},
        "aliases": ["champion"] if active else [],
    }


def _exercise_one_active_rule(url: str) -> None:
    engine = mirror_engine(url)
    try:
        with locked_transaction(engine) as conn:
            assert ensure_schema(conn) == []
            conn.execute(
                insert(model_versions),
                [_row("preference", 1, False), _row("preference", 2, True), _row("views", 1, True)],
            )
        with pytest.raises(IntegrityError), locked_transaction(engine) as conn:
            conn.execute(insert(model_versions), [_row("preference", 3, True)])
        with locked_transaction(engine) as conn:  # creating again is a no-op
            assert ensure_schema(conn) == []
            count = conn.execute(text("SELECT count(*) FROM model_versions")).scalar_one()
            assert count == 3
            stored = conn.execute(
                model_versions.select().where(model_versions.c.registry_version == 2)
            ).one()
            assert stored.feature_weights == {"a": 0.5}
            assert stored.aliases == ["champion"]
    finally:
        engine.dispose()


def test_sqlite_enforces_one_active_row_per_model(tmp_path: Path):
    _exercise_one_active_rule(f"sqlite:///{tmp_path}/app.db")
    engine = mirror_engine(f"sqlite:///{tmp_path}/app.db")
    with engine.connect() as conn:
        ddl = conn.execute(
            text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": ACTIVE_INDEX}
        ).scalar_one()
    engine.dispose()
    assert "UNIQUE" in ddl and "WHERE is_active" in ddl


@pytest.mark.integration
def test_postgres_enforces_one_active_row_per_model(pg_url: str):
    _exercise_one_active_rule(pg_url)
    engine = mirror_engine(pg_url)
    with engine.connect() as conn:
        indexdef = conn.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"), {"n": ACTIVE_INDEX}
        ).scalar_one()
        types = {c["name"]: str(c["type"]) for c in inspect(conn).get_columns("model_versions")}
        pk = inspect(conn).get_pk_constraint("model_versions")["constrained_columns"]
    engine.dispose()
    assert "UNIQUE INDEX" in indexdef and "WHERE is_active" in indexdef
    assert types["feature_weights"] == "JSONB" and types["accuracy_metrics"] == "JSONB"
    assert types["aliases"] == "JSONB"
    assert pk == ["model_name", "registry_version"]


def test_missing_columns_of_an_older_table_are_added(tmp_path: Path):
    engine = mirror_engine(f"sqlite:///{tmp_path}/app.db")
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE model_versions (model_name VARCHAR(256) NOT NULL, "
                "registry_version INTEGER NOT NULL, version_tag VARCHAR(256) NOT NULL, "
                "feature_weights JSON, accuracy_metrics JSON, "
                "PRIMARY KEY (model_name, registry_version))"
            )
        )
        conn.execute(
            text("INSERT INTO model_versions VALUES ('preference', 1, 'v1.0', '{}', '{}')")
        )
    with locked_transaction(engine) as conn:
        added = ensure_schema(conn)
    assert set(added) >= {"is_active", "synced_at", "aliases", "stage", "registry_updated_at"}
    with engine.connect() as conn:
        row = conn.execute(model_versions.select()).one()
        names = {ix["name"] for ix in inspect(conn).get_indexes("model_versions")}
    engine.dispose()
    assert row.is_active is False and row.version_tag == "v1.0"
    assert ACTIVE_INDEX in names


def test_spec_original_table_is_refused_with_advice(tmp_path: Path):
    engine = mirror_engine(f"sqlite:///{tmp_path}/app.db")
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE model_versions (id INTEGER PRIMARY KEY, version_tag TEXT, "
                "trained_at TIMESTAMP, is_active BOOLEAN)"
            )
        )
    advice = "predates the registry mirror; rename or drop it"
    with pytest.raises(ConfigError, match=advice), locked_transaction(engine) as conn:
        ensure_schema(conn)
    engine.dispose()
