"""The prediction log's writer process: `python -m viralab.serve.prediction_log_writer FD`.

Started by `ProcessPredictionLog` in a serving process. Reads pickled messages on stdin (the
first carries the settings, the database URL among them, so it never shows on a command line)
and hands the rows to a `PredictionLog`, whose thread digests, batches and writes them exactly
as it would inside the serving process; answers each flush with the counts on the pipe `FD`.
Ends when stdin ends (the serving process closed it or died), writing what it holds first.
Warnings go to stderr, which it shares with the serving process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from typing import IO, Any

from viralab.serve.prediction_log import EXIT_WAIT, PredictionLog
from viralab.serve.prediction_log_process import read_frame, write_frame

log = logging.getLogger("viralab.serve.prediction_log")


def counts(prediction_log: PredictionLog) -> dict[str, Any]:
    """What the serving process shows as this writer's share (its own drops, not the ones it
    was told about)."""
    return {
        "written": prediction_log.written,
        "dropped": prediction_log.own_dropped,
        "pending": prediction_log.pending,
        "outage": prediction_log.stats()["outage"],
    }


def serve(inp: IO[bytes], acks: IO[bytes]) -> int:
    config = read_frame(inp)
    if not config or config[0] != "config":
        log.warning("prediction log writer: no settings on stdin; nothing to do")
        return 2
    settings = config[1]
    prediction_log = PredictionLog(
        settings["url"],
        batch_size=settings["batch_size"],
        queue_size=settings["queue_size"],
        flush_interval=settings["flush_interval"],
        retry_interval=settings["retry_interval"],
        max_text_bytes=settings["max_text_bytes"],
    )
    # its rows in prediction_log_stats are the serving process's
    prediction_log.process_id = settings["process_id"]
    prediction_log.pid = settings["pid"]
    prediction_log.started_at = settings["started_at"]

    def answer(seq: int) -> None:
        with contextlib.suppress(OSError, ValueError):  # the serving process is gone
            write_frame(acks, ("ack", seq, counts(prediction_log)))
            acks.flush()

    wait = EXIT_WAIT
    while True:
        try:
            message = read_frame(inp)
        except Exception as exc:  # a torn frame: the serving process died mid-write
            log.warning("prediction log writer: unreadable message (%s)", type(exc).__name__)
            message = None
        if message is None:
            break
        kind = message[0]
        try:
            if kind == "columns":
                prediction_log.record_columns(message[1], message[2], message[3])
            elif kind == "rows":
                prediction_log.record_many(message[1])
            elif kind == "upstream":
                prediction_log.count_upstream_drops(message[1])
            elif kind == "flush":
                prediction_log.flush(message[2])
                answer(message[1])
            elif kind == "close":
                wait = float(message[1])
                break
        except Exception as exc:  # one bad message must not stop the log
            log.warning("prediction log writer: %s message skipped (%s)", kind, exc)
    prediction_log.close(wait)
    answer(-1)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # Ctrl-C reaches the whole process group: the serving process decides when this ends
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    acks = os.fdopen(int(args[0]), "wb")
    try:
        return serve(sys.stdin.buffer, acks)
    finally:
        with contextlib.suppress(OSError):  # the serving process is gone: nobody listens
            acks.close()


if __name__ == "__main__":
    raise SystemExit(main())
