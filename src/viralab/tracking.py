"""Every MLflow connection detail in one place: store URI, experiments, the run we log into.

Training code computes and returns results; this module is the edge that talks to MLflow
(STYLE: "tracking at the edges").
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import mlflow
import yaml
from mlflow.entities import Metric, Param, Run, RunTag
from omegaconf import DictConfig

from viralab.config import (
    config_yaml,
    flatten_params,
    redact,
    redact_text,
    to_safe_container,
)

log = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"


def resolve_tracking_uri(configured: str | None = None) -> str:
    """`MLFLOW_TRACKING_URI` wins, then the config, then the embedded default.

    A relative SQLite path is made absolute against the working directory (the project root
    for `mlflow run .` and the README commands) and its folder created, so every entry point
    lands in the same `mlruns/mlflow.db` rather than MLflow 3's own `./mlflow.db` default.
    """
    uri = os.environ.get("MLFLOW_TRACKING_URI") or configured or DEFAULT_TRACKING_URI
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_absolute():
            path = (Path.cwd() / path).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{path}"
    elif uri.startswith("sqlite:////"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return uri


def configure_tracking(cfg: DictConfig | None = None) -> str:
    """Point MLflow at the configured store; returns the URI. The registry follows the
    tracking store (MLflow's default when no registry URI is set)."""
    configured = None
    if cfg is not None and "tracking" in cfg:
        configured = cfg.tracking.get("uri")
    uri = resolve_tracking_uri(configured)
    tune_sqlite()
    skip_absent_platform_modules()
    mlflow.set_tracking_uri(uri)
    return uri


#: One writer per store file at a time (a run logs from one process; workers each write their
#: own runs): WAL lets readers go on while it writes, and `synchronous=NORMAL` syncs at
#: checkpoints instead of on every commit. A commit survives a killed process (SIGKILL); only
#: an OS crash or power cut may lose the last commits. WAL needs a local disk (not NFS).
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA temp_store=MEMORY",
)


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    cursor = dbapi_connection.cursor()
    try:
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


@functools.cache
def tune_sqlite() -> None:
    """Open every SQLite database of this process (MLflow's store, Optuna's storage) in WAL mode.

    Why: MLflow's SqlAlchemyStore commits once per logging call, and SQLite's default rollback
    journal with `synchronous=FULL` makes each commit write and fsync the journal and the
    database: most of a small run's tracking time on a SQLite store. MLflow creates its engine
    itself (`mlflow.store.db.utils.create_sqlalchemy_engine`), so the pragmas are set by an
    SQLAlchemy `connect` listener on every engine, which is a no-op for other databases.
    Idempotent.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.listen(Engine, "connect", _sqlite_pragmas)


#: Modules MLflow tries to import on every run it creates and every request it sends to a
#: server, to tell whether it runs on Databricks, beside Spark or in a notebook.
PLATFORM_MODULES = ("pyspark", "dbruntime", "IPython")


@functools.cache
def skip_absent_platform_modules() -> None:
    """Let MLflow's imports of `PLATFORM_MODULES` fail at once when they are not installed.

    Why: MLflow tries `import pyspark.sql`, `import dbruntime...` (Databricks' runtime) and
    `import IPython` whenever it resolves a new run's context tags or a request's headers:
    about 15 imports a request, each a failing search of `sys.path` (Python caches only the
    modules it finds), 1.0 ms of every request to a server and 1.6 ms of every run's creation
    on this machine; 0.1 and 0.15 ms with them marked absent. A `None` entry in `sys.modules`
    is Python's own way to make an import fail at once (`ModuleNotFoundError`); it is set only
    for modules `importlib` cannot find, so an installed Spark or IPython is untouched.
    """
    import importlib.util
    import sys

    for name in PLATFORM_MODULES:
        if name not in sys.modules and importlib.util.find_spec(name) is None:
            sys.modules[name] = None  # type: ignore[assignment]


ASYNC_BUFFER_ENV = "MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"


@contextlib.contextmanager
def async_logging() -> Iterator[None]:
    """MLflow's asynchronous logging of params, metrics and tags for the body, flushed at exit.

    Why: each fluent call otherwise waits for its own store transaction; queued, they are merged
    into a few `log_batch` calls on MLflow's logging thread while training goes on. Ending a
    run (`set_terminated`) drains the queue first, and the flush here covers a body that
    raises, so a finished run holds everything it logged; a killed process may lose the
    batch still queued for its running run, never a finished run's data.
    """
    from mlflow.environment_variables import MLFLOW_ENABLE_ASYNC_LOGGING

    was = MLFLOW_ENABLE_ASYNC_LOGGING.get()
    if was:  # an outer async_logging (a sweep trial's) flushes, merging this body's writes
        yield  # with what it queues after (the trial's state tags)
        return
    buffering = os.environ.get(ASYNC_BUFFER_ENV)
    # With a buffering time, MLflow's logging thread waits on its stop event and then merges
    # everything queued into as few `log_batch` calls as the limits allow; without one it logs
    # each call on its own and polls its queue with a 1 s timeout, which every run end (the
    # thread is joined) waits out.
    os.environ.setdefault(ASYNC_BUFFER_ENV, "10")
    mlflow.config.enable_async_logging(True)
    try:
        yield
    finally:
        try:
            mlflow.flush_async_logging()
        finally:
            mlflow.config.enable_async_logging(was)
            if buffering is None:
                os.environ.pop(ASYNC_BUFFER_ENV, None)


@dataclass
class RunWrites:
    """A run's params, metrics and tags held until `write_held` (one `log_batch`), and the
    writes already sent for it in the background (`send_early`), joined by `write_held`."""

    params: dict[str, str] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    early: bool = False
    sent: list[Future] = field(default_factory=list)
    early_tags: set[str] = field(default_factory=set)  # tag keys sent with an early batch
    early_batches: list[Future] = field(default_factory=list)  # those batches (in `sent` too)
    after: list[Callable[[], None]] = field(default_factory=list)


#: Runs whose writes are held, by run id (see `hold_writes`).
_held: dict[str, RunWrites] = {}

#: Threads for writes sent while the run goes on (`send_early`) and for concurrent uploads;
#: started once per process (MLflow's async logging set its threads up for every run).
BACKGROUND_THREADS = 8
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def background_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(BACKGROUND_THREADS, thread_name_prefix="viralab-tracking")
        return _pool


#: `VIRALAB_EARLY_WRITES=1|0` forces early writes on or off; unset: on for a remote store
#: (a tracking server), off for SQLite (see `early_writes`).
EARLY_WRITES_ENV = "VIRALAB_EARLY_WRITES"


def early_writes(tracking_uri: str | None = None) -> bool:
    """Whether a held run sends its params and finished files while its body goes on.

    Why: against a tracking server a trial's ~100 params were two `log_batch` requests and
    each file an upload, all made after the training, one after the other; sent while the
    trial computes they wait on the network, not on the compute. On the embedded SQLite store
    a write is Python work that would compete with the compute for the interpreter.
    """
    forced = os.environ.get(EARLY_WRITES_ENV, "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return True
    if forced in ("0", "false", "no", "off"):
        return False
    uri = tracking_uri or mlflow.get_tracking_uri()
    return not uri.startswith(("sqlite:", "file:", "/")) and "://" in uri


def hold_writes(run_id: str, early: bool | None = None) -> bool:
    """Hold the run's params, metrics and tags logged through this module until `write_held`;
    False when they are held already (the caller then leaves writing them to whoever held).

    Why: MLflow's asynchronous logging merged them into few `log_batch` calls too, but set up
    and joined its logging threads for every run: about 18 ms a run on the embedded store,
    more than the writes themselves (a 150-param, 40-metric, 30-tag run: 26 ms held and
    written at once, 45 ms queued). Held writes are written when the run ends, before its
    status changes (or beside it, see below): a finished run holds everything; a killed
    process loses its running run's writes, never a finished run's, as with MLflow's queue.

    ``early`` (default: `early_writes()`): params (in full batches of 100, with the tags held
    so far), and the files of an artifact batch once it ends, are sent at once on background
    threads (`send_early`) instead of held; `write_held` waits for them before it returns. A
    status update passed to `write_held` as ``along`` is then sent beside the run's last
    writes rather than after them (a sweep trial against a server: its caller hears of the
    end only once both are stored).
    """
    if run_id in _held:
        return False
    _held[run_id] = RunWrites(early=early_writes() if early is None else early)
    return True


def early_writes_of(run_id: str) -> bool:
    """Whether ``run_id``'s writes are held and go early (see `hold_writes`)."""
    writes = _held.get(run_id)
    return writes is not None and writes.early


def send_early(run_id: str, fn: Callable[[], None], *, quiet: bool = False) -> bool:
    """Run ``fn`` (a write for the held run ``run_id``) on a background thread now; False
    when the run's writes are not held (the caller writes it itself). `write_held` joins it
    (raising its error, unless ``quiet``)."""
    writes = _held.get(run_id)
    if writes is None:
        return False

    def run() -> None:
        try:
            fn()
        except Exception:
            if not quiet:
                raise
            log.debug("a background write for run %s failed", run_id, exc_info=True)

    writes.sent.append(background_pool().submit(run))
    return True


def _send_batch_early(run_id: str, fn: Callable[[], None]) -> None:
    send_early(run_id, fn)
    writes = _held[run_id]
    writes.early_batches.append(writes.sent[-1])


def _join(writes: RunWrites) -> None:
    """Wait for every write sent for the run; then run its clean-ups; raise the first error."""
    error: BaseException | None = None
    for future in writes.sent:
        try:
            future.result()
        except BaseException as exc:
            error = error or exc
    writes.sent.clear()
    for cleanup in writes.after:  # removing a folder is disk work nobody waits for: a
        background_pool().submit(cleanup)  # trial's took ~2 ms on this machine's disk
    writes.after.clear()
    if error is not None:
        raise error


def write_held(run_id: str, along: Callable[[], None] | None = None) -> None:
    """Write (and stop holding) the run's held writes: as few `log_batch` calls as MLflow's
    limits allow (100 params, 100 tags, 1000 entities a call), while the writes sent early
    finish; returns once all of them are in the store.

    ``along`` (a request of the caller's, e.g. the run's status update) is made on the calling
    thread after the last batch, even when that raised; for a run whose writes go early
    (`hold_writes`) while the last batch is sent from a background thread instead: one round
    trip less at the end of a run against a server (MLflow's store takes a batch for a
    finished run). Either way this returns (or raises the first error) only once both are
    done.
    """
    writes = _held.pop(run_id, None)
    if writes is None:
        if along is not None:
            along()
        return
    batch: Callable[[], None] | None = None
    if writes.params or writes.metrics or writes.tags:
        batch = functools.partial(
            mlflow.MlflowClient().log_batch,
            run_id,
            metrics=writes.metrics,
            params=[Param(k, v) for k, v in writes.params.items()],
            tags=[RunTag(k, v) for k, v in writes.tags.items()],
        )
    if writes.early_tags & writes.tags.keys():  # a newer value of a tag sent early: the
        wait(writes.early_batches)  # early batch lands first, so the newer value stays
        # (only the batches: waiting for the run's uploads too put its last batch, the
        # longest request of a trial's end, behind them)
    try:
        if batch is not None and along is not None and writes.early:
            writes.sent.append(background_pool().submit(batch))
            along()
            return
        try:
            if batch is not None:
                batch()
        finally:
            if along is not None:
                along()
    finally:
        _join(writes)


def flush_held(run_id: str | None = None) -> None:
    """Write the active run's (or ``run_id``'s) held writes now and keep holding the rest:
    before something reads the run back from the store (registration, evidence)."""
    run = mlflow.active_run()
    run_id = run_id or (run.info.run_id if run is not None else None)
    if run_id and run_id in _held:
        early = _held[run_id].early
        write_held(run_id)
        _held[run_id] = RunWrites(early=early)


@contextlib.contextmanager
def held_writes() -> Iterator[None]:
    """`hold_writes` for the active run over the body, written at its end (also on a raise).
    Inside an outer hold of the same run (a sweep trial's) it joins it."""
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("held_writes() needs an active MLflow run")
    if not hold_writes(run.info.run_id):
        yield
        return
    try:
        yield
    finally:
        write_held(run.info.run_id)


def _holding(run_id: str | None = None) -> RunWrites | None:
    if run_id is None:
        run = mlflow.active_run()
        run_id = run.info.run_id if run is not None else None
    return _held.get(run_id) if run_id else None


#: MLflow's most params (and tags) in one `log_batch` request.
PARAMS_PER_BATCH = 100


def log_params(params: Mapping[str, Any]) -> None:
    """`mlflow.log_params` on the active run, held while its writes are (`hold_writes`)."""
    run = mlflow.active_run()
    held = _holding(run.info.run_id if run is not None else None)
    if held is None:
        mlflow.log_params(dict(params))
    else:
        held.params.update({k: str(v) for k, v in params.items()})
        if held.early and len(held.params) >= PARAMS_PER_BATCH:
            # full batches go now, while the run's body goes on (`write_held` waits for them);
            # the rest joins the run's last batch rather than making a request of its own
            items = list(held.params.items())
            cut = len(items) - len(items) % PARAMS_PER_BATCH
            batch = [Param(k, v) for k, v in items[:cut]]
            held.params = dict(items[cut:])
            # the tags held so far ride along in the same request (up to MLflow's 100): off
            # the run's last batch, and in the store early (a sweep's command for its trial)
            tags = [RunTag(k, v) for k, v in list(held.tags.items())[:PARAMS_PER_BATCH]]
            for tag in tags:
                del held.tags[tag.key]
                held.early_tags.add(tag.key)
            client, run_id = mlflow.MlflowClient(), run.info.run_id
            _send_batch_early(run_id, lambda: client.log_batch(run_id, params=batch, tags=tags))


def log_metrics(metrics: Mapping[str, float], step: int = 0) -> None:
    """`mlflow.log_metrics` on the active run, held while its writes are."""
    held = _holding()
    if held is None:
        mlflow.log_metrics(dict(metrics), step=step)
    else:
        now = int(time.time() * 1000)
        held.metrics.extend(Metric(k, float(v), now, step) for k, v in metrics.items())


def set_tags(tags: Mapping[str, Any], run_id: str | None = None) -> None:
    """`mlflow.set_tags` on the active run (or ``run_id``), held while its writes are."""
    held = _holding(run_id)
    if held is not None:
        held.tags.update({k: str(v) for k, v in tags.items()})
    elif run_id is None:
        mlflow.set_tags(dict(tags))
    else:
        mlflow.MlflowClient().log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def discard_held_tag(key: str, run_id: str) -> bool:
    """Drop a held tag not yet written; False when the run's writes are not held, or when
    the tag went with an early batch: that batch is then stored before this returns, and the
    caller deletes the tag from the store."""
    held = _holding(run_id)
    if held is None:
        return False
    held.tags.pop(key, None)
    if key in held.early_tags:
        wait(held.sent)
        return False
    return True


SUPPRESS_URL_ENV = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"


@contextlib.contextmanager
def no_run_links() -> Iterator[None]:
    """No "View run" link printed when a run in the body ends (MLflow's own switch for it).

    Why: against a tracking server MLflow fetches the whole run again (one `runs/get` request)
    only to print that link, once per run. A sweep hides its trials' output anyway, so the
    link was fetched for nothing on every trial.
    """
    was = os.environ.get(SUPPRESS_URL_ENV)
    os.environ[SUPPRESS_URL_ENV] = "true"
    try:
        yield
    finally:
        if was is None:
            os.environ.pop(SUPPRESS_URL_ENV, None)
        else:
            os.environ[SUPPRESS_URL_ENV] = was


class ArtifactBatch:
    """A run's artifacts, written to a local folder first and uploaded together on exit.

    The files are what `mlflow.log_dict` / `log_text` / `log_artifact` / `log_figure` write
    (same serialisation, same run-relative paths); only the upload differs (`artifact_batch`).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sent: set[Path] = set()  # files already handed to an upload
        self.written: dict[Path, None] = {}  # every path handed out, in order
        self.folders: set[Path] = {root}

    def path(self, artifact_file: str) -> Path:
        """Where to write ``artifact_file`` (a run-relative posix path); its folder exists.

        The path is checked lexically (no absolute path, no `..`), not by resolving it: the
        batch's folder is its own fresh directory, and resolving and creating folders on every
        file took about 1 ms a file on this machine's disk.
        """
        parts = PurePosixPath(artifact_file).parts
        if not parts or PurePosixPath(artifact_file).is_absolute() or ".." in parts:
            raise ValueError(f"artifact path {artifact_file!r} leaves the run's artifacts")
        path = self.root.joinpath(*parts)
        if path.parent not in self.folders:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.folders.add(path.parent)
        self.written[path] = None
        return path

    def dict(self, dictionary: Any, artifact_file: str) -> None:
        """As `mlflow.log_dict`: YAML for .yaml/.yml, else JSON (indent 2, `str` fallback)."""
        with self.path(artifact_file).open("w") as f:
            if PurePosixPath(artifact_file).suffix in (".yml", ".yaml"):
                yaml.dump(dictionary, f, indent=2, default_flow_style=False)
            else:
                json.dump(dictionary, f, indent=2, default=str)

    def text(self, text: str, artifact_file: str) -> None:
        """As `mlflow.log_text`."""
        self.path(artifact_file).write_text(text)

    def figure(self, figure: Any, artifact_file: str) -> None:
        """As `mlflow.log_figure` for a matplotlib figure."""
        figure.savefig(self.path(artifact_file))

    def file(self, local_path: Path, artifact_path: str | None = None) -> None:
        """As `mlflow.log_artifact`: ``local_path`` under ``artifact_path`` (default: the root)."""
        name = Path(local_path).name
        shutil.copyfile(local_path, self.path(f"{artifact_path}/{name}" if artifact_path else name))

    def unsent(self) -> list[Path]:
        """The files not yet handed to an upload, now marked as handed."""
        files = sorted(p for p in self.written if p not in self.sent and p.is_file())
        self.sent.update(files)
        return files


#: Concurrent uploads of one batch to a remote artifact store (HTTP, S3, ...).
UPLOAD_THREADS = 8


def _artifact_repo(artifact_uri: str) -> Any:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    return get_artifact_repository(artifact_uri, tracking_uri=mlflow.get_tracking_uri())


def _upload_one(repo: Any, local_dir: Path, path: Path) -> None:
    folder = path.parent.relative_to(local_dir).as_posix()
    repo.log_artifact(str(path), None if folder == "." else folder)


def upload_artifacts(local_dir: Path, artifact_uri: str, files: list[Path] | None = None) -> None:
    """Upload every file under ``local_dir`` (or ``files`` of it) to ``artifact_uri``, keeping
    the relative paths.

    Why: against a tracking server each artifact is its own HTTP request and each
    `mlflow.log_*` call also asked the server for the run first (its artifact location); a run's
    handful of small files went one after the other. Here the run's location is known, a local
    store gets one `log_artifacts` (a copy) and a remote one gets the files concurrently.
    """
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    if files is None:
        files = sorted(p for p in local_dir.rglob("*") if p.is_file())
    if not files:
        return
    repo = _artifact_repo(artifact_uri)
    if isinstance(repo, LocalArtifactRepository) or len(files) == 1:
        for path in files:
            _upload_one(repo, local_dir, path)
        return
    pool = background_pool()
    error: BaseException | None = None
    for done in [pool.submit(_upload_one, repo, local_dir, path) for path in files]:
        try:
            done.result()  # every upload ends before the first failure raises
        except BaseException as exc:
            error = error or exc
    if error is not None:
        raise error


def _send_files(run_id: str, batch: ArtifactBatch, artifact_uri: str, quiet: bool) -> bool:
    """Hand the batch's unsent files to background uploads (one each) for a held run whose
    writes go early; False when they do not (the caller uploads them itself)."""
    writes = _held.get(run_id)
    if writes is None or not writes.early:
        return False
    files = batch.unsent()
    if files:
        repo = _artifact_repo(artifact_uri)
        for path in files:
            send_early(run_id, functools.partial(_upload_one, repo, batch.root, path), quiet=quiet)
    return True


#: The batches open now, by run id: a batch opened inside another of the same run joins it.
_open_batches: ContextVar[dict[str, ArtifactBatch] | None] = ContextVar(
    "viralab_artifact_batches", default=None
)


@contextlib.contextmanager
def artifact_batch() -> Iterator[ArtifactBatch]:
    """Collect the active run's artifacts in the body; upload them all when it ends.

    Also when the body raises (what was written before the error is kept, as it was when each
    file was logged on its own); an upload error then does not hide the body's. Opened inside
    another batch of the same run, it is that batch: its files go up with the outer one's
    (a sweep trial opens one around `train()`: one upload round per trial).

    For a run whose writes are held and go early (`hold_writes`), the files go up on
    background threads as soon as the batch that wrote them ends (an inner one too: the
    trial's `config.yaml` while it trains), and `write_held` waits for them; the batch's
    folder is removed after.
    """
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("artifact_batch() needs an active MLflow run")
    run_id, artifact_uri = run.info.run_id, run.info.artifact_uri
    batches = _open_batches.get() or {}
    if run_id in batches:
        batch = batches[run_id]
        try:
            yield batch
        except BaseException:
            with contextlib.suppress(Exception):
                _send_files(run_id, batch, artifact_uri, quiet=True)
            raise
        _send_files(run_id, batch, artifact_uri, quiet=False)
        return
    root = Path(tempfile.mkdtemp(prefix="viralab-artifacts-")).resolve()
    batch = ArtifactBatch(root)
    token = _open_batches.set({**batches, run_id: batch})
    deferred = False
    try:
        try:
            yield batch
        except BaseException:
            _open_batches.reset(token)
            with contextlib.suppress(Exception):
                if _send_files(run_id, batch, artifact_uri, quiet=True):
                    deferred = True
                else:
                    upload_artifacts(root, artifact_uri, batch.unsent())
            raise
        _open_batches.reset(token)
        if _send_files(run_id, batch, artifact_uri, quiet=False):
            deferred = True
        else:
            upload_artifacts(root, artifact_uri, batch.unsent())
    finally:
        if deferred:
            _held[run_id].after.append(functools.partial(shutil.rmtree, root, True))
        else:
            shutil.rmtree(root, ignore_errors=True)


def _local_artifact_root(uri: str) -> Path | None:
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).parent
    return None


def ensure_experiment(name: str) -> str:
    """The experiment's id, creating it with artifacts beside the SQLite store if it is new."""
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            mlflow.tracking.MlflowClient().restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    root = _local_artifact_root(mlflow.get_tracking_uri())
    location = None
    if root is not None:
        slug = re.sub(r"[^a-zA-Z0-9_-]+", "-", name).strip("-").lower() or "experiment"
        location = (root / "artifacts" / slug).as_uri()
    return mlflow.create_experiment(name, artifact_location=location)


@contextlib.contextmanager
def tracked_run(
    *,
    experiment: str,
    run_name: str,
    nested: bool = False,
    tags: Mapping[str, str] | None = None,
) -> Iterator[Run]:
    """Open (or attach to) the run to log into; it ends FAILED if the body raises.

    Under `mlflow run`, `MLFLOW_RUN_ID` names the run the project launcher already created:
    the first top-level run attaches to it (no orphan second run) and keeps its experiment.
    A run opened while another is active becomes its child (`nested` is implied), in the
    parent's experiment; `nested=True` only forbids attaching to `MLFLOW_RUN_ID`. Inside
    `offer_active_run` (a sweep trial) the first non-nested one logs into the offered active
    run instead, and leaves ending it to whoever opened it.
    """
    parent = mlflow.active_run()
    offered = _offered_run.get()
    if offered and not nested and parent is not None and parent.info.run_id == offered[0]:
        offered.clear()  # taken: runs opened inside this one are its children
        yield from _log_into(parent, run_name, tags)
        return
    attach_id = os.environ.get("MLFLOW_RUN_ID") if not nested else None
    if attach_id and parent is None:
        run_ctx = mlflow.start_run(run_id=attach_id)
        os.environ.pop("MLFLOW_RUN_ID", None)  # consumed: later top-level runs are new runs
        mlflow.set_tag("mlflow.runName", run_name)
    elif parent is not None:
        # A run opened inside another (a sweep trial, one target of `target=all`) is its
        # child and lives in the parent's experiment, so the UI shows them together.
        run_ctx = mlflow.start_run(
            experiment_id=parent.info.experiment_id, run_name=run_name, nested=True
        )
    else:
        experiment_id = ensure_experiment(experiment)
        run_ctx = mlflow.start_run(experiment_id=experiment_id, run_name=run_name)
    with run_ctx as run:
        if tags:
            mlflow.set_tags(redact(dict(tags)))
        try:
            yield run
        except BaseException as exc:
            with contextlib.suppress(Exception):
                mlflow.set_tag("viralab.error", redact_text(f"{type(exc).__name__}: {exc}")[:500])
            raise


def _log_into(run: Run, run_name: str, tags: Mapping[str, str] | None) -> Iterator[Run]:
    """`tracked_run`'s body in an offered run: the same name and tags, error tag on a raise."""
    if run.info.run_name != run_name:
        set_tags({"mlflow.runName": run_name})
    if tags:
        set_tags(redact(dict(tags)))
    try:
        yield run
    except BaseException as exc:
        with contextlib.suppress(Exception):
            set_tags({"viralab.error": redact_text(f"{type(exc).__name__}: {exc}")[:500]})
        raise


#: The active run a caller opened for the next `tracked_run` to log into (one-element list,
#: emptied once taken), or None.
_offered_run: ContextVar[list[str] | None] = ContextVar("viralab_offered_run", default=None)


@contextlib.contextmanager
def offer_active_run() -> Iterator[str]:
    """Offer the active run to the first top-level `tracked_run` of the body; yields its id.

    Why: a sweep opens each trial's run itself (it needs the run's id before training, and
    sets the trial's state when training returns). Handing the open run over, rather than
    re-opening it by id through `MLFLOW_RUN_ID`, saves MLflow's reads and status update of a
    resumed run, and the trial's final tags join its queued writes. The caller ends the run.
    """
    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("offer_active_run() needs an active MLflow run")
    token = _offered_run.set([run.info.run_id])
    try:
        yield run.info.run_id
    finally:
        _offered_run.reset(token)


def git_commit(path: Path | None = None) -> str | None:
    """The commit of the working tree (with `-dirty` if it has changes), or None outside git.

    Asked once per folder and process (two `git` processes each time otherwise: a sweep asked
    them for every trial); a process that commits mid-way is not a case worth re-asking for.
    """
    return _git_commit((path or Path.cwd()).resolve())


@functools.cache
def _git_commit(cwd: Path) -> str | None:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


#: Params per `log_params` call: under MLflow's 100 per request. With async logging the queue
#: merges queued calls into one request until a merge would reach 100 params, so chunks of 100
#: each took a request of their own, and the run's queued tags a third one.
PARAMS_PER_CALL = 99


def log_config(cfg: DictConfig, extra_tags: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Log the resolved, redacted config as `config.yaml` and as flattened params; the tags
    pass through the same rules (`viralab.redaction`).

    Returns the safe container so callers can reuse it (e.g. child runs).
    """
    safe = to_safe_container(cfg)
    params = flatten_params(safe)
    # The params the run held when it was opened (an `mlflow run` launch logs its entry
    # point's before): the active run already carries them, so the store is not asked again.
    existing = mlflow.active_run().data.params
    fresh = {k: v for k, v in params.items() if k not in existing}
    items = list(fresh.items())
    for i in range(0, len(items), PARAMS_PER_CALL):
        log_params(dict(items[i : i + PARAMS_PER_CALL]))
    with artifact_batch() as artifacts:  # the run's artifact location is known: no store read
        artifacts.text(config_yaml(safe), "config.yaml")
    tags: dict[str, Any] = {}
    commit = git_commit()
    if commit:
        tags["viralab.git_commit"] = commit
        if "mlflow.source.git.commit" not in mlflow.active_run().data.tags:
            tags["mlflow.source.git.commit"] = commit.removesuffix("-dirty")
    if extra_tags:
        tags.update(extra_tags)
    set_tags(redact({k: str(v) for k, v in tags.items()}))
    return safe
