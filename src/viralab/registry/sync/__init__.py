"""`viralab registry sync`: make the `model_versions` table mirror the Model Registry.

The registry is the source of truth (aliases/stages included, so a reviewer's click in the
MLflow UI counts); the table is a read model for applications (spec 000 section 7.2). One sync
is one database transaction holding a lock (a PostgreSQL advisory lock, SQLite's
`BEGIN IMMEDIATE`), which reads the registry *after* taking the lock, so two syncs never
interleave and the later one never writes an older picture of the registry. Rows are written
deactivations first, so the partial unique index "one active row per model" never trips.
A failure anywhere rolls the whole sync back; the next run starts from the same state.

Runnable as `python -m viralab.registry.sync` (the MLproject `sync` entry point, `__main__`).

Layout: `reading` (the registry, batched), `rows` (the desired table and the diff),
`writing` (the ordered write), `runner` (one locked sync).
"""

from viralab.registry.sync.reading import FeatureWeights, RegistryVersion, fetch_runs, read_registry
from viralab.registry.sync.rows import SyncPlan, active_versions, desired_row, plan_changes
from viralab.registry.sync.runner import (
    EmptyRegistryRefused,
    SyncResult,
    describe_target,
    mirror_url,
    sync_in,
    sync_registry,
)
from viralab.registry.sync.writing import apply_plan, read_rows, write_rows

__all__ = [
    "EmptyRegistryRefused",
    "FeatureWeights",
    "RegistryVersion",
    "SyncPlan",
    "SyncResult",
    "active_versions",
    "apply_plan",
    "describe_target",
    "desired_row",
    "fetch_runs",
    "mirror_url",
    "plan_changes",
    "read_registry",
    "read_rows",
    "sync_in",
    "sync_registry",
    "write_rows",
]
