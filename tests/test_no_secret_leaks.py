"""Every entry point, run as a user runs it, with a password holding `/ @ : %`: the password
is nowhere afterwards — not in any param, tag, artifact, the store's bytes, the Hydra folder,
a log line, stdout or stderr.

The URL comes through the environment (as intended) and once as an override (refused; under
`mlflow run` the run MLflow Projects logged it in is purged).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import mlflow
import pytest

from tests.support.services import PostgresServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROJECT = Path(__file__).resolve().parents[1]
PASSWORD = "Zq/9@x:y%7!k"
ROLE = "leakcheck"
FORMS = (PASSWORD, quote(PASSWORD, safe=""), quote(PASSWORD), "Zq/9@x")  # and a piece of it


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _role_databases(server: PostgresServer) -> tuple[str, str]:
    """A role with the awkward password owning an app and an Optuna database."""
    import psycopg2

    conn = psycopg2.connect(
        host=server.host, port=server.port, user=server.user, password=server.password,
        dbname="postgres",
    )  # fmt: skip
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"DROP ROLE IF EXISTS {ROLE}")  # a rerun in the same session
        cur.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD %s", (PASSWORD,))
    conn.close()
    app, optuna = server.create_database(), server.create_database()
    conn = psycopg2.connect(
        host=server.host, port=server.port, user=server.user, password=server.password,
        dbname="postgres",
    )  # fmt: skip
    conn.autocommit = True
    with conn.cursor() as cur:
        for db in (app, optuna):
            cur.execute(f'ALTER DATABASE "{db}" OWNER TO {ROLE}')
    conn.close()
    encoded = quote(PASSWORD, safe="")
    base = f"postgresql://{ROLE}:{encoded}@{server.host}:{server.port}"
    return f"{base}/{app}", f"{base}/{optuna}"


def test_every_entry_point_keeps_the_password_out(
    postgres_server: PostgresServer, tmp_path: Path, mlflow_isolation: str
) -> None:
    app_url, optuna_url = _role_databases(postgres_server)
    work = tmp_path / "work"
    work.mkdir()
    bindir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
        "VIRALAB_CONFIG_DIR": str(PROJECT / "src" / "viralab" / "conf"),
        "MLFLOW_TRACKING_URI": mlflow_isolation,
        "VIRALAB_DATABASE_URL": app_url,
        "VIRALAB_OPTUNA_STORAGE": optuna_url,
        "MLFLOW_TRACKING_PASSWORD": PASSWORD,  # ignored by SQLite; masked by value
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
    }
    py, viralab, mlflow_cli = sys.executable, f"{bindir}/viralab", f"{bindir}/mlflow"
    dead_server = f"http://{ROLE}:{quote(PASSWORD, safe='')}@127.0.0.1:{_free_port()}"
    raw_url = f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{_free_port()}/v"
    mlflow_run_args = ["--env-manager", "local", "--experiment-name", "leak",
                       "-P", f"overrides=data.url={app_url} seed=3"]  # fmt: skip
    dead = {"MLFLOW_TRACKING_URI": dead_server}
    cases: list[tuple[list[str], dict[str, str], set[int]]] = [
        ([viralab, "data", "load", "--sample"], {}, {0}),
        ([py, "-m", "viralab.train", "data=postgres", "log_plots=false"], {}, {0}),
        ([py, "-m", "viralab.sweep", "sweep=ridge", "n_trials=1", "data.n_videos=200"], {}, {0}),
        ([py, "-m", "viralab.registry.sync"], {}, {0}),
        ([viralab, "data", "export", "--out-dir", "exports"], {}, {0}),
        ([viralab, "data", "load", "--sample", "--database-url", raw_url], {}, {2}),
        ([py, "-m", "viralab.train", "data=postgres", f"data.url={app_url}"], {}, {2}),
        ([py, "-m", "viralab.sweep", f"sweep.storage={optuna_url}"], {}, {2}),
        ([mlflow_cli, "run", str(PROJECT), *mlflow_run_args], {}, {1}),
        ([py, "-m", "viralab.train", "log_plots=false"], dead, {1, 2}),
    ]
    transcript: list[str] = []
    for argv, extra, codes in cases:
        res = subprocess.run(
            argv, capture_output=True, text=True, timeout=600, env={**env, **extra}, cwd=work
        )
        shown = " ".join(argv[1:3])  # not the arguments: they hold the refused URLs
        transcript.append(f"{res.stdout}\n{res.stderr}")
        assert res.returncode in codes, f"{shown}: rc {res.returncode}\n{res.stderr[-3000:]}"

    output = "\n".join(transcript)
    assert "refused override: data.url carries a password" in output
    assert "was deleted and purged" in output  # the mlflow run case
    # MLflow's launcher (not our process) echoes the command line the user typed, once, to
    # the console: the only copy, and not ours to redact (README: Secrets).
    echo = "mlflow.projects.backend.local: === Running command"
    printed = [
        line for line in output.splitlines() if any(f in line for f in FORMS) and echo not in line
    ]
    assert printed == []

    # Every file the runs left: the SQLite store's bytes, artifacts, exports, Hydra's folder.
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".yaml" and p.name == "config.yaml" for p in files)
    assert (work / "outputs").is_dir()  # Hydra's run folder exists: nothing secret in it
    assert not list((work / "outputs").rglob(".hydra"))
    stored = [str(p) for p in files if any(f.encode() in p.read_bytes() for f in FORMS)]
    assert stored == []

    client = mlflow.MlflowClient(mlflow_isolation)
    runs = [
        r
        for e in client.search_experiments(view_type=3)
        for r in client.search_runs([e.experiment_id], run_view_type=3)
    ]
    assert len(runs) >= 3  # the training run, the sweep parent and its trial
    trained = [r for r in runs if "data.url" in r.data.params]
    assert trained and all(":***@" in r.data.params["data.url"] for r in trained)
    for run in runs:
        text = f"{run.data.params} {run.data.tags}"
        assert not any(form in text for form in FORMS), run.info.run_id
