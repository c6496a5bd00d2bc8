"""The prediction log's writer process: `python -m viralab.serve.prediction_log_writer FD WAKE`.

Started by `ProcessPredictionLog` in a serving process (`FD`: the pipe for answers, `WAKE`:
the pipe that wakes this process for a flush or close). Reads pickled messages on stdin (the
first carries the settings, the database URL among them, so it never shows on a command line)
and hands the rows to a `PredictionLog` without a thread of its own, writing its batches on
this process's one thread the way the log's thread would inside the serving process; answers
each flush with the counts on the pipe `FD`.
Ends when stdin ends (the serving process closed it or died), writing what it holds first.
Warnings go to stderr, which it shares with the serving process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import sys
import time
from typing import IO, Any

from viralab.serve.prediction_log.buffer import EXIT_WAIT, PredictionLog
from viralab.serve.prediction_log.pipe import HEADER, write_frame

#: Bytes read from the pipe at a time (a pipe holds 1 MB: `ProcessPredictionLog`).
READ_SIZE = 1 << 20
ENV_NICE = "VIRALAB_PREDICTION_LOG_NICE"
DEFAULT_NICE = 19
#: How often the pipe is looked at: rows wait at most this long before they are read.
POLL_S = 0.02

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


def serve(inp: IO[bytes], acks: IO[bytes], wake: int) -> int:
    """Reads messages until the end of `inp`, writing on this one thread: rows are written
    when a batch is full, when the oldest has waited `flush_interval`, or when asked to flush
    (no second thread: nothing to hand a lock or the GIL to; what arrives meanwhile waits in
    the pipe)."""
    fd = inp.fileno()
    os.set_blocking(fd, False)
    pending = bytearray()
    messages: list[Any] = []
    eof = False

    def receive(timeout: float | None) -> None:
        """Complete messages that arrived, after at most `timeout` s (None: no limit) unless
        the serving process wakes this one sooner. Not waiting on the data pipe itself is the
        point: a reader woken by every write would preempt the scoring thread it serves."""
        nonlocal eof
        ready, _, _ = select.select([wake], [], [], POLL_S if timeout is None else timeout)
        if ready:
            with contextlib.suppress(BlockingIOError):
                if not os.read(wake, 4096):
                    eof = True  # the serving process is gone
        while True:
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                break
            if not data:
                eof = True
                break
            pending.extend(data)
            if len(data) < READ_SIZE:
                break
        start = 0
        while len(pending) - start >= HEADER.size:
            (size,) = HEADER.unpack_from(pending, start)
            end = start + HEADER.size + size
            if end > len(pending):
                break
            messages.append(pickle.loads(pending[start + HEADER.size : end]))
            start = end
        del pending[:start]

    while not messages and not eof:
        receive(None)
    if not messages or messages[0][0] != "config":
        log.warning("prediction log writer: no settings on stdin; nothing to do")
        return 2
    settings = messages.pop(0)[1]
    prediction_log = PredictionLog(
        settings["url"],
        batch_size=settings["batch_size"],
        queue_size=settings["queue_size"],
        flush_interval=settings["flush_interval"],
        retry_interval=settings["retry_interval"],
        max_text_bytes=settings["max_text_bytes"],
        thread=False,
    )
    # its rows in prediction_log_stats are the serving process's
    prediction_log.process_id = settings["process_id"]
    prediction_log.pid = settings["pid"]
    prediction_log.started_at = settings["started_at"]
    interval = float(settings["flush_interval"])

    def answer(seq: int) -> None:
        with contextlib.suppress(OSError, ValueError):  # the serving process is gone
            write_frame(acks, ("ack", seq, counts(prediction_log)))
            acks.flush()

    wait = EXIT_WAIT
    oldest: float | None = None  # when the oldest unwritten row arrived
    closing = False
    while not closing:
        for message in messages:
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
                    wait, closing = float(message[1]), True
                    break
            except Exception as exc:  # one bad message must not stop the log
                log.warning("prediction log writer: %s message skipped (%s)", kind, exc)
        messages.clear()
        if closing or eof:
            break
        now = time.monotonic()
        if prediction_log.pending and oldest is None:
            oldest = now
        due = oldest is not None and now - oldest >= interval
        # every turn, rows or not: it also stores changed counts (drops during an outage
        # reach prediction_log_stats once the database answers again)
        prediction_log.write_due(everything=due)
        if not prediction_log.pending:
            oldest = None
        elif due:
            oldest = now
        timeout = POLL_S
        if oldest is not None:
            timeout = min(POLL_S, max(0.0, interval - (time.monotonic() - oldest)))
        try:
            receive(timeout)
        except Exception as exc:  # a torn frame: the serving process died mid-write
            log.warning("prediction log writer: unreadable message (%s)", type(exc).__name__)
            break
    prediction_log.close(wait)
    answer(-1)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    # Ctrl-C reaches the whole process group: the serving process decides when this ends
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The lowest priority: woken on the scoring thread's CPU, a writer of normal priority
    # preempted it (~90 ms of 0.5 s spent waiting to run, measured); at nice 19 it runs on
    # what the serving process leaves. A machine busy on every core then lets it fall behind:
    # its pipe and backlog fill and rows are dropped and counted, scoring never waits.
    with contextlib.suppress(OSError, ValueError):
        os.nice(int(os.environ.get(ENV_NICE) or DEFAULT_NICE))
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    acks = os.fdopen(int(args[0]), "wb")
    try:
        return serve(sys.stdin.buffer, acks, int(args[1]))
    finally:
        with contextlib.suppress(OSError):  # the serving process is gone: nobody listens
            acks.close()


if __name__ == "__main__":
    raise SystemExit(main())
