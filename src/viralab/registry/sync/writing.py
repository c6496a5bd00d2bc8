"""Writing a sync's plan into `model_versions`: deletes, then rows that end inactive, then the
ones that end active, with one executemany each."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, bindparam, select, tuple_
from sqlalchemy.engine import Connection

from viralab.registry.mirror import CONTENT_COLUMNS, KEY_COLUMNS, model_versions
from viralab.registry.sync.rows import Key, Row, SyncPlan


def read_rows(conn: Connection) -> dict[Key, Row]:
    rows = conn.execute(select(model_versions)).mappings()
    return {(r["model_name"], int(r["registry_version"])): dict(r) for r in rows}


def delete_rows(conn: Connection, keys: Sequence[Key]) -> None:
    c = model_versions.c
    for start in range(0, len(keys), 500):
        chunk = list(keys[start : start + 500])
        conn.execute(
            model_versions.delete().where(tuple_(c.model_name, c.registry_version).in_(chunk))
        )


_UPDATE = (
    model_versions.update()
    .where(
        and_(
            model_versions.c.model_name == bindparam("k_model_name"),
            model_versions.c.registry_version == bindparam("k_registry_version"),
        )
    )
    .values({name: bindparam(name) for name in (*CONTENT_COLUMNS, "synced_at")})
)


def write_rows(conn: Connection, inserts: Sequence[Row], updates: Sequence[Row]) -> None:
    """Insert and update rows with one executemany each."""
    if inserts:
        conn.execute(model_versions.insert(), list(inserts))
    if updates:
        params = [
            {
                **{f"k_{k}": row[k] for k in KEY_COLUMNS},
                **{k: row[k] for k in (*CONTENT_COLUMNS, "synced_at")},
            }
            for row in updates
        ]
        conn.execute(_UPDATE, params)


def apply_plan(conn: Connection, plan: SyncPlan) -> None:
    """Deletes, then every row that ends inactive, then the ones that end active: a version
    is only activated once its model's previous active row is gone or deactivated."""
    if plan.deletes:
        delete_rows(conn, plan.deletes)
    write_rows(
        conn,
        [r for r in plan.inserts if not r["is_active"]],
        [r for r in plan.updates if not r["is_active"]],
    )
    write_rows(
        conn,
        [r for r in plan.inserts if r["is_active"]],
        [r for r in plan.updates if r["is_active"]],
    )


__all__ = ["apply_plan", "delete_rows", "read_rows", "write_rows"]
