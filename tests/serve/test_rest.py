"""The registered preference model behind a real `mlflow models serve` process."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import requests

from tests.support.services import start_model_server
from viralab.config import compose
from viralab.data.sample import generate_ratings
from viralab.serve import predict as serving
from viralab.train import train

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_rest_round_trip_matches_the_python_function(mlflow_isolation: str, tmp_path: Path) -> None:
    serving.clear_caches()
    train(compose(["data.n_videos=220"]))
    mlflow.MlflowClient().set_registered_model_alias("preference", "champion", "1")
    try:
        server = start_model_server("models:/preference@champion", mlflow_isolation)
    except (RuntimeError, OSError) as exc:
        pytest.fail(f"mlflow models serve did not start: {exc}")
    try:
        url = f"{server.url}/invocations"
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
        assert list(remote) == ["prediction", "score", "confidence", "top_factors"]
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

        # bounded serving: too large, too deep, not an object in strict mode, bad params
        def invoke(doc_text: str, params: dict | None = None) -> requests.Response:
            body: dict = {"dataframe_split": {"columns": ["visual_analysis"], "data": [[doc_text]]}}
            if params is not None:
                body["params"] = params
            return requests.post(url, json=body, timeout=120)

        too_large = invoke(json.dumps({**docs[0], "transcript": "x" * 1_000_000}))
        assert too_large.status_code == 400, too_large.text
        assert "the limit is 1,000,000" in too_large.json()["message"]
        too_deep = invoke("[" * 5000 + "]" * 5000)
        assert too_deep.status_code == 400, too_deep.text
        assert "nests 5000 levels deep; the limit is 64" in too_deep.json()["message"]
        assert invoke("[1, 2]").status_code == 200  # scored, confidence 0
        refused = invoke("[1, 2]", {"strict": "true"})
        assert refused.status_code == 400 and "not a JSON object" in refused.json()["message"]
        assert invoke(json.dumps(docs[0]), {"top_factors": "maybe"}).status_code == 400
        no_factors = invoke(json.dumps(docs[0]), {"top_factors": False})
        assert no_factors.status_code == 200, no_factors.text
        assert no_factors.json()["predictions"][0]["top_factors"] == "[]"
    finally:
        server.stop()
