"""The preference family's `score_recent` and `drift_features`: a saved model asked through
its wrapper's public methods, never opened by the monitor."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from viralab.families import preference
from viralab.features.documents import ANALYSIS_COLUMN
from viralab.serve.prediction_log import current


def rows() -> pd.DataFrame:
    return pd.DataFrame(
        {ANALYSIS_COLUMN: ['{"a": 1}', '{"a": 2}', '{"a": 3}'], "rating": [0.1, 0.5, 0.9]},
        index=[7, 3, 5],  # any index: the scores follow the rows' order
    )


class Scorer:
    """A wrapper with `score` (as `PreferenceModel`): asked without SHAP factors."""

    def __init__(self) -> None:
        self.seen: list[tuple[list[str], bool]] = []
        self.pipeline = SimpleNamespace(named_steps={"features": "the encoder", "model": None})

    def score(self, documents: pd.DataFrame, with_factors: bool = True) -> pd.DataFrame:
        self.seen.append((list(documents.columns), with_factors))
        return pd.DataFrame({"prediction": np.linspace(0.2, 0.4, len(documents))})


def loaded(inner: object, predict=None) -> SimpleNamespace:
    return SimpleNamespace(unwrap_python_model=lambda: inner, predict=predict)


def test_score_recent_uses_the_wrappers_score_without_factors() -> None:
    inner = Scorer()
    out = preference.score_recent(loaded(inner), rows())
    np.testing.assert_allclose(out, [0.2, 0.3, 0.4])
    assert inner.seen == [([ANALYSIS_COLUMN], False)]


def test_a_model_without_score_is_asked_to_predict_outside_the_prediction_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(current, "get_prediction_log", lambda: "a log")
    logged_while_predicting: list[object] = []

    def predict(documents: pd.DataFrame) -> pd.DataFrame:
        logged_while_predicting.append(current.active_log())
        return pd.DataFrame({"prediction": [0.5] * len(documents), "other": 1})

    out = preference.score_recent(loaded(object(), predict), rows())
    np.testing.assert_allclose(out, [0.5, 0.5, 0.5])
    assert logged_while_predicting == [None]  # re-scoring is not serving


def test_drift_features_is_the_pipelines_features_step_or_none() -> None:
    assert preference.drift_features(loaded(Scorer())) == "the encoder"
    assert preference.drift_features(loaded(object())) is None
    assert preference.drift_features(object()) is None
