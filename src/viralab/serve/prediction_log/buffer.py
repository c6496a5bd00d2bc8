"""`PredictionLog`: a bounded buffer of prediction rows and the writer that empties it in
batches: a daemon thread of its own, or (``thread=False``) the writer process's one thread.

`record` never waits (a lock held for microseconds); what does not fit, or cannot be written,
is dropped and counted (see the package's docstring for why).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from viralab.serve.input_digest import document_digest
from viralab.serve.prediction_log.accounting import (
    log_losses,
    outage_began,
    outage_ended,
    stats,
)
from viralab.serve.prediction_log.rows import Chunk, now_utc, row_tuple, text_size
from viralab.serve.prediction_log.store import (
    describe,
    ensure_tables,
    insert_rows,
    open_engine,
    prediction_log_url,
    upsert_counts,
)

# one logger for the whole prediction log, whichever module of it speaks
log = logging.getLogger("viralab.serve.prediction_log")

DEFAULT_BATCH_SIZE = 500
DEFAULT_QUEUE_SIZE = 50_000
DEFAULT_FLUSH_INTERVAL = 1.0
RETRY_INTERVAL = 2.0  # seconds between write attempts while the database is down
EXIT_WAIT = 2.0
DEFAULT_MAX_TEXT_BYTES = 64 * 1024 * 1024


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
        self._rows: deque[dict[str, Any] | Chunk] = deque()
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
            size = text_size(documents)
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
                size = text_size(documents)
        with self._lock:
            if kept:
                self._rows.append(Chunk(dict(common), dict(columns), documents, size))
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
            log_losses(self.url, self.dropped, self._written)
        if self._engine is not None and (self._thread is None or not self._thread.is_alive()):
            self._engine.dispose()

    def stats(self) -> dict[str, Any]:
        """Counts of this process, for a status line or endpoint."""
        return stats(
            self.url,
            written=self._written,
            dropped=self.dropped,
            pending=self.pending,
            outage=self._outage,
        )

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
        chunks become rows (tuples in `COLUMNS` order) here, on the writer's thread."""
        items: list[dict[str, Any] | Chunk] = []
        with self._lock:
            n = 0
            while self._rows and n < self.batch_size:
                item = self._rows.popleft()
                if isinstance(item, Chunk):
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
                if isinstance(item, Chunk):
                    batch.extend(item.tuples())
                else:
                    batch.append(row_tuple(item))
        except Exception as exc:  # a malformed chunk must not stop the writer
            log.warning("prediction log: %d row(s) dropped: %s", n, describe(exc))
            with self._idle:
                self._dropped += n
                self._in_flight = 0
                self._idle.notify_all()
            return []
        return batch

    def _connect(self) -> Any:
        with self._connect_lock:
            if self._engine is None:
                self._engine = open_engine(self.url)
            if not self._ready:
                ensure_tables(self._engine)
                self._ready = True
            return self._engine

    def _write(self, batch: list[tuple[Any, ...]]) -> bool:
        try:
            engine = self._connect()
            with engine.begin() as conn:
                insert_rows(conn, batch)
                stored = self._upsert_counts(conn, self._written + len(batch))
            self._written += len(batch)
            self._stored_counts = stored
        except Exception as exc:  # any failure: the rows are lost, serving goes on
            with self._lock:
                self._dropped += len(batch)
            self._note_drop(describe(exc))
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
            self._note_drop(describe(exc))
            return False
        self._note_recovery()
        return True

    def _upsert_counts(self, conn: Any, written: int) -> tuple[int, int]:
        """This process's row of ``prediction_log_stats``, in the caller's transaction."""
        counts = (written, self.dropped)
        upsert_counts(
            conn,
            process_id=self.process_id,
            pid=self.pid,
            started_at=self.started_at,
            written=counts[0],
            dropped=counts[1],
        )
        return counts

    def _note_drop(self, reason: str) -> None:
        self._outage = outage_began(self.url, self._outage, reason, self.dropped)

    def _note_recovery(self) -> None:
        self._outage = outage_ended(self.url, self._outage, self.dropped)
