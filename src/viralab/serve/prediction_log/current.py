"""The process's own prediction log, which the serving paths and pyfuncs write to: started
on first use while logging is on (`switch`), closed at exit with a short bounded wait
(``VIRALAB_PREDICTION_LOG_EXIT_WAIT``, 2 s) so that a process never hangs on exit for its
log; and `suppressed`, for a serving path that logs for the pyfunc it calls."""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import os
import threading
from collections.abc import Iterator

from viralab.serve.prediction_log.buffer import DEFAULT_FLUSH_INTERVAL, EXIT_WAIT
from viralab.serve.prediction_log.factory import new_prediction_log
from viralab.serve.prediction_log.row_log import RowLog
from viralab.serve.prediction_log.switch import logging_enabled

ENV_FLUSH = "VIRALAB_PREDICTION_LOG_FLUSH_S"
ENV_EXIT_WAIT = "VIRALAB_PREDICTION_LOG_EXIT_WAIT"

#: Set while a serving path that logs for itself calls a pyfunc that would log too.
_suppressed: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "viralab_prediction_log_suppressed", default=False
)

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
