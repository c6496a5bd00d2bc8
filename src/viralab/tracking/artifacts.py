"""A run's artifacts written to a local folder and uploaded together (`artifact_batch`).

Why: each `mlflow.log_*` call of a file asked the store for the run and made an upload of
its own; a batch knows the run's artifact location and uploads its files at once (early, on
the background pool, for a held run whose writes go early).
"""

from __future__ import annotations

import contextlib
import functools
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import mlflow
import yaml

from viralab.tracking.held import _held, send_early
from viralab.tracking.writer import Call, background_pool


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


@dataclass(frozen=True)
class Upload(Call):
    """One file's upload, as the tracking writer process can make it (`writer.Call`)."""

    artifact_uri: str
    tracking_uri: str
    local_path: str
    artifact_path: str | None

    def __call__(self) -> None:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        repo = get_artifact_repository(self.artifact_uri, tracking_uri=self.tracking_uri)
        repo.log_artifact(self.local_path, self.artifact_path)


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
    tracking_uri = mlflow.get_tracking_uri()
    for path in batch.unsent():
        folder = path.parent.relative_to(batch.root).as_posix()
        upload = Upload(artifact_uri, tracking_uri, str(path), None if folder == "." else folder)
        send_early(run_id, upload, quiet=quiet)
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

    For a run whose writes are held and go early (`hold_writes`), the files go up in the
    background (`writer.submit`) as soon as the batch that wrote them ends (an inner one: the
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
