"""The tracking writer: a child process that makes a run's background requests.

Why a process: against a tracking server a sweep trial's params batches, file uploads and
status update go while the trial computes (`held.send_early`). On background threads each
request's client-side Python (building the request, reading the answer: ~2 ms) took the
interpreter from the trial's compute, and the server sweep's compute ran 0.5-0.8 s a sweep
behind the embedded one's (issue 18). In a process of its own that Python runs on another
core; the calling thread only pickles the call into a pipe (~0.1 ms).

What goes there: `Call`s, picklable descriptions of a request (`ClientCall`, and
`artifacts.Upload`); any other callable, or any call when no writer runs, runs on the
background thread pool as before. A sweep starts the writer (`start()`, up front, so that its
~1 s of imports overlaps the sweep's own; a single training run does not: it would only wait
for them). The writer takes the process's MLflow and AWS environment with every call (a token
set later still reaches it) and ends when this process does: it reads EOF, finishes what it
holds and exits, also after this process is killed. If it dies, the calls it held run again
here, on the thread pool, and the rest of the process's calls go there too (said once, in the
log). ``VIRALAB_TRACKING_WRITER=thread`` keeps every call on the thread pool.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger(__name__)

WRITER_ENV = "VIRALAB_TRACKING_WRITER"
#: Tracking URIs of a server: the only stores whose requests go to the writer.
REMOTE = ("http://", "https://")
#: The environment the writer takes from this process with each call.
ENV_PREFIXES = ("MLFLOW_", "AWS_")


class Call:
    """A request the writer process can make: picklable, and callable here too."""

    tracking_uri: str

    def __call__(self) -> Any:  # pragma: no cover - subclasses say what
        raise NotImplementedError

    def remote(self) -> bool:
        """Whether it goes to a tracking server (only those go to the writer: a local store's
        write is disk work in this process either way)."""
        return self.tracking_uri.startswith(REMOTE)


@dataclass(frozen=True)
class ClientCall(Call):
    """``MlflowClient(tracking_uri).<method>(*args, **kwargs)``; ``store=True``: the method of
    the client's tracking store (a status update without the "View run" link's request)."""

    tracking_uri: str
    method: str
    args: tuple = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    store: bool = False

    def __call__(self) -> Any:
        client = _client(self.tracking_uri)
        target = client._tracking_client.store if self.store else client
        return getattr(target, self.method)(*self.args, **dict(self.kwargs))


_clients: dict[str, Any] = {}


def _client(tracking_uri: str) -> Any:
    client = _clients.get(tracking_uri)
    if client is None:
        import mlflow

        client = _clients[tracking_uri] = mlflow.MlflowClient(tracking_uri=tracking_uri)
    return client


class WriterError(RuntimeError):
    """A call failed in the writer process: its error, as text (type and message)."""


def call_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The part of the environment a call takes along (see `ENV_PREFIXES`)."""
    env = os.environ if environ is None else environ
    return {k: v for k, v in env.items() if k.startswith(ENV_PREFIXES)}


def apply_environment(wanted: Mapping[str, str], environ: dict[str, str] | None = None) -> None:
    """Make the writer's MLflow/AWS environment ``wanted``: set what differs, drop the rest."""
    env = os.environ if environ is None else environ
    for key in [k for k in env if k.startswith(ENV_PREFIXES) and k not in wanted]:
        del env[key]
    for key, value in wanted.items():
        if env.get(key) != value:
            env[key] = value


class _Writer:
    """The parent's end: a pipe of calls out, a pipe of answers in, the calls not answered."""

    def __init__(self) -> None:
        call_read, call_write = os.pipe()
        ack_read, ack_write = os.pipe()
        fds = (str(call_read), str(ack_write))
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "viralab.tracking.writer_process", *fds],
                pass_fds=(call_read, ack_write),
                stdin=subprocess.DEVNULL,
                close_fds=True,
            )
        except BaseException:
            for fd in (call_read, call_write, ack_read, ack_write):
                os.close(fd)
            raise
        os.close(call_read)
        os.close(ack_write)
        self.calls = Connection(call_write, readable=False)
        self.acks = Connection(ack_read, writable=False)
        self.pending: dict[int, tuple[Future, Call]] = {}
        self.lock = threading.Lock()
        self.ids = itertools.count()
        self.alive = True
        self.closed = False  # ended by `close`, not by dying
        self.answered = 0
        self.reader = threading.Thread(target=self._read, name="viralab-writer-acks", daemon=True)
        self.reader.start()

    def submit(self, call: Call) -> Future | None:
        """Send ``call``; None when the writer is gone or ``call`` does not pickle (the caller
        runs it elsewhere)."""
        try:
            data = pickle.dumps(call)
        except (pickle.PicklingError, TypeError, AttributeError):
            return None
        future: Future = Future()
        with self.lock:
            if not self.alive:
                return None
            call_id = next(self.ids)
            self.pending[call_id] = (future, call)
            try:
                self.calls.send((call_id, call_environment(), data))
            except (OSError, ValueError):
                del self.pending[call_id]
                return None
        return future

    def _read(self) -> None:
        while True:
            try:
                call_id, error, result = self.acks.recv()
            except (EOFError, OSError):
                break
            with self.lock:
                future, _ = self.pending.pop(call_id)
                self.answered += 1
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(WriterError(error))
        self._take_over()

    def _take_over(self) -> None:
        """The writer is gone: what it held runs on the thread pool."""
        with self.lock:
            self.alive = False
            held = list(self.pending.values())
            self.pending.clear()
        if held or not self.closed:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=1)  # its exit code, for the message
            log.warning(
                "tracking writer process ended (exit code %s); %d pending request(s) and the "
                "rest of this process's go through background threads",
                self.proc.returncode,
                len(held),
            )
        for future, call in held:
            _chain(_thread_submit(call), future)

    def close(self, timeout: float = 30.0) -> None:
        """EOF to the writer: it finishes what it holds and exits."""
        with self.lock:
            self.alive = False
            self.closed = True
        with contextlib.suppress(OSError):
            self.calls.close()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.reader.join(timeout=5)


def _chain(source: Future, target: Future) -> None:
    def copy(done: Future) -> None:
        error = done.exception()
        if error is None:
            target.set_result(done.result())
        else:
            target.set_exception(error)

    source.add_done_callback(copy)


#: Threads for writes sent while the run goes on (`held.send_early`), for concurrent uploads,
#: and for the writer process's calls when it is off; started once per process (MLflow's
#: async logging set its threads up for every run).
BACKGROUND_THREADS = 8
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def background_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(BACKGROUND_THREADS, thread_name_prefix="viralab-tracking")
        return _pool


def _thread_submit(fn: Callable[[], Any]) -> Future:
    return background_pool().submit(fn)


_writer: _Writer | None = None
_failed = False
_at_exit: list[Callable[[], None]] = []  # `stop`, once registered
_start_lock = threading.Lock()


def enabled() -> bool:
    """Whether calls go to a writer process (``VIRALAB_TRACKING_WRITER``, default on)."""
    return os.environ.get(WRITER_ENV, "process").strip().lower() != "thread"


def start(tracking_uri: str | None = None) -> bool:
    """Start the writer now if it is on and not running; False when calls stay in-process,
    also when ``tracking_uri`` (default: the current one) is not a tracking server."""
    global _writer, _failed
    if tracking_uri is None:
        import mlflow

        tracking_uri = mlflow.get_tracking_uri()
    if not enabled() or _failed or not tracking_uri.startswith(REMOTE):
        return False
    with _start_lock:
        if _writer is not None and _writer.alive:
            return True
        if _writer is not None:  # it died: its calls and the rest go to threads
            return False
        try:
            _writer = _Writer()
        except OSError as exc:
            _failed = True
            log.warning("tracking writer process did not start (%s): background threads", exc)
            return False
        if not _at_exit:
            atexit.register(stop)
            _at_exit.append(stop)
        return True


def submit(fn: Callable[[], Any]) -> Future:
    """Run ``fn`` in the background: a `Call` to a tracking server in the writer process when
    one runs (`start`), anything else (or everything, when none does) on the background
    thread pool. Not started here: a single training run would wait for its imports."""
    writer = _writer
    if isinstance(fn, Call) and writer is not None and writer.alive and fn.remote():
        future = writer.submit(fn)
        if future is not None:
            return future
    return _thread_submit(fn)


def answered() -> int:
    """How many calls the current writer process has answered (0 when none runs)."""
    return _writer.answered if _writer is not None else 0


def writer_pid() -> int | None:
    """The running writer process's id, or None."""
    return _writer.proc.pid if _writer is not None and _writer.alive else None


def stop() -> None:
    """End the writer after the calls it holds (at exit, or to start afresh)."""
    global _writer
    writer, _writer = _writer, None
    if writer is not None:
        writer.close()
