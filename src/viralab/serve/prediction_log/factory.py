"""`new_prediction_log`: which kind of log a process gets. A writer process by default (the
serving process only hands rows over, see `process_log`), a writer thread of this process
with ``VIRALAB_PREDICTION_LOG_WRITER=thread``, when no process can be started, or when the
writer process is lost later (the fallback it is given)."""

from __future__ import annotations

import logging
import os

from viralab.serve.prediction_log.buffer import (
    DEFAULT_FLUSH_INTERVAL,
    DEFAULT_MAX_TEXT_BYTES,
    DEFAULT_QUEUE_SIZE,
    RETRY_INTERVAL,
    PredictionLog,
)
from viralab.serve.prediction_log.process_log import ProcessPredictionLog
from viralab.serve.prediction_log.row_log import RowLog
from viralab.serve.prediction_log.store import prediction_log_url

# one logger for the whole prediction log, whichever module of it speaks
log = logging.getLogger("viralab.serve.prediction_log")

ENV_WRITER = "VIRALAB_PREDICTION_LOG_WRITER"  # process (default) | thread
#: Rows per transaction in a writer process: no scoring thread to share the GIL with, and a
#: commit costs about as much CPU as a few hundred rows (measured on SQLite: 8.2 -> 4.9 us a
#: row from 500 to 2,000)
PROCESS_BATCH_SIZE = 2000
#: A writer process writes what it has at least this often: it shares no GIL with scoring,
#: and rows still unwritten when a caller flushes are what the caller waits for.
PROCESS_FLUSH_INTERVAL = 0.05


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
