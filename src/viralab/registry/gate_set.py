"""The frozen gate set: held-out rows per registered model that no training ever sees.

Scoring a retrained candidate on the champion's own test split favours the candidate: it drew
a fresh split of more data, so most of those rows were in its training data. A gate set fixed
once per model (at its first registration, or by `viralab registry gate-set freeze`) and
excluded from every later training gives both versions unseen rows, the same ones.

- preference: a seeded `fraction` of the usable rating ids;
- forecasters: per video, the final `fraction` of its rows at freeze time ([start, end]
  timestamps). Their rows are dropped before cleaning, and cleaning splits a series at gaps,
  so no training window spans the stretch.

Gate sets live in the application database (table `gate_sets`, never MLflow's store), so the
application knows them without MLflow. A refresh never edits a row: it closes the current one
(`replaced_at`) and inserts the new one with who, when and why. Training holds them back
through `registry/holdout.py`.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from viralab.config import redact_url
from viralab.data.database import app_database_url, make_engine, normalize_url
from viralab.errors import ConfigError, DataError
from viralab.registry.gates import GateSetSettings
from viralab.registry.mirror import JSONDoc, mirror_engine

log = logging.getLogger(__name__)

GATE_SETS_URL_ENV = "VIRALAB_GATE_SETS_URL"
USER_ENV = "VIRALAB_USER"  # the same variable promotions record their user from
TABLE = "gate_sets"
Kind = Literal["ratings", "stretch"]

metadata = MetaData()
gate_sets = Table(
    TABLE,
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(256), nullable=False),
    Column("kind", String(16), nullable=False),
    # ratings: sorted rating ids; stretch: {video_id: [start, end]} (ISO-8601, UTC)
    Column("members", JSONDoc, nullable=False),
    Column("n_members", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("fraction", Float),
    Column("seed", Integer),
    Column("frozen_at", DateTime(timezone=True), nullable=False),
    Column("frozen_by", String(256), nullable=False),
    Column("reason", Text, nullable=False),
    Column("replaced_at", DateTime(timezone=True)),  # NULL: the model's current gate set
    comment="Frozen evaluation rows per registered model; training never sees them.",
)
Index(
    "uq_gate_sets_one_current",
    gate_sets.c.model_name,
    unique=True,
    postgresql_where=gate_sets.c.replaced_at.is_(None),
    sqlite_where=gate_sets.c.replaced_at.is_(None),
)


@dataclass(frozen=True)
class GateSet:
    """One frozen gate set (a row of `gate_sets`)."""

    model: str
    kind: Kind
    members: Any  # list[str] of rating ids | dict[video_id, [start, end]]
    digest: str
    frozen_at: datetime
    frozen_by: str
    reason: str
    fraction: float | None = None
    seed: int | None = None
    replaced_at: datetime | None = None

    @property
    def size(self) -> int:
        return len(self.members)

    def describe(self) -> str:
        what = "rating(s)" if self.kind == "ratings" else "video stretch(es)"
        return (
            f"{self.model}: {self.size} {what}, digest {self.digest}, frozen "
            f"{self.frozen_at:%Y-%m-%d %H:%M:%S} UTC by {self.frozen_by} ({self.reason})"
        )

    def members_frame(self) -> pd.DataFrame:
        """The members as a table (what the `gate` dataset logs)."""
        if self.kind == "ratings":
            return pd.DataFrame({"rating_id": list(self.members)})
        rows = [(v, s, e) for v, (s, e) in sorted(self.members.items())]
        return pd.DataFrame(rows, columns=["video_id", "start", "end"])


# ------------------------------------------------------------------------------------------
# Choosing members (pure)
# ------------------------------------------------------------------------------------------


def gate_digest(kind: str, members: Any) -> str:
    """A content hash of the members: the same set always has the same digest."""
    text = json.dumps({"kind": kind, "members": members}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def choose_ratings(ids: Iterable[Any], fraction: float, seed: int) -> list[str]:
    """A seeded `fraction` of the distinct ids (at least one), sorted."""
    distinct = sorted({str(i) for i in ids})
    if not distinct:
        return []
    k = max(1, math.ceil(fraction * len(distinct)))
    picked = np.random.default_rng(seed).choice(len(distinct), size=k, replace=False)
    return sorted(distinct[i] for i in picked)


def _utc(values: Any) -> pd.Series:
    return pd.to_datetime(pd.Series(values), utc=True, errors="coerce", format="ISO8601")


def choose_stretch(stats: pd.DataFrame, fraction: float) -> dict[str, list[str]]:
    """Per video, [start, end] of the final `fraction` of its rows (by time, at least one)."""
    if not {"video_id", "timestamp"} <= set(stats.columns):
        raise DataError("stats rows need 'video_id' and 'timestamp' columns")
    frame = pd.DataFrame(
        {"video_id": stats["video_id"].astype(str).to_numpy(), "ts": _utc(stats["timestamp"])}
    ).dropna()
    stretch = {}
    for video, rows in frame.groupby("video_id", sort=True):
        times = rows["ts"].sort_values()
        k = max(1, math.ceil(fraction * len(times)))
        tail = times.iloc[-k:]
        stretch[str(video)] = [tail.iloc[0].isoformat(), tail.iloc[-1].isoformat()]
    return stretch


def in_stretch(stats: pd.DataFrame, gates: Iterable[GateSet]) -> np.ndarray:
    """Which rows fall in any of the gate sets' stretches (boolean mask)."""
    mask = np.zeros(len(stats), dtype=bool)
    if not len(stats):
        return mask
    videos = stats["video_id"].astype(str).to_numpy()
    times = _utc(stats["timestamp"]).dt.tz_convert(None).to_numpy()  # naive UTC
    for gate in gates:
        for video, (start, end) in gate.members.items():
            lo = _utc([start]).dt.tz_convert(None).to_numpy()[0]
            hi = _utc([end]).dt.tz_convert(None).to_numpy()[0]
            mask |= (videos == video) & (times >= lo) & (times <= hi)
    return mask


# ------------------------------------------------------------------------------------------
# Storage
# ------------------------------------------------------------------------------------------


def store_url(settings: GateSetSettings) -> str:
    """`database_url`, else `$VIRALAB_GATE_SETS_URL`, else the application database."""
    return normalize_url(
        settings.database_url or os.environ.get(GATE_SETS_URL_ENV) or app_database_url()
    )


def _store_missing(url: str) -> bool:
    """An embedded SQLite file that does not exist yet holds no gate set (do not create it)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return False
    return not Path(parsed.database).expanduser().exists()


def _row_to_gate(row: Mapping[str, Any]) -> GateSet:
    def aware(value: datetime | None) -> datetime | None:
        return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value

    return GateSet(
        model=row["model_name"],
        kind=row["kind"],
        members=row["members"],
        digest=row["digest"],
        frozen_at=aware(row["frozen_at"]),
        frozen_by=row["frozen_by"],
        reason=row["reason"],
        fraction=row["fraction"],
        seed=row["seed"],
        replaced_at=aware(row["replaced_at"]),
    )


def _read(model: str, settings: GateSetSettings, current_only: bool) -> list[GateSet]:
    url = store_url(settings)
    if _store_missing(url):
        return []
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if not engine.dialect.has_table(conn, TABLE):
                return []
            query = select(gate_sets).where(gate_sets.c.model_name == model)
            if current_only:
                query = query.where(gate_sets.c.replaced_at.is_(None))
            rows = conn.execute(query.order_by(gate_sets.c.id)).mappings().all()
    except SQLAlchemyError as exc:
        raise DataError(f"cannot read gate sets from {_safe(url)}: {_first_line(exc)}") from None
    finally:
        engine.dispose()
    return [_row_to_gate(r) for r in rows]


def current_gate_set(model: str, settings: GateSetSettings) -> GateSet | None:
    """The model's current gate set, or None when none was frozen.

    Raises:
        DataError: the store cannot be read.
    """
    found = _read(model, settings, current_only=True)
    return found[-1] if found else None


def gate_set_history(model: str, settings: GateSetSettings) -> list[GateSet]:
    """Every gate set the model had, oldest first (the audit trail of refreshes)."""
    return _read(model, settings, current_only=False)


def new_gate_set(
    model: str,
    kind: Kind,
    members: Any,
    settings: GateSetSettings,
    *,
    by: str,
    reason: str = "first registration",
) -> GateSet:
    """A gate set drawn now and not stored yet (training stores it once it registers)."""
    return GateSet(
        model=model,
        kind=kind,
        members=members,
        digest=gate_digest(kind, members),
        frozen_at=datetime.now(UTC),
        frozen_by=by,
        reason=reason,
        fraction=settings.fraction,
        seed=settings.seed if kind == "ratings" else None,
    )


def freeze_gate_set(
    model: str,
    kind: Kind,
    members: Any,
    settings: GateSetSettings,
    *,
    by: str,
    reason: str,
    replace: bool = False,
) -> tuple[GateSet, bool]:
    """Store a gate set; returns it and whether it is new.

    Without `replace` an existing current set wins (freezing twice is a no-op). With it, the
    current one is closed and the new one inserted in the same transaction.

    Raises:
        ConfigError: no members, or `replace` without a reason.
        DataError: the store cannot be written.
    """
    if not members:
        raise ConfigError(f"a gate set for {model} needs at least one member")
    if replace and not reason.strip():
        raise ConfigError("refreshing a gate set needs --reason '...': it is recorded with why")
    url = store_url(settings)
    engine = mirror_engine(url)
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            metadata.create_all(conn, checkfirst=True)
            row = (
                conn.execute(
                    select(gate_sets).where(
                        gate_sets.c.model_name == model, gate_sets.c.replaced_at.is_(None)
                    )
                )
                .mappings()
                .first()
            )
            if row is not None and not replace:
                return _row_to_gate(row), False
            if row is not None:
                conn.execute(
                    update(gate_sets).where(gate_sets.c.id == row["id"]).values(replaced_at=now)
                )
            values = {
                "model_name": model,
                "kind": kind,
                "members": members,
                "n_members": len(members),
                "digest": gate_digest(kind, members),
                "fraction": settings.fraction,
                "seed": settings.seed if kind == "ratings" else None,
                "frozen_at": now,
                "frozen_by": by,
                "reason": reason.strip()[:2000],
                "replaced_at": None,
            }
            conn.execute(gate_sets.insert().values(**values))
    except SQLAlchemyError as exc:
        raise DataError(f"cannot write gate sets to {_safe(url)}: {_first_line(exc)}") from None
    finally:
        engine.dispose()
    gate = _row_to_gate(values)
    log.info("Froze gate set %s", gate.describe())
    return gate, True


def _safe(url: str) -> str:
    return redact_url(url)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def current_user() -> str:
    """`$VIRALAB_USER`, else the login name."""
    try:
        return os.environ.get(USER_ENV) or getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
