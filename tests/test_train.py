"""The training entry point end to end on the embedded default (small sample)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from viralab.config import compose
from viralab.train import train

pytestmark = pytest.mark.slow

PROJECT = Path(__file__).resolve().parents[1]


def test_two_runs_give_two_finished_runs_and_two_versions(monkeypatch) -> None:
    monkeypatch.setenv("VIRALAB_DATABASE_URL", "postgresql://u:never-log-me@127.0.0.1:1/x")
    cfg = compose(["data.n_videos=300", "task.test_size=0.25"])
    first = train(cfg)
    second = train(cfg)
    assert first["mae"] == pytest.approx(second["mae"])  # seeded: repeatable
    assert first["mae"] < first["baseline_mae"]

    client = mlflow.MlflowClient()
    versions = sorted(int(v.version) for v in client.search_model_versions("name='preference'"))
    assert versions == [1, 2]
    exp = mlflow.get_experiment_by_name("preference")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 2
    for run in runs:
        assert run.info.status == "FINISHED"
        assert run.data.params["model.name"] == "ridge"
        assert run.data.params["model.alpha"] == "1.0"
        assert {"mae", "rmse", "r2"} <= set(run.data.metrics)
        assert run.data.tags.get("viralab.git_commit")
        assert run.data.tags["viralab.family"] == "preference"
        inputs = run.inputs.dataset_inputs
        assert inputs and inputs[0].dataset.digest
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"config.yaml", "feature_weights.json"} <= artifacts
        config_text = mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/config.yaml")
        assert "model:" in config_text
        everything = json.dumps([run.data.params, run.data.tags]) + config_text
        assert "never-log-me" not in everything


def test_registered_model_scores_raw_documents_in_a_fresh_process(tmp_path: Path) -> None:
    train(compose(["data.n_videos=200"]))
    from viralab.data.sample import generate_ratings

    doc = generate_ratings(n_videos=1, seed=99)[0]["video"]["visual_analysis"]
    (tmp_path / "doc.json").write_text(json.dumps(doc))
    code = (
        "import json, mlflow, pandas as pd, sys;"
        "m = mlflow.pyfunc.load_model('models:/preference/1');"
        "doc = open(sys.argv[1]).read();"
        "out = m.predict(pd.DataFrame({'visual_analysis': [doc]}));"
        "print(json.dumps(out.to_dict(orient='records')))"
    )
    res = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "doc.json")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    row = json.loads(res.stdout.strip().splitlines()[-1])[0]
    assert 0.0 <= row["score"] <= 10.0
    assert row["score"] == pytest.approx(row["prediction"] * 10)


def _run_cli(*args: str, cwd: Path = PROJECT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "viralab.train", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_unknown_model_is_one_clear_line() -> None:
    res = _run_cli("model=nope")
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1
    assert "unknown model 'nope'" in res.stderr and "ridge" in res.stderr
    assert "Traceback" not in res.stderr


def test_missing_data_file_fails_cleanly_and_leaves_no_running_run(tmp_path: Path) -> None:
    res = _run_cli("data=files", f"data.path={tmp_path}/missing.json")
    assert res.returncode == 2
    assert "data file not found" in res.stderr and "Traceback" not in res.stderr
    client = mlflow.MlflowClient()
    for exp in client.search_experiments():
        for run in client.search_runs([exp.experiment_id]):
            assert run.info.status != "RUNNING"


def test_empty_dataset_after_filtering_is_a_clear_error(tmp_path: Path) -> None:
    records = [
        {
            "id": "r1",
            "video_id": "v1",
            "overall_score": 0.5,
            "rater_type": "guest",
            "video": {"visual_analysis": {"feature_count": 150, "comedyStyle": {}}},
        }
    ]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(records))
    res = _run_cli("data=files", f"data.path={path}")
    assert res.returncode == 2
    assert "no usable ratings after extraction" in res.stderr
    assert "1 not_owner" in res.stderr
