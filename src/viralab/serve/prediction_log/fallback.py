"""The hand-over when a prediction log's writer process is lost (died, or its pipe broke): a
writer thread in the serving process takes over, so serving goes on logging.

The thread's log gets a row of its own in ``prediction_log_stats``, which starts with the
drops the lost writer never stored: no loss goes uncounted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from viralab.serve.prediction_log.row_log import RowLog

# one logger for the whole prediction log, whichever module of it speaks
log = logging.getLogger("viralab.serve.prediction_log")


def take_over(
    make_fallback: Callable[[], RowLog], reason: str, unreported: int
) -> tuple[RowLog | None, int]:
    """The log that takes over from a writer process lost for `reason`, told about the
    `unreported` drops; None when none can be made (no log at all is still better than a
    failing request). Also returns the drops the caller must still count itself."""
    log.warning(
        "prediction log: %s; a writer thread in this process takes over (%d dropped)",
        reason,
        unreported,
    )
    try:
        fallback = make_fallback()
    except Exception as exc:
        log.warning("prediction log: no writer thread either (%s)", type(exc).__name__)
        return None, unreported
    count = getattr(fallback, "count_upstream_drops", None)
    if count is None:
        return fallback, unreported
    count(unreported)
    return fallback, 0
