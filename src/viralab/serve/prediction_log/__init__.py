"""The prediction log: every answer a served model gives, written to ``predictions`` off the
caller's thread.

Scoring must never wait on the database, and a database that is down must never stop serving
or grow memory without bound. So recording a row only appends it to a bounded in-memory
buffer (a lock held for microseconds, never a wait); a writer writes them in batches (one
multi-row INSERT per batch). When the buffer is full the new rows are dropped and counted;
when a batch cannot be written (database down) its rows are dropped and counted too, the
outage is logged once (URL redacted) and the writer retries after a pause. The counts
(`written`, `dropped`) are kept per process and, whenever the database answers, stored in
``prediction_log_stats`` so that `viralab monitor live` can report what a server lost.

On or off: ``VIRALAB_PREDICTION_LOG=on|off`` wins; else the config's `tracking.prediction_log`
(true/false; null = automatic); automatic = on when MLflow tracks to a server (an http(s)
``MLFLOW_TRACKING_URI``, i.e. a `tracking=server` deployment), off for the embedded SQLite
store. The rows go to ``VIRALAB_PREDICTION_LOG_URL``, else the application database
(``VIRALAB_DATABASE_URL``, else ``data/viralab.db``).

The process-wide log (`get_prediction_log`) is closed at exit with a short bounded wait
(``VIRALAB_PREDICTION_LOG_EXIT_WAIT``, 2 s): a process never hangs on exit for its log.

Its parts: `rows` (what a row is), `store` (the SQL), `buffer` (`PredictionLog`: the buffer
and its batch writer), `accounting` (counts, outages, losses), `process_log` with `pipe` and
`fallback` (a writer in a process of its own, `viralab.serve.prediction_log_writer`),
`factory` (which kind), `switch` (on or off), `current` (the process's log) and `records`
(rows from what the serving paths return). Every public name is importable from here.
"""

from viralab.serve.input_digest import digest, document_digest
from viralab.serve.prediction_log.buffer import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_FLUSH_INTERVAL,
    DEFAULT_MAX_TEXT_BYTES,
    DEFAULT_QUEUE_SIZE,
    EXIT_WAIT,
    RETRY_INTERVAL,
    PredictionLog,
)
from viralab.serve.prediction_log.current import (
    ENV_EXIT_WAIT,
    ENV_FLUSH,
    active_log,
    get_prediction_log,
    reset_prediction_log,
    set_prediction_log,
    suppressed,
)
from viralab.serve.prediction_log.factory import (
    ENV_WRITER,
    PROCESS_BATCH_SIZE,
    PROCESS_FLUSH_INTERVAL,
    new_prediction_log,
)
from viralab.serve.prediction_log.process_log import ProcessPredictionLog
from viralab.serve.prediction_log.records import record_forecast, record_scores
from viralab.serve.prediction_log.row_log import RowLog
from viralab.serve.prediction_log.rows import OBJECT_BYTES, new_request_id, now_utc
from viralab.serve.prediction_log.store import ENV_URL, SQLITE_ROWS, prediction_log_url
from viralab.serve.prediction_log.switch import ENV_SWITCH, is_server_uri, logging_enabled

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_FLUSH_INTERVAL",
    "DEFAULT_MAX_TEXT_BYTES",
    "DEFAULT_QUEUE_SIZE",
    "ENV_EXIT_WAIT",
    "ENV_FLUSH",
    "ENV_SWITCH",
    "ENV_URL",
    "ENV_WRITER",
    "EXIT_WAIT",
    "OBJECT_BYTES",
    "PROCESS_BATCH_SIZE",
    "PROCESS_FLUSH_INTERVAL",
    "RETRY_INTERVAL",
    "SQLITE_ROWS",
    "PredictionLog",
    "ProcessPredictionLog",
    "RowLog",
    "active_log",
    "digest",
    "document_digest",
    "get_prediction_log",
    "is_server_uri",
    "logging_enabled",
    "new_prediction_log",
    "new_request_id",
    "now_utc",
    "prediction_log_url",
    "record_forecast",
    "record_scores",
    "reset_prediction_log",
    "set_prediction_log",
    "suppressed",
]
