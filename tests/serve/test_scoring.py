"""The compiled scoring path (`serve.scoring`) against the general one, shape by shape.

The general path is what training and `AnalysisEncoder.transform` use: `flatten_rows`
(every key of every document, `json` parsing, the flatten cache) -> `encode_with_coverage`
-> the selection step's `transform` -> the estimator -> `top_factors` + `json.dumps` per row.
The compiled path must give the same estimator input, predictions, coverage and factor texts
on the bundled sample documents and on every odd shape the flattening rules cover.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeRegressor

from viralab.config import compose
from viralab.data.sample import generate_ratings
from viralab.families.preference.fit import build_pipeline
from viralab.features.compiled import CompiledFlattener, parse_json
from viralab.features.flatten import flatten_cache, flatten_document
from viralab.features.tabular import ANALYSIS_COLUMN, AnalysisEncoder, flatten_rows
from viralab.serve.explain import Explainer, top_factors, weighed_columns
from viralab.serve.preference_model import PreferenceModel, served_records
from viralab.serve.scoring import CHUNK, CompiledScorer


def _records(n: int, seed: int) -> list[dict]:
    return generate_ratings(n_videos=n, seed=seed)[:n]


def _fitted(overrides: list[str], n: int = 240) -> Pipeline:
    records = _records(n, seed=5)
    texts = [json.dumps(r["video"]["visual_analysis"]) for r in records]
    X = pd.DataFrame({ANALYSIS_COLUMN: texts})
    y = np.array([r["overall_score"] for r in records])
    return build_pipeline(compose(overrides)).fit(X, y)


def _odd_texts(base: dict) -> list[str]:
    """Every odd shape `viralab.features.flatten` documents, around a real document."""
    hook = dict(base["hook"])
    script = json.loads(json.dumps(base["script"]))
    docs: list[object] = [
        {},
        {**base, "hook": {**hook, "strength": "7", "clarity": " 8 ", "curiosityGap": "abc"}},
        {**base, "hook": {**hook, "strength": "1_000", "clarity": "1e3", "curiosityGap": "nan"}},
        {**base, "hook": {**hook, "strength": math.nan, "clarity": math.inf, "usesText": None}},
        {**base, "hook": {**hook, "strength": -math.inf, "timeToHookSeconds": 1e30}},
        {**base, "hook": None, "script": None},
        {**base, "hook": [hook], "script": ["a", "b"]},  # arrays where objects are expected
        {**base, "hook": {**hook, "elements": {"Text Overlay": True}}},  # object for an array
        {**base, "hook": {**hook, "elements": [1, "Text Overlay", None]}},  # mixed array
        {**base, "hook": {**hook, "elements": []}},
        {**base, "hook": {**hook, "elements": ["Text Overlay", "text overlay", "TEXT-OVERLAY"]}},
        {**base, "hook": {**hook, "usesText": 1, "usesFace": "true", "usesMotion": 7}},
        {**base, "hook": {**hook, "strength": True, "type": 5, "openingLine": None}},
        {**base, "brandNew": {"deep": {"deeper": [1, {"x": 2}]}}, "hook": {**hook, "zzz": 1}},
        {**base, "hook.strength": 9, "hook": {**hook, "elements_count": 12}},  # dotted / _count
        {"hook.strength": 9, "hook": {"strength": 2}, "script.replicability": {"score": "3"}},
        {"": {"hook": hook}, "script": {"": {"x": 1}, "replicability": {"": 2}}},
        {**base, "script": {**script, "replicability": {"score": 12345678901234567890123}}},
        {**base, "hook": {**hook, "type": "\ud800"}},  # a lone surrogate (orjson refuses it)
        [1, 2, 3],
        [base],
        7,
        None,
        "just a string",
        True,
    ]
    texts = [json.dumps(d) for d in docs]
    return [
        *texts,
        "{not json",
        "",
        '{"hook": {"strength": 1}, "hook": {"strength": 9}, "hook.strength": 4}',  # duplicates
        '{"hook": {"strength": 1e400, "clarity": -0, "curiosityGap": 1E2}}',
        "\ufeff" + texts[1],  # a byte-order mark: not JSON for either parser
        json.dumps(base, indent=2),
        '{"hook": {"strength": NaN, "clarity": Infinity}}',
    ]


def _texts() -> list[str]:
    docs = [r["video"]["visual_analysis"] for r in _records(60, seed=21)]
    return [json.dumps(d) for d in docs] + _odd_texts(docs[0])


def _typed(row: list) -> list:
    """Values with their types: True == 1 and 1 == 1.0 must not pass as equal rows.

    The one difference allowed: orjson reads an integer beyond 64 bits as the float it
    rounds to, where `json` keeps a Python int; every encoding step reads both as that same
    float (`_numeric_column` converts with float()), which the scoring tests check.
    """
    return [
        ("float", float(v)) if type(v) is int and abs(v) >= 2**63 else (type(v).__name__, v)
        for v in row
    ]


def _reference(pipeline: Pipeline, texts: list[str]) -> tuple:
    """The general path, step by step."""
    encoder = pipeline.named_steps["features"]
    weighed = encoder.inputs_of(weighed_columns(pipeline))
    flatten_cache.clear()
    encoded, coverage = encoder.encode_with_coverage(flatten_rows(texts), weighed)
    if len(pipeline) > 2:
        encoded = pipeline[1:-1].transform(encoded)
    raw = np.asarray(pipeline[-1].predict(encoded), dtype=float)
    contributions = Explainer(pipeline).explain(encoded)
    factors = [json.dumps(top_factors(contributions, i)) for i in range(len(texts))]
    return encoded, raw, coverage, factors


PIPELINES = {
    "ridge, top-50 selection": ["model=ridge"],
    "ridge, no selection, z-score, median": [
        "model=ridge",
        "features.select_k=null",
        "features.scaling=z-score",
        "features.missing=median",
    ],
    "ridge, |r| pruning, robust": ["model=ridge", "features.min_abs_corr=0.1"],
    "random forest (SHAP)": ["model=random_forest", "model.n_estimators=8", "model.n_jobs=1"],
}


@pytest.fixture(scope="module", params=list(PIPELINES))
def pipeline(request: pytest.FixtureRequest) -> Pipeline:
    return _fitted(PIPELINES[request.param])


def test_compiled_rows_equal_the_general_flattening_on_every_input(pipeline: Pipeline) -> None:
    # every input the encoder has, not only the estimator's: the flattener on all keys
    keys = pipeline.named_steps["features"].layout().keys
    flattener = CompiledFlattener(keys)
    for text in _texts():
        flatten_cache.clear()
        expected = [flatten_document(text).get(k) for k in keys]
        assert _typed(flattener.row(parse_json(text))) == _typed(expected), text[:200]


def test_compiled_scoring_equals_the_general_path(pipeline: Pipeline) -> None:
    texts = _texts()
    encoded, raw, coverage, factors = _reference(pipeline, texts)
    scorer = CompiledScorer(pipeline)
    ours_encoded, ours_coverage = scorer.encode(scorer.flatten(scorer.parse(texts)))
    np.testing.assert_array_equal(ours_encoded, encoded)
    np.testing.assert_array_equal(ours_coverage, coverage)
    ours_raw, ours_coverage, ours_factors = scorer.score(texts)
    np.testing.assert_array_equal(ours_raw, raw)
    np.testing.assert_array_equal(ours_coverage, coverage)
    assert ours_factors == factors  # the same JSON text, byte for byte
    assert any(f != "[]" for f in factors)
    # and the whole pipeline's own predict (encoder.transform) agrees too
    frame = pd.DataFrame({ANALYSIS_COLUMN: texts})
    np.testing.assert_array_equal(ours_raw, pipeline.predict(frame))


def test_a_batch_longer_than_a_chunk_scores_as_one(pipeline: Pipeline) -> None:
    texts = (_texts() * (CHUNK // len(_texts()) + 2))[: CHUNK * 2 + 7]  # three chunks
    _, raw, coverage, factors = _reference(pipeline, texts)
    ours_raw, ours_coverage, ours_factors = CompiledScorer(pipeline).score(texts)
    np.testing.assert_array_equal(ours_raw, raw)
    np.testing.assert_array_equal(ours_coverage, coverage)
    assert ours_factors == factors


def test_preference_model_output_is_the_general_paths(pipeline: Pipeline) -> None:
    texts = _texts()
    _, raw, coverage, factors = _reference(pipeline, texts)
    out = PreferenceModel(pipeline, r2=0.8).score(texts)
    assert list(out.columns) == ["prediction", "score", "confidence", "top_factors"]
    np.testing.assert_array_equal(out["prediction"], np.clip(raw, 0, 1))
    np.testing.assert_array_equal(out["score"], np.clip(raw, 0, 1) * 10)
    np.testing.assert_array_equal(out["confidence"], coverage * 0.8)
    assert out["top_factors"].tolist() == factors
    assert out["top_factors"].dtype == object
    assert PreferenceModel(pipeline).score(texts[:2], with_factors=False)[
        "top_factors"
    ].tolist() == ["[]", "[]"]


def test_only_the_keys_behind_the_estimators_columns_are_flattened() -> None:
    pipeline = _fitted(["model=ridge", "features.select_k=5"])
    scorer = CompiledScorer(pipeline)
    encoder = pipeline.named_steps["features"]
    assert len(scorer.layout.keys) < len(encoder.layout().keys)
    assert scorer.encode(scorer.flatten(scorer.parse(_texts())))[0].shape[1] == 5


# --- coverage: what the model weighs --------------------------------------------------------


def _frame(docs: list[dict]) -> pd.DataFrame:
    return pd.DataFrame({ANALYSIS_COLUMN: [json.dumps(d) for d in docs]})


TRAIN = [
    {"x": 1, "y": 5, "arr": ["a", "b"]},
    {"x": 2, "y": 3, "arr": ["a"]},
    {"x": 3, "y": 4, "arr": ["b"]},
    {"x": 4, "y": 1, "arr": []},
]
TARGET = np.array([0.1, 0.4, 0.5, 0.9])


def test_absent_has_flags_of_a_present_array_count_as_false() -> None:
    # issue 17: {'x': 1, 'arr': []} scored 0.6 against 0.8 with 'a' in the array
    encoder = AnalysisEncoder().fit(_frame(TRAIN))
    assert {"arr_has_a", "arr_has_b"} <= set(encoder.boolean_)
    without, with_a, no_array = encoder.coverage(
        _frame([{"x": 1, "y": 2, "arr": []}, {"x": 1, "y": 2, "arr": ["a"]}, {"x": 1, "y": 2}])
    )
    assert without == with_a == 1.0
    # no array at all: its count, emptiness and flags are all unknown (2 of 6 inputs read)
    assert no_array == pytest.approx(2 / 6)


def test_coverage_counts_only_readable_values() -> None:
    encoder = AnalysisEncoder(max_categories=3).fit(
        _frame([{**d, "c": c} for d, c in zip(TRAIN, ["red", "blue", "red", "blue"], strict=True)])
    )
    odd = {"x": "abc", "y": "7", "arr": ["a"], "c": "purple"}  # unreadable x, unknown colour
    (coverage,) = encoder.coverage(_frame([odd]))
    assert coverage == pytest.approx(5 / 7)  # y, arr_count, arr_empty, the two flags


def test_coverage_counts_the_features_the_model_weighs() -> None:
    """ "Weighs" (see `serve.explain.weighed_columns`): kept by the selection step(s) and, for
    linear models, a nonzero coefficient; for trees a nonzero feature importance (a feature
    no split uses cannot move the prediction); otherwise every column the estimator sees."""
    linear = Pipeline([("features", AnalysisEncoder()), ("model", Ridge())]).fit(
        _frame(TRAIN), TARGET
    )
    names = list(linear.named_steps["features"].get_feature_names_out())
    linear[-1].coef_[names.index("y")] = 0.0  # the model no longer weighs y
    scored = PreferenceModel(linear).score([json.dumps({"x": 1, "arr": []})])
    assert scored["confidence"].iloc[0] == 1.0  # y is missing, but the model ignores it
    everything = linear.named_steps["features"].coverage(_frame([{"x": 1, "arr": []}]))
    assert everything[0] == pytest.approx(5 / 6)  # the encoder alone counts all inputs

    stump = DecisionTreeRegressor(max_depth=1)
    tree = Pipeline([("features", AnalysisEncoder()), ("model", stump)])
    tree.fit(_frame(TRAIN), TARGET)
    weighed = weighed_columns(tree)
    assert weighed.sum() == 1  # one split, one feature
    split_on = names[int(np.flatnonzero(weighed)[0])]
    doc = {"x": 1, "y": 2, "arr": ["a"]}
    assert PreferenceModel(tree).score([json.dumps(doc)])["confidence"].iloc[0] == 1.0
    key = split_on.split("_has_")[0].removesuffix("_count").removesuffix("_empty")
    missing = PreferenceModel(tree).score([json.dumps({k: v for k, v in doc.items() if k != key})])
    assert missing["confidence"].iloc[0] == 0.0


def test_served_records_are_the_json_mlflow_makes_of_the_frame() -> None:
    from mlflow.pyfunc.scoring_server import predictions_to_json

    pipeline = _fitted(PIPELINES["ridge, top-50 selection"])
    frame = PreferenceModel(pipeline, r2=0.8).score(_texts())
    as_frame, as_records = io.StringIO(), io.StringIO()
    predictions_to_json(frame, as_frame)
    predictions_to_json(served_records(frame), as_records)
    assert as_records.getvalue() == as_frame.getvalue()


def test_under_the_scoring_server_predict_answers_rows_built_without_a_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under `mlflow models serve` the pyfunc hands back rows made from its output columns (no
    frame): the same JSON as the frame, and the same rows in the prediction log."""
    from types import SimpleNamespace

    from mlflow.pyfunc.scoring_server import predictions_to_json

    from viralab.serve import prediction_log as pl
    from viralab.serve.preference_model import SERVING_ENV, documents_frame

    class Captured:
        def __init__(self) -> None:
            self.columns: list[dict] = []

        def record_columns(self, common: dict, columns: dict, documents: object = None) -> int:
            self.columns.append(dict(columns))
            return len(columns["prediction"])

    model = PreferenceModel(_fitted(PIPELINES["ridge, top-50 selection"]), r2=0.8)
    served = SimpleNamespace(model="preference", version=3, marker="champion")
    model._identity = SimpleNamespace(get=lambda: served)
    frame = documents_frame(_texts()[:5])
    frame["video_id"] = [f"v{i}" for i in range(5)]
    captured = Captured()
    monkeypatch.setattr(pl, "active_log", lambda: captured)
    for params in ({}, {"top_factors": False}):
        monkeypatch.delenv(SERVING_ENV, raising=False)
        as_frame = model.predict(None, frame, params)
        assert isinstance(as_frame, pd.DataFrame)
        monkeypatch.setenv(SERVING_ENV, "true")
        rows = model.predict(None, frame, params)
        assert isinstance(rows, list) and list(rows[0]) == list(as_frame.columns)
        frame_json, rows_json = io.StringIO(), io.StringIO()
        predictions_to_json(as_frame, frame_json)
        predictions_to_json(rows, rows_json)
        assert rows_json.getvalue() == frame_json.getvalue()
        assert captured.columns[-1] == captured.columns[-2]  # logged the same rows
        assert captured.columns[-1]["video_id"] == ["v0", "v1", "v2", "v3", "v4"]
