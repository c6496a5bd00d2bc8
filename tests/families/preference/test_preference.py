"""The preference path: configs, pipeline, evaluation, odd documents, and whole tracked runs."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from viralab.config import compose
from viralab.data.sample import generate_ratings
from viralab.errors import ConfigError, DataError
from viralab.families.preference.evaluate import feature_weights, selected_feature_names, verdicts
from viralab.families.preference.fit import build_estimator, build_pipeline, fit_preference
from viralab.families.preference.log import training_dataset
from viralab.families.preference.prepare import LABEL, records_frame
from viralab.features.tabular import ANALYSIS_COLUMN
from viralab.serve.preference_model import PreferenceModel
from viralab.train import train

MODELS = ["ridge", "random_forest", "gradient_boosting", "mlp"]
DIMENSIONS = ["hook", "pacing", "payoff", "originality", "rewatchable"]
FAST = ["data.n_videos=250", "task.cv_folds=0", "task.multi_output=false"]


def owner_records(n: int = 250) -> list[dict[str, Any]]:
    return [
        r
        for r in generate_ratings(n_videos=n, seed=42)
        if r["rater_type"] == "owner" and "comedyStyle" in r["video"]["visual_analysis"]
    ]


# --- config and pipeline --------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_every_model_config_composes_and_builds(model: str) -> None:
    cfg = compose([f"model={model}"])
    assert cfg.model.name == model
    assert cfg.task.family == "preference" and "select_k" in cfg.features
    estimator = build_estimator(cfg.model)
    if "random_state" in cfg.model:  # seeded from the top-level seed
        assert estimator.random_state == cfg.seed
    pipeline = build_pipeline(cfg)
    assert [name for name, _ in pipeline.steps] == ["features", "select", "model"]


def test_spec_hyperparameters_and_command_line_overrides() -> None:
    rf = build_estimator(compose(["model=random_forest"]).model)
    assert (rf.n_estimators, rf.max_depth, rf.min_samples_split, rf.min_samples_leaf) == (
        100,
        10,
        5,
        2,
    )
    assert build_estimator(compose(["model=ridge"]).model).alpha == 1.0
    assert build_estimator(compose(["model=mlp"]).model).early_stopping is True
    assert (
        build_estimator(
            compose(["model=random_forest", "model.n_estimators=50"]).model
        ).n_estimators
        == 50
    )
    assert build_estimator(compose(["model.alpha=0.3"]).model).alpha == 0.3


def test_selection_step_is_optional_and_configs_are_checked() -> None:
    off = build_pipeline(compose(["features.select_k=null"]))
    assert [name for name, _ in off.steps] == ["features", "model"]
    prune = build_pipeline(compose(["features.select_k=null", "features.min_abs_corr=0.1"]))
    assert prune.named_steps["select"].min_abs_corr == 0.1
    for bad in ["features.scaling=log", "features.missing=zero", "features.select_k=-1"]:
        with pytest.raises(ConfigError):
            build_pipeline(compose([bad]))
    with pytest.raises(ConfigError, match="ridge"):
        build_estimator(compose(["+model.bogus=1"]).model)


@pytest.mark.parametrize(
    ("mae", "r2", "expected"),
    [
        (0.149, 0.61, ("production_ready", "good", "production_ready")),
        (0.15, 0.6, ("acceptable", "moderate", "acceptable")),
        (0.20, 0.4, ("acceptable", "moderate", "acceptable")),
        (0.201, 0.7, ("needs_work", "good", "needs_work")),
        (0.10, 0.39, ("production_ready", "low", "needs_work")),
        (0.10, float("nan"), ("production_ready", "low", "needs_work")),
    ],
)
def test_verdicts_follow_the_spec_table(mae: float, r2: float, expected: tuple) -> None:
    v = verdicts(mae, r2)
    assert (v["mae"], v["r2"], v["overall"]) == expected


def test_records_frame_strict_json_and_dimensions() -> None:
    record = copy.deepcopy(owner_records(5)[0])
    record["video"]["visual_analysis"]["hook"]["strength"] = float("nan")
    other = copy.deepcopy(record)
    other["dimensions"] = json.dumps({"hook": 0.5, "pacing": "fast"})
    frame = records_frame([record, other], DIMENSIONS)
    doc = json.loads(frame[ANALYSIS_COLUMN].iloc[0])  # strict JSON parses back
    assert doc["hook"]["strength"] is None
    assert frame["dim_hook"].iloc[0] == record["dimensions"]["hook"]
    assert frame["dim_hook"].iloc[1] == 0.5 and math.isnan(frame["dim_pacing"].iloc[1])


# --- fit and evaluate (pure) ------------------------------------------------------------------


def test_fit_preference_evaluates_against_the_mean_predictor() -> None:
    cfg = compose(["data.n_videos=250", "task.cv_folds=3"])
    frame = records_frame(owner_records(), DIMENSIONS)
    result = fit_preference(cfg, frame)
    m = result.metrics
    for key in ["mae", "rmse", "r2", "cv_mae", "cv_mae_std", "baseline_mae", "baseline_r2"]:
        assert key in m and np.isfinite(m[key])
    assert m["mae"] < m["baseline_mae"]
    assert m["training_video_count"] == 200 and m["test_video_count"] == 50
    assert set(result.verdict) == {"mae", "r2", "overall"}
    # weights name the features the model sees, after selection
    assert list(result.feature_weights) == selected_feature_names(result.pipeline)
    assert len(result.feature_weights) == m["n_features"] == 50
    assert result.weights_kind == "coefficient"
    # per-dimension models
    for dim in DIMENSIONS:
        assert np.isfinite(m[f"dim_{dim}_mae"]) and f"dim_{dim}_r2" in m
    assert set(result.dimensions.weights) == set(DIMENSIONS)
    # correlations were computed on the training rows
    assert result.correlations.n == 200
    assert set(result.errors) >= {"overestimated", "underestimated", "counts", "threshold"}


def test_correlations_and_selection_see_training_rows_only() -> None:
    cfg = compose([*FAST, "task.test_size=0.4", "features.select_k=1"])
    frame = records_frame(owner_records(), DIMENSIONS)
    _, test = train_test_split(frame, test_size=0.4, random_state=int(cfg.task.random_state))
    in_test = frame.index.isin(test.index)
    docs = []
    for text, y, leak in zip(frame[ANALYSIS_COLUMN], frame[LABEL], in_test, strict=True):
        doc = json.loads(text)
        doc["leak"] = {"score": float(y) if leak else 0.5}  # equals the label on test rows only
        docs.append(json.dumps(doc))
    frame[ANALYSIS_COLUMN] = docs
    table_all = np.corrcoef(
        [json.loads(d)["leak"]["score"] for d in docs], frame[LABEL].to_numpy()
    )[0, 1]
    assert table_all > 0.6  # on all rows it would be the top feature
    result = fit_preference(cfg, frame)
    assert selected_feature_names(result.pipeline) != ["leak.score"]
    leak_row = result.correlations.table.set_index("feature").loc["leak.score"]
    assert leak_row["correlation"] == 0.0 and leak_row["p_value"] == 1.0


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_feature_weights_for_models_without_coefficients() -> None:
    cfg = compose([*FAST, "model=mlp", "model.max_iter=50", "model.hidden_layer_sizes=[8]"])
    frame = records_frame(owner_records(), DIMENSIONS)
    result = fit_preference(cfg, frame)
    assert result.weights_kind == "permutation_importance"
    assert list(result.feature_weights) == selected_feature_names(result.pipeline)
    weights, kind = feature_weights(result.pipeline)  # no rows to permute: nothing claimed
    assert (weights, kind) == ({}, "none")


# --- odd-shaped documents ---------------------------------------------------------------------


def odd_analyses(base: dict[str, Any]) -> list[dict[str, Any]]:
    """v3 documents (still passing extraction) with every odd shape the rules cover."""
    variants = []

    def variant(change) -> None:
        doc = copy.deepcopy(base)
        change(doc)
        variants.append(doc)

    variant(lambda d: d.update(audio={}, standalone={}))  # empty objects
    variant(lambda d: d["script"]["replicability"].update(score="7", difficulty=3))  # str number
    variant(lambda d: d["hook"].update(elements=["Face", 3, None, {"x": 1}]))  # mixed array
    variant(lambda d: d["trends"].update(memeDependent=None, usesPremadeSound="true"))  # nulls
    variant(lambda d: d.update(mystery={"deep": {"er": [1, 2]}, "x": "y"}))  # unknown section
    variant(lambda d: d.update(casting=["array", "not", "object"]))  # array for an object
    variant(lambda d: d["production"].update(shotComplexity=float("nan"), shotCount=float("inf")))
    variant(lambda d: d["script"].update(humor={"comedyTiming": "abc", "punchlineCount": [1]}))
    return variants


def test_odd_documents_train_and_score() -> None:
    records = owner_records()
    for i, analysis in enumerate(odd_analyses(records[0]["video"]["visual_analysis"]) * 3):
        odd = copy.deepcopy(records[i])
        odd["id"], odd["video_id"] = f"odd_{i}", f"odd_vid_{i}"
        odd["video"]["visual_analysis"] = analysis
        records.append(odd)
    cfg = compose([*FAST, "task.multi_output=true"])
    result = fit_preference(cfg, records_frame(records, DIMENSIONS))
    assert result.metrics["mae"] < result.metrics["baseline_mae"]

    model = PreferenceModel(result.pipeline, r2=result.metrics["r2"])
    odd_docs: list[Any] = [
        *odd_analyses(records[1]["video"]["visual_analysis"]),
        {},
        [],
        5,
        None,
        "not json {",
        {"feature_count": "many", "comedyStyle": []},
    ]
    scored = model.predict(None, [json.dumps(d) if not isinstance(d, str) else d for d in odd_docs])
    assert len(scored) == len(odd_docs)
    assert np.isfinite(scored["score"]).all()
    assert scored["score"].between(0, 10).all()
    # and straight through the pipeline with the documents as Python objects
    assert np.isfinite(result.pipeline.predict(pd.DataFrame({ANALYSIS_COLUMN: odd_docs}))).all()


def test_invalid_json_file_fails_with_file_and_position(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text('[\n  {"id": "r1",\n   "overall_score": 0.5,,\n  }\n]\n', encoding="utf-8")
    cfg = compose(["data=files", f"data.path={path}"])
    with pytest.raises(DataError) as info:
        train(cfg)
    message = str(info.value)
    assert str(path) in message and "line 3, column" in message
    assert "\n" not in message


# --- whole tracked runs -----------------------------------------------------------------------


def artifacts(run_id: str, path: str | None = None) -> set[str]:
    client = mlflow.MlflowClient()
    out: set[str] = set()
    for item in client.list_artifacts(run_id, path):
        out |= artifacts(run_id, item.path) if item.is_dir else {item.path}
    return out


EXPECTED_ARTIFACTS = {
    "config.yaml",
    "correlations.csv",
    "correlations.png",
    "feature_importance_snapshot.json",
    "feature_metadata.json",
    "feature_weights.json",
    "error_analysis.json",
    "eval/test_set.parquet",
    "plots/predicted_vs_actual.png",
    "plots/residuals.png",
    "dimensions/metrics.json",
    "dimensions/feature_weights.json",
    "dimensions/pipeline.joblib",
}


@pytest.mark.slow
def test_ridge_on_the_bundled_sample_meets_the_spec_targets(capsys) -> None:
    metrics = train(compose(["model=ridge"]))
    out = capsys.readouterr().out
    assert "extraction: kept 700 of" in out and "verdict production_ready" in out
    assert metrics["mae"] < 0.15 and metrics["r2"] > 0.6
    assert metrics["mae"] < metrics["baseline_mae"] and metrics["cv_mae"] < 0.15
    assert metrics["corr_expected_sign_ok"] >= 10  # of the spec's 13 expected correlations

    run = mlflow.search_runs(experiment_names=["preference"], output_format="list")[0]
    tags = run.data.tags
    assert tags["viralab.family"] == "preference"  # the family tag every family writes
    assert tags["viralab.milestone"] == "advanced" and tags["viralab.stage"] == "trained"
    assert tags["viralab.verdict"] == "production_ready"
    assert (
        tags["viralab.verdict.mae"] == "production_ready" and tags["viralab.verdict.r2"] == "good"
    )
    assert tags["viralab.extraction"].startswith("kept 700 of")
    assert run.data.metrics["extract_kept"] == 700
    assert artifacts(run.info.run_id) >= EXPECTED_ARTIFACTS

    snapshot = mlflow.artifacts.load_dict(
        f"runs:/{run.info.run_id}/feature_importance_snapshot.json"
    )
    assert len(snapshot["top_positive"]) == 20 and len(snapshot["top_negative"]) == 20
    assert snapshot["n"] == 448  # 80 % of the 560 usable ratings outside the frozen gate set
    assert run.data.metrics["extract_held_back_gate_set"] == 140  # 20 % of 700, never trained on
    weights = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/feature_weights.json")
    assert len(weights) == 50

    # the registered model loads and scores raw documents in a fresh process
    doc = json.dumps(owner_records(5)[0]["video"]["visual_analysis"])
    code = (
        "import json, sys, mlflow, pandas as pd\n"
        "m = mlflow.pyfunc.load_model('models:/preference/1')\n"
        "out = m.predict(pd.DataFrame({'visual_analysis': [sys.argv[1], '{}']}))\n"
        "print(json.dumps(out['score'].tolist()))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, doc],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
        check=True,
    )
    scores = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(scores) == 2 and all(0 <= s <= 10 for s in scores)


@pytest.mark.slow
def test_random_forest_run_logs_importances() -> None:
    overrides = ["model=random_forest", "model.n_estimators=30", "data.n_videos=250"]
    metrics = train(compose([*overrides, "task.cv_folds=3"]))
    assert metrics["mae"] < metrics["baseline_mae"]
    run = mlflow.search_runs(experiment_names=["preference"], output_format="list")[0]
    assert run.data.tags["viralab.feature_weights"] == "importance"
    assert artifacts(run.info.run_id) >= EXPECTED_ARTIFACTS
    weights = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/feature_weights.json")
    assert len(weights) == 50 and all(w >= 0 for w in weights.values())


def test_equal_training_data_reuses_its_dataset_and_any_change_gets_a_new_digest() -> None:
    frame = pd.DataFrame(
        {
            "rating_id": ["r1", "r2", "r3"],
            "analysis": ['{"a": 1}', '{"a": 2}', '{"a": 3}'],
            LABEL: [0.5, 0.7, 0.9],
        }
    )
    first = training_dataset(frame, "memo-test")
    again = training_dataset(frame.copy(), "memo-test")  # a new frame, equal content
    assert again is first
    assert first.digest == mlflow.data.from_pandas(frame, name="memo-test", targets=LABEL).digest
    edited = frame.copy()
    edited.loc[2, "analysis"] = '{"a": 4}'  # one cell of the last row
    changed = training_dataset(edited, "memo-test")
    assert changed is not first and changed.digest != first.digest
    assert training_dataset(frame, "other-name") is not first  # per dataset name
