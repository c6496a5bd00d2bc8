"""Failure handling for every entry point in one place (STYLE: `task_wrapper`).

A `ViralabError` is the user's problem, worded for them: print one line, exit 2. Any other
exception is a bug and keeps its traceback, redacted (`install_guards` puts the hook in place).
Runs opened through `tracking.tracked_run` are already marked FAILED by then.

Secrets come from the environment, never from the command line: `refuse_secret_overrides`
turns a credentialed override away before Hydra (which would write it to its output folder)
or MLflow sees it, and under `mlflow run` purges the run MLflow Projects already logged it in.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeVar

from viralab.errors import ConfigError, ViralabError
from viralab.redaction import (
    format_exception,
    install_log_redaction,
    is_secret_key,
    redact_text,
    url_passwords,
)
from viralab.service_limits import unreachable_message
from viralab.settings import composition_error
from viralab.tracking import resolve_tracking_uri

F = TypeVar("F", bound=Callable[..., Any])

#: Where each secret-bearing setting comes from instead of an override.
SECRET_ENV = {
    "data.url": "VIRALAB_DATABASE_URL",
    "tracking.uri": "MLFLOW_TRACKING_URI (with MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD)",
    "sweep.storage": "VIRALAB_OPTUNA_STORAGE",
    "database_url": "VIRALAB_DATABASE_URL",
}
DEFAULT_SECRET_ENV = "an environment variable (README: Secrets)"


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    if isinstance(exc, ViralabError):
        print(f"error: {redact_text(str(exc))}", file=sys.stderr)
        return
    if isinstance(exc, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    sys.stderr.write(format_exception(exc.with_traceback(tb)))


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None:
        name = args.thread.name if args.thread else "?"
        sys.stderr.write(f"Exception in thread {name}:\n{format_exception(args.exc_value)}")


def install_guards() -> None:
    """Redact every log record, warning and uncaught traceback of this process. Idempotent;
    every entry point calls it first (`user_errors_exit` does)."""
    install_log_redaction()
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
    # Hydra prints a task's traceback itself, bypassing the hook; let it raise to the hook.
    os.environ.setdefault("HYDRA_FULL_ERROR", "1")


def user_errors_exit(func: F) -> F:
    """One error style for every command: a `ViralabError` is one redacted `error: ...` line
    on stderr and exit 2, or the error's own `exit_code` where its kind has one a script must
    tell apart (a refused promotion: 3; a held retrain lock: 75)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        install_guards()
        try:
            return func(*args, **kwargs)
        except ViralabError as exc:
            logging.getLogger("viralab").debug("user error", exc_info=True)
            print(f"error: {redact_text(str(exc))}", file=sys.stderr)
            sys.exit(getattr(exc, "exit_code", 2))
        except Exception as exc:  # a dead tracking server / database: one line, not a bug
            message = unreachable_message(exc)
            if message is None:
                raise
            logging.getLogger("viralab").debug("service unreachable", exc_info=True)
            print(f"error: {message}", file=sys.stderr)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def hydra_errors_as_config_errors(run: Callable[[], Any]) -> Any:
    """Run a `@hydra.main` function; Hydra's own errors (a bad override, a missing group)
    become one-line `ConfigError`s now that `HYDRA_FULL_ERROR` lets them through."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        return run()
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(redact_text(str(composition_error(exc)))) from None


def secret_override_reason(override: str) -> str | None:
    """Why a Hydra override may not carry its value, or None when it may."""
    key, sep, value = override.partition("=")
    key = key.lstrip("+~")
    if not sep:
        return None
    env = SECRET_ENV.get(key, DEFAULT_SECRET_ENV)
    if is_secret_key(key) and value.strip() not in ("", "null"):
        return f"{key} is a secret; set it through {env}"
    if url_passwords(value.strip().strip("'\"")):
        return f"{key} carries a password in its URL; give the URL through {env}"
    return None


def refuse_secret_overrides(overrides: Iterable[str]) -> None:
    """Refuse credentialed overrides (one line naming the variable to use instead).

    Under `mlflow run`, MLflow Projects logged the raw `-P` values as params of the run named by
    `MLFLOW_RUN_ID` before this process started: that run is deleted and purged (metadata and
    artifacts; a SQLite store is vacuumed so the bytes go too) and the message says so.
    """
    for override in overrides:
        reason = secret_override_reason(override)
        if reason is None:
            continue
        run_id = os.environ.get("MLFLOW_RUN_ID")
        if run_id:
            reason += "; " + purge_run(run_id)
        raise ConfigError(f"refused override: {reason}")


def purge_run(run_id: str) -> str:
    """Delete and garbage-collect one run (what `mlflow gc --run-ids` does, for this run only:
    `mlflow gc` would also purge every other deleted experiment and model). Returns a line for
    the user."""
    import mlflow
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.tracking._tracking_service.utils import _get_store

    uri = resolve_tracking_uri()
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    try:
        run = client.get_run(run_id)
        client.delete_run(run_id)
        store = _get_store(uri)
        if not hasattr(store, "_hard_delete_run"):
            return (
                f"run {run_id} (logged by `mlflow run` with the raw value) was deleted; purge it "
                f"on the server: mlflow gc --backend-store-uri <store> --run-ids {run_id}"
            )
        try:
            get_artifact_repository(run.info.artifact_uri).delete_artifacts()
        except Exception as exc:  # nothing logged yet is the usual case
            logging.getLogger(__name__).debug("no artifacts to delete: %s", exc)
        store._hard_delete_run(run_id)
        if uri.startswith("sqlite:"):
            _vacuum_sqlite(uri)
    except Exception as exc:
        return (
            f"run {run_id} still holds the value and could not be purged "
            f"({redact_text(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}): "
            f"run `mlflow gc --run-ids {run_id}` against the store"
        )
    finally:
        os.environ.pop("MLFLOW_RUN_ID", None)
    return f"run {run_id} (logged by `mlflow run` with the raw value) was deleted and purged"


def _vacuum_sqlite(uri: str) -> None:
    """Deleted rows stay in SQLite's free pages until VACUUM rewrites the file; in WAL mode
    (`tracking.tune_sqlite`) the old pages also sit in the `-wal` file until a checkpoint
    truncates it."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(uri)
    try:
        with engine.connect() as conn:
            auto = conn.execution_options(isolation_level="AUTOCOMMIT")
            auto.exec_driver_sql("VACUUM")
            auto.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()
