"""The tracking writer process's main: read calls from one pipe, make them on a few threads,
answer on the other (see `viralab.tracking.writer`).

Run as ``python -m viralab.tracking.writer_process <calls fd> <answers fd>`` by the writer.
On EOF (the parent closed the pipe, exited or was killed) it finishes the calls it holds and
exits. Threads: a trial's uploads and batches go concurrently, as they did on the parent's
background pool.
"""

from __future__ import annotations

import pickle
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from viralab.tracking.writer import BACKGROUND_THREADS, apply_environment


def serve(calls: Connection, answers: Connection) -> None:
    """Make every call read from ``calls``; answer (id, error text or None, result)."""
    send_lock = threading.Lock()
    env_lock = threading.Lock()

    def make(call_id: int, env: dict[str, str], pickled: bytes) -> None:
        with env_lock:
            apply_environment(env)
        try:
            answer: tuple[int, str | None, Any] = (call_id, None, pickle.loads(pickled)())
        except BaseException as exc:  # the parent raises it where it waits
            answer = (call_id, f"{type(exc).__name__}: {exc}", None)
        with send_lock:
            try:
                answers.send(answer)
            except (pickle.PicklingError, TypeError, AttributeError):  # an odd result
                answers.send((call_id, None, None))
            except (OSError, ValueError):  # the parent is gone: nobody waits for it
                pass

    with ThreadPoolExecutor(BACKGROUND_THREADS, thread_name_prefix="writer") as pool:
        while True:
            try:
                call_id, env, pickled = calls.recv()
            except (EOFError, OSError):
                break
            pool.submit(make, call_id, env, pickled)


def main(argv: list[str]) -> int:
    calls = Connection(int(argv[0]), writable=False)
    answers = Connection(int(argv[1]), readable=False)
    serve(calls, answers)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
