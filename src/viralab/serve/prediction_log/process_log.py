"""`ProcessPredictionLog`: the serving side of a prediction log whose writer runs in a
process of its own.

Why a process: with the writer as a thread of the serving process, every row it built and
every batch it bound took the GIL from the scoring thread, and each of its waits for the
database handed the GIL back and forth at the interpreter's switch interval. On two cores the
log cost ~19 % of scoring throughput (`benchmarks/predict.py`), however little Python it ran.
Here the serving process only pickles each request's columns and writes them into a
non-blocking pipe, on the caller's thread: a few microseconds a request, and no thread or
process woken. The writer does not wait on that pipe, it looks every few milliseconds (a
reader woken by each write was scheduled onto the scoring thread's CPU and preempted it);
only a flush or close wakes it at once, through a second pipe. The writer process
(`viralab.serve.prediction_log_writer`) builds the rows and writes them with the same
`PredictionLog` a thread would use, on its own thread. The pipes and frames: `pipe`.

Nothing here may block scoring or grow without bound: when the pipe is full (the writer is
behind) the rest waits in a backlog that a sender thread drains as the pipe empties; past
`queue_size` rows (or `max_text_bytes` of documents) in that backlog, new rows are dropped
and counted, and the count reaches ``prediction_log_stats`` through the writer. A writer
process that dies or cannot start hands over to an in-process writer thread (`fallback`),
saying so once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import subprocess
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from viralab.serve.input_digest import document_digest
from viralab.serve.prediction_log.accounting import log_losses, stats
from viralab.serve.prediction_log.fallback import take_over
from viralab.serve.prediction_log.pipe import frame, open_data_pipe, read_frame, start_writer
from viralab.serve.prediction_log.row_log import RowLog
from viralab.serve.prediction_log.rows import text_size

# one logger for the whole prediction log, whichever module of it speaks
log = logging.getLogger("viralab.serve.prediction_log")


class _Pending:
    """Bytes of frames not yet in the pipe, and how many rows they carry."""

    __slots__ = ("data", "rows", "size")

    def __init__(self, data: bytes, rows: int, size: int) -> None:
        self.data, self.rows, self.size = data, rows, size


class ProcessPredictionLog:
    """A `PredictionLog` whose writing happens in a child process (see the module's doc).

    Args mirror `PredictionLog`'s; `url` must be resolved already (`prediction_log_url`).
    `fallback` builds the in-process log used if the writer process cannot run.
    """

    def __init__(
        self,
        url: str,
        *,
        fallback: Callable[[], RowLog],
        batch_size: int,
        queue_size: int,
        flush_interval: float,
        retry_interval: float,
        max_text_bytes: int,
    ) -> None:
        self.url = url
        self.queue_size = max(1, int(queue_size))
        self.max_text_bytes = int(max_text_bytes)
        self.process_id = uuid.uuid4().hex
        self.started_at = datetime.now(UTC)
        self._make_fallback = fallback
        self._fallback: RowLog | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._backlog: deque[_Pending] = deque()  # frames the pipe had no room for, in order
        self._queued_rows = 0  # rows reserved or in the backlog, not yet in the pipe
        self._queued_bytes = 0
        self._local_dropped = 0
        self._sent_upstream = 0
        self._seq = 0
        self._acked_seq = 0
        self._child = {"written": 0, "dropped": 0, "pending": 0, "outage": None}
        self._closing = False
        self._dead: str | None = None
        self._full_logged = False
        config = {
            "url": url,
            "batch_size": batch_size,
            "queue_size": queue_size,
            "flush_interval": flush_interval,
            "retry_interval": retry_interval,
            "max_text_bytes": max_text_bytes,
            "process_id": self.process_id,
            "pid": os.getpid(),
            "started_at": self.started_at,
        }
        wake_read, self._wake = os.pipe()  # a byte here wakes the writer (flush, close)
        os.set_blocking(self._wake, False)
        try:
            self._proc, self._acks = start_writer(wake_read)
        except BaseException:
            os.close(self._wake)
            raise
        self._pipe = open_data_pipe(self._proc)
        self._put(frame(("config", config)), 0, 0)
        self._sender = threading.Thread(
            target=self._drain, name="viralab-prediction-log-sender", daemon=True
        )
        self._reader = threading.Thread(
            target=self._read_acks, name="viralab-prediction-log-acks", daemon=True
        )
        self._sender.start()
        self._reader.start()

    # --- counts ---------------------------------------------------------------------------

    @property
    def written(self) -> int:
        """Rows stored in ``predictions`` (as of the writer's last answer)."""
        extra = self._fallback.written if self._fallback is not None else 0
        return int(self._child["written"]) + extra

    @property
    def dropped(self) -> int:
        """Rows lost here (backlog full, writer gone) or by the writer (database down)."""
        extra = self._fallback.dropped if self._fallback is not None else 0
        return self._local_dropped + int(self._child["dropped"]) + extra

    @property
    def pending(self) -> int:
        extra = self._fallback.pending if self._fallback is not None else 0
        return self._queued_rows + int(self._child["pending"]) + extra

    def stats(self) -> dict[str, Any]:
        return stats(
            self.url,
            written=self.written,
            dropped=self.dropped,
            pending=self.pending,
            outage=self._child["outage"] or self._dead,
        )

    # --- caller side: never blocks -----------------------------------------------------------

    def record(self, **row: Any) -> bool:
        return self.record_many([row]) == 1

    def record_many(self, rows: Sequence[dict[str, Any]]) -> int:
        if not rows:
            return 0
        fallback = self._fallback
        if fallback is not None:
            return fallback.record_many(rows)
        kept = self._reserve(len(rows), 0)
        if kept:
            self._put(frame(("rows", list(rows[:kept]))), kept, 0)
        return kept

    def record_columns(
        self,
        common: Mapping[str, Any],
        columns: Mapping[str, list[Any]],
        documents: list[Any] | None = None,
    ) -> int:
        """Queue `n` rows given as columns; `documents` (if given) are digested by the writer."""
        fallback = self._fallback
        if fallback is not None:
            return fallback.record_columns(common, columns, documents)
        n = len(next(iter(columns.values()))) if columns else 0
        if n == 0:
            return 0
        kept = self._reserve(n, 0)
        if not kept:
            return 0
        if kept < n:
            columns = {k: v[:kept] for k, v in columns.items()}
            documents = None if documents is None else documents[:kept]
        size = text_size(documents) if documents is not None else 0
        if documents is not None and self._queued_bytes + size > self.max_text_bytes:
            # too much text waits already: digest here and send only the digests
            columns = {**columns, "input_digest": [document_digest(d) for d in documents]}
            documents, size = None, 0
        self._put(frame(("columns", common, columns, documents)), kept, size)
        return kept

    def _reserve(self, n: int, size: int) -> int:
        """How many of `n` rows fit (the rest are dropped and counted); holds their room."""
        with self._lock:
            if self._closing or self._dead is not None:
                room = 0
            else:
                room = self.queue_size - self._queued_rows
            kept = max(0, min(n, room))
            self._queued_rows += kept
            lost = n - kept
            self._local_dropped += lost
        if lost and not self._full_logged and self._dead is None:
            self._full_logged = True  # once: the count says the rest
            log.warning(
                "prediction log: %d rows wait for the writer process; new predictions are "
                "dropped and counted",
                self.queue_size,
            )
        return kept

    def _put(self, data: bytes, rows: int, size: int) -> None:
        """Into the pipe now if it has room (the common case: no thread is woken), else at
        the end of the backlog for the sender thread. `rows` were reserved already."""
        lost: OSError | None = None
        with self._lock:
            if self._dead is not None:  # `_lost` counted the reserved rows
                return
            if not self._backlog:
                try:
                    done = os.write(self._pipe, data)
                except BlockingIOError:
                    done = 0
                except OSError as exc:
                    done, lost = 0, exc
                if done == len(data):
                    self._queued_rows -= rows
                    return
                data = data[done:]
            if lost is None:
                self._backlog.append(_Pending(data, rows, size))
                self._queued_bytes += size
                self._changed.notify_all()
        if lost is not None:
            self._lost(f"writer process unreachable ({type(lost).__name__})")

    def _nudge(self) -> None:
        """Wake the writer now (it otherwise looks at the pipe every `POLL_S`)."""
        with contextlib.suppress(OSError):  # full (it will wake anyway) or gone
            os.write(self._wake, b"!")

    # --- flush and close ----------------------------------------------------------------------

    def _send_upstream(self) -> None:
        """Tell the writer how many rows this side dropped (it stores them with its own)."""
        total = self._local_dropped
        if total > self._sent_upstream:
            self._sent_upstream = total
            self._put(frame(("upstream", total)), 0, 0)

    def flush(self, timeout: float = 2.0) -> None:
        """Wait (at most `timeout` s) until the writer has written what was recorded before."""
        deadline = time.monotonic() + max(0.0, timeout)
        if self._fallback is not None:
            self._fallback.flush(timeout)
            return
        if self._dead is not None:
            return
        self._send_upstream()
        with self._lock:
            self._seq += 1
            seq = self._seq
        self._put(frame(("flush", seq, max(0.0, timeout))), 0, 0)
        self._nudge()
        with self._lock:
            while self._acked_seq < seq and self._dead is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._changed.wait(min(remaining, 0.1))

    def close(self, timeout: float = 2.0) -> None:
        """Flush (bounded by `timeout`), let the writer store its counts and stop it."""
        started = time.monotonic()

        def left() -> float:
            return max(0.0, timeout - (time.monotonic() - started))

        self.flush(timeout)
        self._send_upstream()
        self._put(frame(("close", left())), 0, 0)
        self._nudge()
        with self._lock:
            self._closing = True
            self._changed.notify_all()
        self._sender.join(left() + 0.5)  # drains the backlog, then closes the pipe
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(left() + 1.0)
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(5)
        self._reader.join(1.0)
        with contextlib.suppress(OSError):
            os.close(self._wake)
        if self._fallback is not None:
            self._fallback.close(left())
        with self._lock:
            self._local_dropped += self._queued_rows
            self._queued_rows = 0
            self._backlog.clear()
        if self._dead is not None and self.dropped:
            log_losses(self.url, self.dropped, self.written)

    # --- threads ------------------------------------------------------------------------------

    def _drain(self) -> None:
        """Moves the backlog into the pipe as it empties; closes the pipe when closing."""
        while True:
            with self._lock:
                while not self._backlog and not self._closing and self._dead is None:
                    self._changed.wait()
                if self._dead is not None:
                    return
                if not self._backlog:  # closing, and everything went down the pipe
                    break
            with contextlib.suppress(OSError, ValueError):
                select.select([], [self._pipe], [], 0.5)  # until the pipe has room
            lost: OSError | None = None
            with self._lock:
                while self._backlog:
                    item = self._backlog[0]
                    try:
                        done = os.write(self._pipe, item.data)
                    except BlockingIOError:
                        break
                    except OSError as exc:
                        lost = exc
                        break
                    if done < len(item.data):
                        item.data = item.data[done:]
                        break
                    self._backlog.popleft()
                    self._queued_rows -= item.rows
                    self._queued_bytes -= item.size
                self._changed.notify_all()
            if lost is not None:
                self._lost(f"writer process unreachable ({type(lost).__name__})")
                return
            if not self._backlog and self._local_dropped > self._sent_upstream:
                self._send_upstream()
        with contextlib.suppress(OSError):
            assert self._proc.stdin is not None
            self._proc.stdin.close()  # the writer reads to the end, then stops

    def _read_acks(self) -> None:
        while True:
            try:
                message = read_frame(self._acks)
            except Exception:  # a torn frame: the writer is gone
                message = None
            if message is None:
                break
            if message[0] == "ack":
                _, seq, counts = message
                with self._lock:
                    self._child = counts
                    self._acked_seq = max(self._acked_seq, seq)
                    self._changed.notify_all()
        with contextlib.suppress(Exception):
            self._acks.close()
        if not self._closing:
            self._lost(f"writer process exited (code {self._proc.poll()})")

    def _lost(self, reason: str) -> None:
        """The writer process is gone: what waited for it is dropped and counted, and a
        writer thread in this process takes over (a row of its own in the stats table, which
        starts with the drops the lost writer never stored)."""
        with self._lock:
            if self._dead is not None or self._closing:
                return
            self._dead = reason
            self._local_dropped += self._queued_rows
            self._queued_rows = self._queued_bytes = 0
            self._backlog.clear()
            unreported = self._local_dropped - self._sent_upstream
            self._local_dropped = self._sent_upstream
            self._changed.notify_all()
        fallback, uncounted = take_over(self._make_fallback, reason, unreported)
        self._local_dropped += uncounted
        if fallback is not None:
            self._fallback = fallback
