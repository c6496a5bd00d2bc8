"""Inference from the registry: exact linear factors, confidence, caching, odd shapes, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from viralab.cli import app
from viralab.config import compose
from viralab.data.sample import generate_ratings
from viralab.serve import predict as serving
from viralab.serve.explain import Explainer, top_factors
from viralab.train import train

pytestmark = pytest.mark.slow


@pytest.fixture
def champion() -> str:
    """A ridge model trained on a small sample, registered and promoted to champion."""
    serving.clear_caches()
    train(compose(["data.n_videos=220"]))
    mlflow.MlflowClient().set_registered_model_alias("preference", "champion", "1")
    yield "1"
    serving.clear_caches()


def _docs(n: int, seed: int = 77) -> list[dict]:
    return [r["video"]["visual_analysis"] for r in generate_ratings(n_videos=n, seed=seed)[:n]]


def test_linear_contributions_are_exact(champion: str) -> None:
    model, _ = serving.load_model("preference")
    pipeline = model.unwrap_python_model().pipeline
    frame = pd.DataFrame({"visual_analysis": [json.dumps(d) for d in _docs(5)]})
    explainer = Explainer(pipeline)
    assert explainer.method == "linear"
    contributions = explainer.explain(pipeline[:-1].transform(frame))
    raw = pipeline.predict(frame)
    np.testing.assert_allclose(
        contributions.values.sum(axis=1) + contributions.base, raw, rtol=1e-9, atol=1e-12
    )


def test_top_factors_rule() -> None:
    from viralab.serve.explain import Contributions

    c = Contributions(
        np.array(list("abcdef"), dtype=object),
        np.array([[0.01, -0.5, 0.03, 0.2, -0.021, 0.0]]),
        np.zeros(1),
        "linear",
    )
    assert [f["feature"] for f in top_factors(c, 0)] == ["b", "d", "c", "e"]
    assert len(top_factors(c, 0, limit=2)) == 2


def test_predict_virality_score_structure_and_confidence(champion: str) -> None:
    doc = _docs(1)[0]
    result = serving.predict_virality_score(doc)
    assert set(result) == {"score", "confidence", "top_factors"}
    assert 0 <= result["score"] <= 10
    r2 = mlflow.get_run(
        mlflow.MlflowClient().get_model_version("preference", "1").run_id
    ).data.metrics["r2"]
    assert result["confidence"] == pytest.approx(r2, rel=0.15)  # full v3 doc: coverage ~1
    factors = result["top_factors"]
    assert 0 < len(factors) <= 10
    assert all(abs(f["contribution"]) > 0.02 for f in factors)
    magnitudes = [abs(f["contribution"]) for f in factors]
    assert magnitudes == sorted(magnitudes, reverse=True)


def test_odd_shaped_documents_score_with_lower_confidence(champion: str) -> None:
    full = serving.predict_virality_score(_docs(1)[0])
    odd_docs = [
        {},
        {"script": [], "hook": "not an object", "audio": {"soundEffects": [1, "x", None]}},
        {
            "script": {"replicability": {"score": "7"}},
            "trends": {"memeDependent": None},
            "unknown": {"deep": {"deeper": 1}},
            "production": {"shotComplexity": float("nan")},
        },
        [1, 2, 3],
        "not json at all",
    ]
    for odd in odd_docs:
        result = serving.predict_virality_score(odd)
        assert 0 <= result["score"] <= 10
        assert result["confidence"] < full["confidence"]


def test_alias_move_is_picked_up_after_the_ttl(champion: str) -> None:
    train(compose(["data.n_videos=220", "model.alpha=50"]))
    first = serving.resolve("preference", resolve_ttl=60)
    assert str(first.version) == "1"
    mlflow.MlflowClient().set_registered_model_alias("preference", "champion", "2")
    assert str(serving.resolve("preference", resolve_ttl=60).version) == "1"  # cached
    assert str(serving.resolve("preference", resolve_ttl=0).version) == "2"
    model_a = serving.load_version("preference", "2")
    assert serving.load_version("preference", "2") is model_a  # one load per version


def test_unknown_model_or_alias_is_a_clear_error(champion: str) -> None:
    from viralab.registry.client import RegistryError

    with pytest.raises(RegistryError, match="nope"):
        serving.predict_virality_score({}, model_name="nope")
    with pytest.raises(RegistryError, match="unknown version"):
        serving.predict_virality_score({}, ref="ghost")


def test_cli_predict_table_json_jsonl_and_stdin(champion: str, tmp_path: Path) -> None:
    docs = _docs(3)
    (tmp_path / "one.json").write_text(json.dumps(docs[0]))
    (tmp_path / "many.jsonl").write_text("\n".join(json.dumps(d) for d in docs))
    runner = CliRunner()
    res = runner.invoke(app, ["predict", str(tmp_path / "one.json")])
    assert res.exit_code == 0, res.output
    assert "score" in res.output
    res = runner.invoke(app, ["predict", str(tmp_path / "many.jsonl"), "--json"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.strip().splitlines()]
    assert len(lines) == 3 and all(0 <= x["score"] <= 10 for x in lines)
    res = runner.invoke(app, ["predict", "-", "--json"], input=json.dumps(docs[:2]))
    assert res.exit_code == 0 and len(res.stdout.strip().splitlines()) == 2


def test_cli_predict_bad_input(champion: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"hook": ')
    runner = CliRunner()
    res = runner.invoke(app, ["predict", str(bad)])
    assert res.exit_code == 2
    assert "bad.json: invalid JSON at line 1" in res.output
    res = runner.invoke(app, ["predict", str(tmp_path / "missing.json")])
    assert res.exit_code == 2 and "file not found" in res.output
    res = runner.invoke(app, ["predict", str(bad.with_name("x.json")), "--model", "nope"])
    assert res.exit_code == 2


def test_cli_predict_refuses_documents_over_the_limits(champion: str, tmp_path: Path) -> None:
    runner = CliRunner()
    big = tmp_path / "big.json"
    big.write_text(json.dumps({**_docs(1)[0], "transcript": "x" * 1_000_000}))
    res = runner.invoke(app, ["predict", str(big)])
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: document 0 is 1,0") and len(res.output.splitlines()) == 1
    assert "the limit is 1,000,000 (max_document_bytes)" in res.output
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 5000 + "]" * 5000)
    res = runner.invoke(app, ["predict", str(deep)])
    assert res.exit_code == 2 and "nests too deeply" in res.output
    assert len(res.output.strip().splitlines()) == 1
    # strict mode, per request: a list is refused instead of scored with confidence 0
    model, _ = serving.load_model("preference")
    frame = pd.DataFrame({"visual_analysis": ["[1, 2, 3]"]})
    assert model.predict(frame)["confidence"].iloc[0] == 0
    with pytest.raises(Exception, match="not a JSON object"):
        model.predict(frame, params={"strict": "true"})
    assert model.predict(frame, params={"top_factors": False})["top_factors"].iloc[0] == "[]"
