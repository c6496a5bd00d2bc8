"""Feature selection (spec §5.2 top-50, §8 pruning) as a pipeline step that never sees test rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import cross_validate
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from viralab.features.selection import CorrelationSelector
from viralab.features.tabular import ANALYSIS_COLUMN, AnalysisEncoder


@parametrize_with_checks([CorrelationSelector(k=2), CorrelationSelector(k=None, min_abs_corr=0.1)])
def test_sklearn_api_suite(estimator, check) -> None:
    check(estimator)


def data(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    X = np.column_stack(
        [
            rng.normal(size=n),  # 0: noise
            y + 0.5 * rng.normal(size=n),  # 1: strong positive
            -y + 2.0 * rng.normal(size=n),  # 2: medium negative
            np.ones(n),  # 3: constant
            0.2 * y + rng.normal(size=n),  # 4: weak
        ]
    )
    return X, y


def test_top_k_by_absolute_correlation() -> None:
    X, y = data()
    sel = CorrelationSelector(k=2).fit(X, y)
    assert sel.get_support(indices=True).tolist() == [1, 2]
    assert sel.correlations_[2] < 0 < sel.correlations_[1]
    assert sel.correlations_[3] == 0.0 and sel.p_values_[3] == 1.0
    assert sel.transform(X).shape == (len(y), 2)
    names = sel.get_feature_names_out([f"f{i}" for i in range(5)])
    assert names.tolist() == ["f1", "f2"]


def test_pruning_threshold_and_off_switches() -> None:
    X, y = data()
    pruned = CorrelationSelector(k=None, min_abs_corr=0.3).fit(X, y)
    assert set(pruned.get_support(indices=True)) == {1, 2}
    assert CorrelationSelector(k=None).fit(X, y).get_support().all()
    assert CorrelationSelector(k=0).fit(X, y).get_support().all()
    assert CorrelationSelector(k=50).fit(X, y).get_support().all()  # k > n_features keeps all
    strict = CorrelationSelector(k=None, min_abs_corr=0.99).fit(X, y)
    assert strict.get_support(indices=True).tolist() == [1]  # never empty


@pytest.mark.parametrize("bad", [dict(k=-1), dict(k=2.5), dict(min_abs_corr=1.5)])
def test_bad_parameters(bad: dict) -> None:
    X, y = data()
    with pytest.raises(ValueError):
        CorrelationSelector(**bad).fit(X, y)


def leaky_documents(n: int = 200, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """`signal` truly drives y; `leak` equals y on the test rows only, constant on training rows.

    Ranked on all rows `leak` has |r| ~ 0.7 and beats `signal`; ranked on training rows it has
    r = 0 and must never be picked.
    """
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    is_test = np.zeros(n, dtype=bool)
    is_test[rng.choice(n, size=n // 2, replace=False)] = True
    signal = 0.4 * y + rng.normal(size=n)
    leak = np.where(is_test, y, 0.0)
    docs = [
        json.dumps({"signal": float(s), "leak": float(k), "noise": float(z)})
        for s, k, z in zip(signal, leak, rng.normal(size=n), strict=True)
    ]
    return pd.DataFrame({ANALYSIS_COLUMN: docs}), y, is_test


def selector_pipeline() -> Pipeline:
    return Pipeline(
        [
            ("features", AnalysisEncoder()),
            ("select", CorrelationSelector(k=1)),
            ("model", Ridge()),
        ]
    )


def test_selection_on_all_rows_would_pick_the_leak() -> None:
    X, y, _ = leaky_documents()
    pipe = selector_pipeline().fit(X, y)
    assert pipe[:-1].get_feature_names_out().tolist() == ["leak"]


def test_selection_inside_the_pipeline_never_sees_test_rows() -> None:
    X, y, is_test = leaky_documents()
    pipe = selector_pipeline().fit(X[~is_test], y[~is_test])
    assert pipe[:-1].get_feature_names_out().tolist() == ["signal"]
    assert pipe.predict(X[is_test]).shape == (is_test.sum(),)


def test_selection_is_refitted_in_every_cv_fold() -> None:
    X, y, is_test = leaky_documents()
    train_X, train_y = X[~is_test].reset_index(drop=True), y[~is_test]
    result = cross_validate(selector_pipeline(), train_X, train_y, cv=4, return_estimator=True)
    for fitted in result["estimator"]:
        assert fitted[:-1].get_feature_names_out().tolist() == ["signal"]
    # each fold ranked on its own rows: the fitted correlations differ from fold to fold
    rs = {round(float(f.named_steps["select"].correlations_.max()), 6) for f in result["estimator"]}
    assert len(rs) == 4
