"""Fail fast when the tracking server or a database is unreachable, with one line.

MLflow's client retries a failed request 7 times with exponential backoff and waits up to
120 s for each answer, and its SQL store retries engine creation 15 times: right for a
training run uploading artifacts for minutes, wrong for an admin command (`viralab predict`
took 4 min 8 s to fail against a dead server). `cli_limits` gives every `viralab` command
short limits while it runs (values the user exported win), and turns "cannot reach the
service" into `error: ...` and exit 2. Training keeps MLflow's defaults; its entry point uses
`unreachable_message` to end with one line instead of a traceback.

Worst case for a command against a host that drops packets: 2 attempts x 5 s + backoff,
about 12 s; a refused connection or unknown host fails at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import typer

from viralab.redaction import redact_text

#: What `viralab` commands run with, unless the variable is already set.
CLI_LIMITS: Mapping[str, str] = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    # libpq (psycopg2: our engines, MLflow's SQL store, Optuna's storage) honours this
    "PGCONNECT_TIMEOUT": "5",
}
#: Engine-creation attempts of MLflow's SQL store in a command (MLflow: 15, ~55 min).
CLI_SQL_STORE_ATTEMPTS = 1

_CONNECT_WORDS = (
    "connection refused",
    "failed to establish a new connection",
    "max retries exceeded",
    "name or service not known",
    "nodename nor servname",
    "temporary failure in name resolution",
    "could not connect to server",
    "connection to server",
    "timeout expired",
    "timed out",
    "connection reset",
    "connection aborted",
    "remotedisconnected",
    "server closed the connection",
    "no route to host",
    "network is unreachable",
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )


def _first_line(text: str, limit: int = 240) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:limit]


def _redact(text: str) -> str:
    return redact_text(text)


def unreachable_message(exc: BaseException) -> str | None:
    """One line naming the unreachable service when `exc` (or its cause) says so, else None.

    Recognises requests/urllib3 connection errors and timeouts (MLflow wraps them in an
    `MlflowException` whose context is the original), SQLAlchemy/psycopg2 connection
    failures, and builtin `ConnectionError`/`TimeoutError`.
    """
    import requests
    import sqlalchemy.exc

    chain = list(_chain(exc))
    for err in chain:
        text = str(err)
        lowered = text.lower()
        if isinstance(err, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
            url = getattr(getattr(err, "request", None), "url", None) or ""
            where = _tracking_where(url)
            return _redact(f"tracking server unreachable{where}: {_reason(lowered)}")
        if isinstance(err, requests.exceptions.RetryError):
            return _redact("tracking server failing: server errors on every retry")
        if isinstance(err, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError) and any(
            word in lowered for word in _CONNECT_WORDS
        ):
            orig = getattr(err, "orig", None)
            return _redact(f"database unreachable: {_first_line(str(orig or text))}")
        if type(err).__name__ == "OperationalError" and "could not connect" in lowered:
            return _redact(f"database unreachable: {_first_line(text)}")  # psycopg2 itself
    for err in chain:
        lowered = str(err).lower()
        if isinstance(err, ConnectionError | TimeoutError):
            return _redact(f"service unreachable: {_first_line(str(err)) or type(err).__name__}")
        if "api request to" in lowered and any(word in lowered for word in _CONNECT_WORDS):
            return _redact(f"tracking server unreachable: {_first_line(str(err))}")
    return None


def _tracking_where(url: str) -> str:
    from urllib.parse import urlsplit

    if not url:
        return ""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f" ({parts.scheme}://{host}{port})"


def _reason(lowered: str) -> str:
    for word, reason in (
        ("connection refused", "connection refused"),
        ("name or service not known", "unknown host"),
        ("temporary failure in name resolution", "unknown host"),
        ("timed out", "timed out"),
        ("too many", "server errors"),
    ):
        if word in lowered:
            return reason
    return "no answer"


@contextmanager
def cli_limits(environ: dict[str, str] | None = None) -> Iterator[None]:
    """Short retries/timeouts while one command runs; unreachable services -> one line, exit 2.

    Registered on the root click context (`ctx.with_resource`), whose exit stack sees the
    command's exception (click >= 8.2), so every sub-command is covered without touching it.
    """
    env = os.environ if environ is None else environ
    added = [name for name in CLI_LIMITS if name not in env]
    for name in added:
        env[name] = CLI_LIMITS[name]
    sql_utils, attempts = _limit_sql_store_retries()
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise  # the command already said what went wrong
    except Exception as exc:
        message = unreachable_message(exc)
        if message is None:
            raise
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2) from None
    finally:
        for name in added:
            env.pop(name, None)
        if sql_utils is not None:
            sql_utils.MAX_RETRY_COUNT = attempts


def cli_limits_callback(ctx: typer.Context) -> None:
    """The `viralab` root callback: every sub-command runs inside `cli_limits`."""
    ctx.with_resource(cli_limits())


def _limit_sql_store_retries() -> tuple[object | None, int]:
    """MLflow's SQL store retries engine creation `MAX_RETRY_COUNT` (15) times with doubling
    sleeps; no setting exists, so the module constant is lowered for the command."""
    try:
        from mlflow.store.db import utils as sql_utils
    except ImportError:  # pragma: no cover
        return None, 0
    attempts = getattr(sql_utils, "MAX_RETRY_COUNT", None)
    if not isinstance(attempts, int):
        return None, 0
    sql_utils.MAX_RETRY_COUNT = min(attempts, CLI_SQL_STORE_ATTEMPTS)
    return sql_utils, attempts
