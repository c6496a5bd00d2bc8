"""The prediction log: every answer a served model gives, written to ``predictions`` off the
caller's thread.

Scoring must never wait on the database, and a database that is down must never stop serving
or grow memory without bound. So `PredictionLog.record` only appends rows to a bounded
in-memory buffer (a lock held for microseconds, never a wait); a daemon thread writes them in
batches (one multi-row INSERT per batch). When the buffer is full the new rows are dropped and
counted; when a batch cannot be written (database down) its rows are dropped and counted too,
the outage is logged once (URL redacted) and the writer retries after a pause. The counts
(`written`, `dropped`) are kept per process and, whenever the database answers, stored in
``prediction_log_stats`` so that `viralab monitor live` can report what a server lost.

On or off: ``VIRALAB_PREDICTION_LOG=on|off`` wins; else the config's `tracking.prediction_log`
(true/false; null = automatic); automatic = on when MLflow tracks to a server (an http(s)
``MLFLOW_TRACKING_URI``, i.e. a `tracking=server` deployment), off for the embedded SQLite
store. The rows go to ``VIRALAB_PREDICTION_LOG_URL``, else the application database
(``VIRALAB_DATABASE_URL``, else ``data/viralab.db``).

The process-wide log (`get_prediction_log`) is closed at exit with a short bounded wait
(``VIRALAB_PREDICTION_LOG_EXIT_WAIT``, 2 s): a process never hangs on exit for its log.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import itertools
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from xxhash import xxh3_128_hexdigest

from viralab.redaction import mask_url, redact_text
from viralab.serve.input_digest import digest, document_digest
from viralab.serve.prediction_log_process import ProcessPredictionLog, RowLog

log = logging.getLogger(__name__)

ENV_SWITCH = "VIRALAB_PREDICTION_LOG"
ENV_URL = "VIRALAB_PREDICTION_LOG_URL"
ENV_FLUSH = "VIRALAB_PREDICTION_LOG_FLUSH_S"
ENV_EXIT_WAIT = "VIRALAB_PREDICTION_LOG_EXIT_WAIT"
ENV_WRITER = "VIRALAB_PREDICTION_LOG_WRITER"  # process (default) | thread
DEFAULT_BATCH_SIZE = 500
#: Rows per transaction in a writer process: no scoring thread to share the GIL with, and a
#: commit costs about as much CPU as a few hundred rows (measured on SQLite: 8.2 -> 4.9 us a
#: row from 500 to 2,000)
PROCESS_BATCH_SIZE = 2000
#: A writer process writes what it has at least this often: it shares no GIL with scoring,
#: and rows still unwritten when a caller flushes are what the caller waits for.
PROCESS_FLUSH_INTERVAL = 0.05
DEFAULT_QUEUE_SIZE = 50_000
DEFAULT_FLUSH_INTERVAL = 1.0
RETRY_INTERVAL = 2.0  # seconds between write attempts while the database is down
EXIT_WAIT = 2.0
DEFAULT_MAX_TEXT_BYTES = 64 * 1024 * 1024
#: Rows per INSERT on SQLite (x 12 columns: far below its 32,766 bound variables).
SQLITE_ROWS = 500

_ON = {"1", "on", "true", "yes"}
_OFF = {"0", "off", "false", "no"}

#: Set while a serving path that logs for itself calls a pyfunc that would log too.
_suppressed: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "viralab_prediction_log_suppressed", default=False
)


_ID_PREFIX = uuid.uuid4().hex[:20]  # per process; a counter makes each request's id unique
_ID_COUNTER = itertools.count()


def new_request_id() -> str:
    """Unique per request without a system call each (`uuid4` reads the OS's randomness: tens
    of microseconds here, more than logging a whole request costs otherwise)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):012x}"


def prediction_log_url(url: str | None = None) -> str:
    """`url`, else ``VIRALAB_PREDICTION_LOG_URL``, else the application database."""
    from viralab.data.database import app_database_url, normalize_url

    return normalize_url(url or os.environ.get(ENV_URL) or app_database_url())


def now_utc() -> datetime:
    return datetime.now(UTC)


class PredictionLog:
    """A bounded buffer of prediction rows and the daemon thread that writes them.

    Args:
        url: the database; None = ``VIRALAB_PREDICTION_LOG_URL``, else the application
            database.
        batch_size: rows per INSERT (and the fill level that wakes the writer early).
        queue_size: rows held at most; beyond that new rows are dropped and counted.
        flush_interval: seconds the writer waits for a batch to fill before writing what it has.
        max_text_bytes: document text held for the writer to digest (`record_columns`); past
            it the caller's thread digests instead (memory stays bounded, nothing is lost).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        retry_interval: float = RETRY_INTERVAL,
        max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES,
        thread: bool = True,
    ) -> None:
        self.url = prediction_log_url(url)
        self.batch_size = max(1, int(batch_size))
        self.queue_size = max(1, int(queue_size))
        self.flush_interval = float(flush_interval)
        self.retry_interval = float(retry_interval)
        self.max_text_bytes = int(max_text_bytes)
        self._queued = 0  # rows in `_rows` (a chunk holds many)
        self._text_bytes = 0
        #: whose rows these are in ``prediction_log_stats`` (a writer process takes its
        #: serving process's identity: `viralab.serve.prediction_log_writer`)
        self.process_id = uuid.uuid4().hex
        self.pid = os.getpid()
        self.started_at = now_utc()
        self._upstream_dropped = 0  # dropped before they reached this log (its serving process)
        self._rows: deque[dict[str, Any] | _Chunk] = deque()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._in_flight = 0
        self._written = 0
        self._dropped = 0
        self._stored_counts: tuple[int, int] = (0, 0)  # nothing to report yet
        self._connect_lock = threading.Lock()
        self._outage: str | None = None
        self._full_logged = False
        self._engine: Any = None
        self._ready = False
        self._retry_at = 0.0  # without a thread: no write before this (after a failure)
        self._thread: threading.Thread | None = None
        if thread:
            self._thread = threading.Thread(
                target=self._run, name="viralab-prediction-log", daemon=True
            )
            self._thread.start()

    # --- caller side: never blocks ------------------------------------------------------

    @property
    def written(self) -> int:
        """Rows stored in ``predictions`` by this process."""
        return self._written

    @property
    def dropped(self) -> int:
        """Rows lost: buffer full, or their batch could not be written."""
        return self._dropped + self._upstream_dropped

    @property
    def own_dropped(self) -> int:
        """Rows this log dropped itself (not those counted upstream)."""
        return self._dropped

    def count_upstream_drops(self, total: int) -> None:
        """Rows the serving process in front of this log dropped before sending them (a
        running total): they count in ``prediction_log_stats`` like this log's own."""
        self._upstream_dropped = max(self._upstream_dropped, int(total))
        self._wake.set()  # the writer stores the new count

    @property
    def pending(self) -> int:
        """Rows buffered or being written now."""
        return self._queued + self._in_flight

    def record(self, **row: Any) -> bool:
        """Buffer one row (columns of ``predictions``; `at` defaults to now). Returns False
        when it was dropped (buffer full or the log closed)."""
        return self.record_many([row]) == 1

    def record_many(self, rows: Sequence[dict[str, Any]]) -> int:
        """Buffer rows; returns how many were kept (the rest are dropped and counted)."""
        if not rows:
            return 0
        with self._lock:
            if self._stop.is_set():
                room = 0
            else:
                room = max(0, self.queue_size - self._queued - self._in_flight)
            kept = rows if len(rows) <= room else rows[:room]
            self._rows.extend(kept)
            self._queued += len(kept)
            lost = len(rows) - len(kept)
            self._dropped += lost
            full = self._queued >= self.batch_size
        self._after_record(full, lost)
        return len(kept)

    def record_columns(
        self,
        common: Mapping[str, Any],
        columns: Mapping[str, list[Any]],
        documents: list[Any] | None = None,
    ) -> int:
        """Buffer `n` rows given as columns (lists of equal length) plus values `common` to
        all; `documents` (one each) are digested by the writer thread, not the caller's.

        The cheap path for a scored batch: no per-row dict and no hashing on the caller's
        thread (hashlib releases the GIL on large inputs, so the writer hashes beside the
        scoring). Returns how many rows were kept.
        """
        n = len(next(iter(columns.values()))) if columns else 0
        if n == 0:
            return 0
        size = 0
        if documents is not None:
            size = _text_size(documents)
        with self._lock:
            room = 0 if self._stop.is_set() else self.queue_size - self._queued - self._in_flight
            room = max(0, room)
            over = documents is not None and self._text_bytes + size > self.max_text_bytes
        kept = min(n, room)
        if kept and over:  # too much text held already: digest here, hold only the digests
            documents = [document_digest(d) for d in documents[:kept]]  # type: ignore[index]
            columns = {**columns, "input_digest": documents}
            documents, size = None, 0
        if kept < n:
            columns = {k: v[:kept] for k, v in columns.items()}
            if documents is not None:
                documents = documents[:kept]
                size = _text_size(documents)
        with self._lock:
            if kept:
                self._rows.append(_Chunk(dict(common), dict(columns), documents, size))
                self._queued += kept
                self._text_bytes += size
            self._dropped += n - kept
            full = self._queued >= self.batch_size
        self._after_record(full, n - kept)
        return kept

    def _after_record(self, full: bool, lost: int) -> None:
        if full:
            self._wake.set()
        if lost and not self._full_logged:
            self._full_logged = True  # once: the count says the rest
            log.warning(
                "prediction log: buffer full (%d rows); new predictions are dropped and counted",
                self.queue_size,
            )

    def flush(self, timeout: float = EXIT_WAIT) -> None:
        """Write what is buffered now; waits at most `timeout` seconds (then returns anyway)."""
        deadline = time.monotonic() + max(0.0, timeout)
        if self._thread is None:
            self.write_due(everything=True, deadline=deadline)
            return
        self._wake.set()
        with self._idle:
            while self._queued or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._thread.is_alive():
                    return
                self._idle.wait(min(remaining, 0.05))
                self._wake.set()

    def close(self, timeout: float = EXIT_WAIT) -> None:
        """Flush (bounded by `timeout`), store the counts, stop the writer. Rows recorded
        afterwards are dropped and counted."""
        started = time.monotonic()
        self.flush(timeout)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(max(0.0, timeout - (time.monotonic() - started)) + 0.1)
        with self._lock:
            left = self._queued
            self._rows.clear()
            self._queued = self._text_bytes = 0
            self._dropped += left
        if self._thread is None:
            self._store_counts()
        if self.dropped:
            log.warning(
                "prediction log: %d prediction(s) dropped, %d written (database %s)",
                self.dropped,
                self._written,
                mask_url(self.url),
            )
        if self._engine is not None and (self._thread is None or not self._thread.is_alive()):
            self._engine.dispose()

    def stats(self) -> dict[str, Any]:
        """Counts of this process, for a status line or endpoint."""
        return {
            "written": self._written,
            "dropped": self.dropped,
            "pending": self.pending,
            "database": mask_url(self.url),
            "outage": self._outage,
        }

    # --- writing on the caller's thread (a log without its own: a writer process) ----------

    def write_due(self, *, everything: bool, deadline: float | None = None) -> None:
        """Write full batches now (all that is buffered with `everything`), unless the
        database failed less than `retry_interval` ago; stops at `deadline` (monotonic s).
        Then stores the counts if they changed without a write (drops, upstream drops, the
        first answer after an outage). Cheap when there is nothing to do: call it often."""
        if time.monotonic() < self._retry_at:
            return
        while self._queued and (everything or self._queued >= self.batch_size):
            if deadline is not None and time.monotonic() > deadline:
                return
            batch = self._take()
            if not batch:
                continue
            ok = self._write(batch)
            self._in_flight = 0
            if not ok:
                self._retry_at = time.monotonic() + self.retry_interval
                return
        if not self._store_counts():
            self._retry_at = time.monotonic() + self.retry_interval

    # --- writer thread --------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            batch = self._take()
            if not batch:
                self._store_counts()
                with self._idle:
                    self._idle.notify_all()
                if self._stop.is_set():
                    return
                continue
            ok = self._write(batch)
            with self._idle:
                self._in_flight = 0
                self._idle.notify_all()
            if not ok and not self._stop.is_set():
                self._stop.wait(self.retry_interval)
            elif self._queued:
                self._wake.set()

    def _take(self) -> list[tuple[Any, ...]]:
        """Up to `batch_size` rows off the buffer (a chunk is split where the batch ends);
        chunks become rows (tuples in `_COLUMNS` order) here, on the writer's thread."""
        items: list[dict[str, Any] | _Chunk] = []
        with self._lock:
            n = 0
            while self._rows and n < self.batch_size:
                item = self._rows.popleft()
                if isinstance(item, _Chunk):
                    if n + item.n > self.batch_size:
                        head, tail = item.split(self.batch_size - n)
                        self._rows.appendleft(tail)
                        item = head
                    self._text_bytes -= item.size
                    n += item.n
                else:
                    n += 1
                items.append(item)
            self._queued -= n
            self._in_flight = n
        batch: list[tuple[Any, ...]] = []
        try:
            for item in items:
                if isinstance(item, _Chunk):
                    batch.extend(item.tuples())
                else:
                    batch.append(_row_tuple(item))
        except Exception as exc:  # a malformed chunk must not stop the writer
            log.warning("prediction log: %d row(s) dropped: %s", n, _describe(exc))
            with self._idle:
                self._dropped += n
                self._in_flight = 0
                self._idle.notify_all()
            return []
        return batch

    def _connect(self) -> Any:
        with self._connect_lock:
            if self._engine is None:
                from viralab.data.database import make_engine

                pg = self.url.startswith("postgresql")
                self._engine = make_engine(
                    self.url, connect_args={"connect_timeout": 5} if pg else {}
                )
            if not self._ready:
                from viralab.serve.prediction_table import create_prediction_tables

                try:
                    create_prediction_tables(self._engine)
                except Exception:
                    # another process created them between our check and our CREATE
                    from sqlalchemy import inspect

                    present = set(inspect(self._engine).get_table_names())
                    if not {"predictions", "prediction_log_stats"} <= present:
                        raise
                self._ready = True
            return self._engine

    def _write(self, batch: list[tuple[Any, ...]]) -> bool:
        try:
            engine = self._connect()
            with engine.begin() as conn:
                _insert_rows(conn, batch)
                stored = self._upsert_counts(conn, self._written + len(batch))
            self._written += len(batch)
            self._stored_counts = stored
        except Exception as exc:  # any failure: the rows are lost, serving goes on
            with self._lock:
                self._dropped += len(batch)
            self._note_drop(_describe(exc))
            return False
        self._note_recovery()
        return True

    def _store_counts(self) -> bool:
        """Store the counts when they changed and the database answers (after an outage).
        False: they changed and could not be stored."""
        if self._stored_counts == (self._written, self.dropped):
            return True
        try:
            with self._connect().begin() as conn:
                stored = self._upsert_counts(conn, self._written)
            self._stored_counts = stored
        except Exception as exc:
            self._note_drop(_describe(exc))
            return False
        self._note_recovery()
        return True

    def _upsert_counts(self, conn: Any, written: int) -> tuple[int, int]:
        """This process's row of ``prediction_log_stats``, in the caller's transaction."""
        from viralab.serve.prediction_table import prediction_log_stats as t

        counts = (written, self.dropped)
        values = {"written": counts[0], "dropped": counts[1], "updated_at": now_utc()}
        done = conn.execute(t.update().where(t.c.process_id == self.process_id).values(**values))
        if done.rowcount == 0:
            conn.execute(
                t.insert().values(
                    process_id=self.process_id,
                    host=socket.gethostname()[:256],
                    pid=self.pid,
                    started_at=self.started_at,
                    **values,
                )
            )
        return counts

    def _note_drop(self, reason: str) -> None:
        if self._outage == reason:
            return
        first = self._outage is None
        self._outage = reason
        if first:
            log.warning(
                "prediction log: cannot write to %s (%s); serving goes on, predictions are "
                "dropped and counted (%d so far)",
                mask_url(self.url),
                reason,
                self.dropped,
            )

    def _note_recovery(self) -> None:
        if self._outage is None:
            return
        self._outage = None
        log.warning(
            "prediction log: writing again to %s; %d prediction(s) dropped meanwhile",
            mask_url(self.url),
            self.dropped,
        )


#: What a document held as an object (a dict, digested later as JSON) counts against the
#: text budget: about the size of a typical analysis document.
OBJECT_BYTES = 4096


def _text_size(documents: Sequence[Any]) -> int:
    return sum(len(d) if isinstance(d, str | bytes) else OBJECT_BYTES for d in documents)


class _Chunk:
    """Rows kept as columns until the writer takes them (see `record_columns`)."""

    __slots__ = ("columns", "common", "documents", "n", "size")

    def __init__(
        self,
        common: dict[str, Any],
        columns: dict[str, list[Any]],
        documents: list[Any] | None,
        size: int,
    ) -> None:
        self.common = common
        self.columns = columns
        self.documents = documents
        self.size = size
        self.n = len(next(iter(columns.values())))

    def split(self, k: int) -> tuple[_Chunk, _Chunk]:
        docs = self.documents

        def part(sl: slice) -> _Chunk:
            sub = None if docs is None else docs[sl]
            size = 0 if sub is None else _text_size(sub)
            return _Chunk(self.common, {c: v[sl] for c, v in self.columns.items()}, sub, size)

        return part(slice(0, k)), part(slice(k, None))

    def tuples(self) -> list[tuple[Any, ...]]:
        """The rows in `_COLUMNS` order, built column by column (no dict per row)."""
        n = self.n
        columns = dict(self.columns)
        if self.documents is not None:
            columns["input_digest"] = [document_digest(d) for d in self.documents]
        common = _complete(self.common)
        out = [columns[c] if c in columns else [common[c]] * n for c in _COLUMNS]
        return list(zip(*out, strict=True))


def _describe(exc: BaseException) -> str:
    """One redacted line (drivers quote the DSN, password included, in some messages)."""
    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return redact_text(detail[0] if detail else type(exc).__name__)


_COLUMNS = (
    "request_id", "model", "version", "marker", "input_digest", "video_id", "prediction",
    "score", "confidence", "target_at", "latency_ms", "at",
)  # fmt: skip


def _complete(row: Mapping[str, Any]) -> dict[str, Any]:
    """Every column present (an executemany needs the same keys in each row)."""
    out = {c: row.get(c) for c in _COLUMNS}
    if out["at"] is None:
        out["at"] = now_utc()
    if out["request_id"] is None:
        out["request_id"] = ""
    if out["marker"] is None:
        out["marker"] = "explicit"
    if out["input_digest"] is None:
        out["input_digest"] = ""
    if out["version"] is not None:
        try:
            out["version"] = int(out["version"])
        except (TypeError, ValueError):
            out["version"] = None
    return out


_TIME_COLUMNS = frozenset({"at", "target_at"})


def _row_tuple(row: Mapping[str, Any]) -> tuple[Any, ...]:
    out = _complete(row)
    return tuple(out[c] for c in _COLUMNS)


def _insert_rows(conn: Any, rows: list[tuple[Any, ...]]) -> None:
    """One batch into ``predictions`` through the driver's own bulk path: tuples bound in C
    (SQLAlchemy's per-row dict processing cost more than scoring a document). Values pass
    through the dialect's bind processors column by column where they change the value
    (SQLite stores datetimes as text); numbers and text are bound by the driver as they are."""
    from viralab.serve.prediction_table import predictions

    dialect = conn.dialect
    columns: list[Any] = list(zip(*rows, strict=True))
    for i, name in enumerate(_COLUMNS):
        if name not in _TIME_COLUMNS:  # numbers and text bind as they are
            continue
        process = predictions.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            memo: dict[Any, Any] = {}  # `at` repeats within a request
            columns[i] = [
                memo[v] if v in memo else memo.setdefault(v, process(v)) for v in columns[i]
            ]
    values = list(zip(*columns, strict=True))
    names = ", ".join(_COLUMNS)
    if dialect.name == "postgresql" and dialect.driver == "psycopg2":
        from psycopg2.extras import execute_values

        cursor = conn.connection.dbapi_connection.cursor()
        execute_values(
            cursor, f"INSERT INTO predictions ({names}) VALUES %s", values, page_size=1000
        )
    elif dialect.paramstyle == "qmark":
        # multi-row VALUES: one statement (one GIL release in sqlite3) per SQLITE_ROWS rows;
        # `executemany` released and re-took the GIL for every row, and each re-take waited
        # for the scoring thread's switch interval
        marks = "(" + ", ".join("?" * len(_COLUMNS)) + ")"
        for start in range(0, len(values), SQLITE_ROWS):
            part = values[start : start + SQLITE_ROWS]
            flat = tuple(itertools.chain.from_iterable(part))
            sql = f"INSERT INTO predictions ({names}) VALUES " + ", ".join([marks] * len(part))
            conn.exec_driver_sql(sql, flat)
    else:  # any other driver: SQLAlchemy's own executemany
        conn.execute(predictions.insert(), [dict(zip(_COLUMNS, r, strict=True)) for r in rows])


# --- the process-wide log -------------------------------------------------------------------


def _switch(value: str | None) -> bool | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in _ON:
        return True
    if text in _OFF:
        return False
    return None


def _config_switch() -> bool | None:
    """`tracking.prediction_log` of the project config (None: unset, null, or no config)."""
    try:
        from viralab.config import compose

        value = compose().tracking.get("prediction_log")
    except Exception:  # no config here (a bare model server): the automatic rule decides
        return None
    return None if value is None else _switch(str(value))


def is_server_uri(uri: str | None) -> bool:
    return bool(uri) and str(uri).lower().startswith(("http://", "https://"))


def logging_enabled() -> bool:
    """``VIRALAB_PREDICTION_LOG`` if set, else `tracking.prediction_log`, else whether MLflow
    tracks to a server."""
    explicit = _switch(os.environ.get(ENV_SWITCH))
    if explicit is not None:
        return explicit
    configured = _config_switch()
    if configured is not None:
        return configured
    import mlflow

    return is_server_uri(mlflow.get_tracking_uri())


_process_log: RowLog | None = None
_decided = False
_process_lock = threading.Lock()


def get_prediction_log() -> RowLog | None:
    """The process's log, started on first use; None while logging is off."""
    global _process_log, _decided
    if _decided:
        return _process_log
    with _process_lock:
        if not _decided:
            if logging_enabled():
                flush = float(os.environ.get(ENV_FLUSH) or DEFAULT_FLUSH_INTERVAL)
                _process_log = new_prediction_log(flush_interval=flush)
                atexit.register(_close_at_exit, _process_log)
            _decided = True
    return _process_log


def new_prediction_log(
    url: str | None = None, *, flush_interval: float = DEFAULT_FLUSH_INTERVAL
) -> RowLog:
    """A log whose writer runs in a process of its own (`ProcessPredictionLog`: the serving
    process only hands rows over), or in a thread of this one with
    ``VIRALAB_PREDICTION_LOG_WRITER=thread`` or when no process can be started."""
    resolved = prediction_log_url(url)

    def thread_log() -> PredictionLog:
        return PredictionLog(resolved, flush_interval=flush_interval)

    if (os.environ.get(ENV_WRITER) or "process").strip().lower() == "thread":
        return thread_log()
    try:
        return ProcessPredictionLog(
            resolved,
            fallback=thread_log,
            batch_size=PROCESS_BATCH_SIZE,
            queue_size=DEFAULT_QUEUE_SIZE,
            flush_interval=min(flush_interval, PROCESS_FLUSH_INTERVAL),
            retry_interval=RETRY_INTERVAL,
            max_text_bytes=DEFAULT_MAX_TEXT_BYTES,
        )
    except OSError as exc:
        log.warning("prediction log: no writer process (%s); writing from a thread", exc)
        return thread_log()


def set_prediction_log(prediction_log: RowLog | None) -> None:
    """Use `prediction_log` from now on (tests, or an application that configures its own)."""
    global _process_log, _decided
    with _process_lock:
        _process_log = prediction_log
        _decided = True


def reset_prediction_log() -> None:
    """Close the process's log (bounded) and decide again on next use."""
    global _process_log, _decided
    with _process_lock:
        current, _process_log, _decided = _process_log, None, False
    if current is not None:
        current.close(0.5)


def _close_at_exit(prediction_log: RowLog) -> None:
    with contextlib.suppress(Exception):
        prediction_log.close(float(os.environ.get(ENV_EXIT_WAIT) or EXIT_WAIT))


@contextlib.contextmanager
def suppressed() -> Iterator[None]:
    """Inside: pyfuncs do not log (the serving path around them logs with its marker)."""
    token = _suppressed.set(True)
    try:
        yield
    finally:
        _suppressed.reset(token)


def active_log() -> RowLog | None:
    """The log a pyfunc should write to now: None when off or a caller logs for it."""
    if _suppressed.get():
        return None
    return get_prediction_log()


# --- rows from what the serving paths return --------------------------------------------------


def _video_id(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, float) and value != value:  # NaN from a frame column
        return None
    return str(value)


def record_scores(
    prediction_log: RowLog,
    *,
    model: str,
    version: int | str | None,
    marker: str,
    documents: Sequence[Any],
    video_ids: Sequence[Any] | None,
    result: Any,
    latency_ms: float,
    request_id: str | None = None,
) -> int:
    """One row per scored document (`result`: the preference model's output frame). Cheap on
    the caller's thread: the columns as lists and one XXH3 digest per document."""
    n = len(result["prediction"])  # a frame or its columns (a dict of arrays)
    ids = (
        [None] * n
        if video_ids is None
        else [v if type(v) is str and v else _video_id(v) for v in video_ids]
    )
    common = {
        "request_id": request_id or new_request_id(),
        "model": model,
        "version": version,
        "marker": marker,
        "latency_ms": latency_ms,
        "at": now_utc(),
    }
    columns = {
        "video_id": ids,
        "prediction": result["prediction"].tolist(),
        "score": result["score"].tolist(),
        "confidence": result["confidence"].tolist(),
    }
    # here, not on the writer's side: XXH3 costs ~0.2 us a document, less than handing the
    # text over would
    columns["input_digest"] = [
        xxh3_128_hexdigest(d.encode("utf-8")) if type(d) is str else document_digest(d)
        for d in documents
    ]
    return prediction_log.record_columns(common, columns)


def record_forecast(
    prediction_log: RowLog,
    *,
    model: str,
    version: int | str | None,
    marker: str,
    rows: Any,
    result: Any,
    latency_ms: float,
) -> int:
    """One row per forecast row (a step or a horizon of one video)."""
    import pandas as pd

    try:
        raw = pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes()
        input_digest = digest(raw)
    except (TypeError, ValueError):
        input_digest = ""
    request_id = new_request_id()
    at = now_utc()
    frame = result if isinstance(result, pd.DataFrame) else pd.DataFrame(result)
    videos = frame["video_id"].tolist() if "video_id" in frame else [None] * len(frame)
    stamps = (
        pd.to_datetime(frame["timestamp"], utc=True).tolist()
        if "timestamp" in frame
        else [None] * len(frame)
    )
    values = frame["prediction"].tolist() if "prediction" in frame else [None] * len(frame)
    out = [
        {
            "request_id": request_id,
            "model": model,
            "version": version,
            "marker": marker,
            "input_digest": input_digest,
            "video_id": _video_id(v),
            "prediction": None if p is None else float(p),
            "target_at": None if t is None or pd.isna(t) else t.to_pydatetime(),
            "latency_ms": latency_ms,
            "at": at,
        }
        for v, t, p in zip(videos, stamps, values, strict=False)
    ]
    return prediction_log.record_many(out)
