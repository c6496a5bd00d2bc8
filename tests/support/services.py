"""Real services for integration tests: a throwaway PostgreSQL cluster on loopback.

The standard says integration tests talk to real services, fail loudly in CI when one is
missing, and may skip only outside CI (saying why). `require_service` is that rule in one place.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

PG_PASSWORD = "viralab-test-secret"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_service(reason: str) -> None:
    """Fail in CI, skip elsewhere: a missing service must never pass silently in CI."""
    if in_ci():
        pytest.fail(f"required service unavailable in CI: {reason}", pytrace=False)
    pytest.skip(f"service unavailable outside CI: {reason}")


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        with contextlib.closing(socket.socket()) as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f}s")


def _pg_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for c in candidates:
        if Path(c, "initdb").exists():
            return Path(c)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@dataclass
class PostgresServer:
    """A running throwaway cluster; `url(db)` builds a psycopg2 URL with the test password."""

    host: str
    port: int
    user: str
    password: str
    datadir: Path
    bindir: Path
    as_postgres_user: bool

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        import psycopg2

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        conn = psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname="postgres",
        )
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return name

    def drop_database(self, name: str) -> None:
        import psycopg2

        conn = psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname="postgres",
        )
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args]
        if self.as_postgres_user:
            cmd = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(_q(c) for c in cmd)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.datadir}"
        res = self._pg_ctl("-o", opts, "-l", str(self.datadir / "server.log"), "-w", "start")
        if res.returncode != 0:
            log = (
                (self.datadir / "server.log").read_text()
                if (self.datadir / "server.log").exists()
                else ""
            )
            raise RuntimeError(f"pg_ctl start failed: {res.stderr}\n{log[-2000:]}")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-m", mode, "-w", "stop")

    def remove(self) -> None:
        """Stop for good and delete the cluster's files."""
        self.stop("immediate")
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def _q(s: str) -> str:
    import shlex

    return shlex.quote(s)


def start_postgres() -> PostgresServer:
    """initdb + start a cluster in a temp dir, as the `postgres` user when we are root."""
    bindir = _pg_bindir()
    if bindir is None:
        raise FileNotFoundError(
            "PostgreSQL server binaries (initdb) not found; install the Debian package `postgresql`"
        )
    as_pg = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="viralab-pg-"))
    datadir = base / "data"
    datadir.mkdir()
    pwfile = base / "pw"
    pwfile.write_text(PG_PASSWORD + "\n")
    if as_pg:
        shutil.chown(base, "postgres", "postgres")
        shutil.chown(datadir, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
    initdb = [
        str(bindir / "initdb"),
        "-D",
        str(datadir),
        "-U",
        "postgres",
        "--pwfile",
        str(pwfile),
        "--auth-host=scram-sha-256",
        "--auth-local=trust",
        "-E",
        "UTF8",
        "--no-sync",
    ]
    cmd = (
        ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(_q(c) for c in initdb)]
        if as_pg
        else initdb
    )
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if res.returncode != 0:
        raise RuntimeError(f"initdb failed: {res.stderr}")
    with open(datadir / "postgresql.conf", "a") as f:
        f.write(
            "\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            "max_connections = 200\n"
        )
    server = PostgresServer(
        "127.0.0.1", free_port(), "postgres", PG_PASSWORD, datadir, bindir, as_pg
    )
    server.start()
    return server


# --- S3 (moto in server mode) and a real `mlflow server` -----------------------------------

S3_ACCESS_KEY = "viralab-test-access"
S3_SECRET_KEY = "viralab-test-secret-key"


def _venv_bin(name: str) -> str:
    import sys

    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else (shutil.which(name) or name)


@dataclass
class ManagedProcess:
    """A server subprocess we started, with its log file for diagnosis."""

    proc: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _spawn(
    cmd: list[str], port: int, env: dict[str, str], name: str, timeout: float = 90.0
) -> ManagedProcess:
    log_path = Path(tempfile.mkdtemp(prefix=f"viralab-{name}-")) / f"{name}.log"
    log_file = open(log_path, "w")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, start_new_session=True
    )
    managed = ManagedProcess(proc, port, log_path)
    try:
        wait_for_port(port, timeout=timeout, proc=proc)
    except (TimeoutError, RuntimeError) as exc:
        managed.stop()
        raise RuntimeError(f"{name} did not start: {exc}\n{managed.log_tail()}") from None
    return managed


def s3_env(endpoint: str) -> dict[str, str]:
    """What boto3 (and MLflow's S3 artifact repository) needs to reach the test endpoint."""
    return {
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def start_s3(bucket: str = "mlflow-artifacts") -> ManagedProcess:
    """moto's S3 in server mode on a free loopback port, with `bucket` created over HTTP."""
    import boto3

    port = free_port()
    env = {**os.environ, **s3_env(f"http://127.0.0.1:{port}")}
    managed = _spawn(
        [_venv_bin("moto_server"), "-H", "127.0.0.1", "-p", str(port)], port, env, "moto"
    )
    s3 = boto3.client(
        "s3",
        endpoint_url=managed.url,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=bucket)
    return managed


def start_mlflow_server(
    backend_store_uri: str,
    *,
    artifacts_destination: str,
    extra_env: dict[str, str] | None = None,
    app_name: str | None = None,
    server_args: list[str] | None = None,
) -> ManagedProcess:
    """`mlflow server` on loopback, proxying artifacts (`--serve-artifacts`); ``server_args``
    are added to its command line (e.g. `--gunicorn-opts ...`)."""
    port = free_port()
    cmd = [
        _venv_bin("mlflow"),
        "server",
        "--backend-store-uri",
        backend_store_uri,
        "--artifacts-destination",
        artifacts_destination,
        "--serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    if app_name:
        cmd += ["--app-name", app_name]
    cmd += server_args or []
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", **(extra_env or {})}
    env.pop("MLFLOW_TRACKING_URI", None)
    return _spawn(cmd, port, env, "mlflow-server", timeout=180)


def start_model_server(model_uri: str, tracking_uri: str) -> ManagedProcess:
    """`mlflow models serve` for a registered model, in this environment (`--env-manager
    local`, whose `python` must be this venv's: put it first on PATH)."""
    import sys

    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
    }
    cmd = [
        _venv_bin("mlflow"),
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    return _spawn(cmd, port, env, "model-server", timeout=180)


def copy_sqlite(source: Path | str, target: Path | str) -> None:
    """Copy a SQLite database as one consistent file. Our stores run in WAL mode
    (`viralab.tracking.tune_sqlite`): recent commits live in `<db>-wal` until a checkpoint, so a
    plain file copy of the main file can miss them (an MLflow store then reads as an older
    schema). SQLite's backup API copies the database as its connections see it."""
    import sqlite3

    with (
        contextlib.closing(sqlite3.connect(str(source))) as src,
        contextlib.closing(sqlite3.connect(str(target))) as dst,
    ):
        src.backup(dst)
