"""The registered preference model behind a real `mlflow models serve` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import requests

from tests.support.services import free_port, wait_for_port
from viralab.config import compose
from viralab.data.sample import generate_ratings
from viralab.serve import predict as serving
from viralab.train import train

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_rest_round_trip_matches_the_python_function(mlflow_isolation: str, tmp_path: Path) -> None:
    serving.clear_caches()
    train(compose(["data.n_videos=220"]))
    mlflow.MlflowClient().set_registered_model_alias("preference", "champion", "1")
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_isolation,
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
    }
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("mlflow")),
            "models",
            "serve",
            "-m",
            "models:/preference@champion",
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        try:
            wait_for_port(port, timeout=180, proc=proc)
        except (TimeoutError, RuntimeError) as exc:
            pytest.fail(
                f"mlflow models serve did not start: {exc}\n"
                f"{(tmp_path / 'serve.log').read_text()[-3000:]}"
            )
        url = f"http://127.0.0.1:{port}/invocations"
        docs = [r["video"]["visual_analysis"] for r in generate_ratings(n_videos=2, seed=3)[:2]]
        payload = {
            "dataframe_split": {
                "columns": ["visual_analysis"],
                "data": [[json.dumps(d)] for d in docs],
            }
        }
        res = requests.post(url, json=payload, timeout=120)
        assert res.status_code == 200, res.text
        predictions = res.json()["predictions"]
        assert len(predictions) == 2
        local = serving.predict_virality_score(docs[0])
        remote = predictions[0]
        assert remote["score"] == pytest.approx(local["score"])
        assert remote["confidence"] == pytest.approx(local["confidence"])
        remote_factors = json.loads(remote["top_factors"])
        assert [f["feature"] for f in remote_factors] == [
            f["feature"] for f in local["top_factors"]
        ]
        assert [f["contribution"] for f in remote_factors] == pytest.approx(
            [f["contribution"] for f in local["top_factors"]]
        )

        bad = requests.post(
            url, data="this is not json", headers={"Content-Type": "application/json"}, timeout=60
        )
        assert bad.status_code == 400
        assert "message" in bad.json()
        wrong = requests.post(
            url, json={"dataframe_split": {"columns": ["nope"], "data": [[1]]}}, timeout=60
        )
        assert wrong.status_code == 400, wrong.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
