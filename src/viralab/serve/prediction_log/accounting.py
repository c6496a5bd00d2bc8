"""What a prediction log says about what it lost: its counts as a status shows them, the
outage it is in (a line when it starts, one when it ends, none in between) and the drops
left when it closes. Shared by both kinds of log, so both say it the same way.
"""

from __future__ import annotations

import logging
from typing import Any

from viralab.redaction import mask_url

# one logger for the whole prediction log, whichever module of it speaks
log = logging.getLogger("viralab.serve.prediction_log")


def stats(
    url: str, *, written: int, dropped: int, pending: int, outage: str | None
) -> dict[str, Any]:
    """Counts of a process's log, for a status line or endpoint (the URL redacted)."""
    return {
        "written": written,
        "dropped": dropped,
        "pending": pending,
        "database": mask_url(url),
        "outage": outage,
    }


def outage_began(url: str, outage: str | None, reason: str, dropped: int) -> str:
    """The outage after a write failed for `reason`; only the first of an outage is logged
    (a database that stays down must not fill the log with a line per batch)."""
    if outage is None:
        log.warning(
            "prediction log: cannot write to %s (%s); serving goes on, predictions are "
            "dropped and counted (%d so far)",
            mask_url(url),
            reason,
            dropped,
        )
    return reason


def outage_ended(url: str, outage: str | None, dropped: int) -> None:
    """No outage after a write succeeded; says so when there was one."""
    if outage is not None:
        log.warning(
            "prediction log: writing again to %s; %d prediction(s) dropped meanwhile",
            mask_url(url),
            dropped,
        )


def log_losses(url: str, dropped: int, written: int) -> None:
    """The closing line of a log that lost rows."""
    log.warning(
        "prediction log: %d prediction(s) dropped, %d written (database %s)",
        dropped,
        written,
        mask_url(url),
    )
