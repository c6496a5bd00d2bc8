"""The prediction log's tables in the application database, as SQLAlchemy Core metadata.

- ``predictions``: one row per answer a served model gave (one per document, one per forecast
  step): who answered (model, version, marker), for what (input digest, video id when the
  caller named one), what it said (``prediction`` in the model's own units, ``score`` and
  ``confidence`` where the model gives them; ``target_at`` the minute a forecast is for), how
  long it took (``latency_ms``, the request's time shared by its rows) and when (``at``, UTC).
- ``prediction_log_stats``: one row per serving process, its running counts of rows written
  and dropped, so a process whose database was down can say how much it lost once the
  database is back (``viralab monitor live`` sums them).

Indexes follow the reads: outcomes join on ``video_id`` then ``at`` (a rating joins the
predictions made before it), live figures filter on ``model`` then ``at``.

Like the other application tables they never share a database with an MLflow backend store.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Engine

metadata = MetaData()

#: BIGINT identity on PostgreSQL (a busy server writes billions of rows), INTEGER on SQLite,
#: where only an INTEGER PRIMARY KEY is the rowid alias that autoincrements.
RowId = BigInteger().with_variant(Integer(), "sqlite")

predictions = Table(
    "predictions",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("model", String(256), nullable=False),
    Column("version", Integer),  # None: a model served outside the registry
    Column("marker", String(64), nullable=False),  # champion | challenger | explicit | ...
    # XXH3-128 hex of the document's text (serve.input_digest)
    Column("input_digest", String(64), nullable=False),
    Column("video_id", Text),
    Column("prediction", Float),
    Column("score", Float),
    Column("confidence", Float),
    Column("target_at", DateTime(timezone=True)),
    Column("latency_ms", Float),
    Column("at", DateTime(timezone=True), nullable=False),
    comment="Every answer a served viralab model gave (the prediction log).",
)
Index("ix_predictions_video_id_at", predictions.c.video_id, predictions.c.at)
Index("ix_predictions_model_at", predictions.c.model, predictions.c.at)

prediction_log_stats = Table(
    "prediction_log_stats",
    metadata,
    Column("process_id", String(64), primary_key=True),
    Column("host", String(256)),
    Column("pid", Integer),
    Column("written", BigInteger, nullable=False, default=0),
    Column("dropped", BigInteger, nullable=False, default=0),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    comment="Per serving process: prediction-log rows written and dropped (database down).",
)

PREDICTION_TABLES = (predictions, prediction_log_stats)


def create_prediction_tables(engine: Engine) -> None:
    """Create the tables and indexes where missing (a no-op when they exist)."""
    metadata.create_all(engine, checkfirst=True)
