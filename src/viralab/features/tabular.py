"""Spec 000 §3.2-3.3 as one scikit-learn transformer: raw analysis documents -> numbers.

`AnalysisEncoder` flattens, types every feature from the training rows (numeric / boolean /
categorical / text, with min, max, null count and coverage), drops text and low-coverage
features, then scales numbers, maps booleans to 0/1 and one-hot encodes categoricals. Because
the fitted encoder *is* the preprocessing, it travels inside the logged model and scoring needs
no separate normalisation config.

Typing and coercion rules (for odd-shaped documents, applied the same way in fit and
transform):

- a feature's type is decided by the majority of its non-null training values: all booleans
  -> boolean; numbers (and numeric-looking strings such as "7") -> numeric; strings ->
  categorical when at most `max_categories` distinct values, else text;
- at transform, a value that does not fit its feature's type is treated as missing (a list
  where a number was expected, "abc" in a numeric feature); numeric strings are parsed;
  booleans in numeric features count as 0/1;
- missing values are filled after scaling with `missing_value` (spec: 0), so a missing
  feature contributes nothing beyond the model's intercept;
- unknown categories at inference are ignored (all-zero one-hot), never an error;
- features never seen in training are ignored.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, RobustScaler, StandardScaler
from sklearn.utils.validation import check_is_fitted

from viralab.features.flatten import flatten_analysis

SCALERS = {"min-max": MinMaxScaler, "z-score": StandardScaler, "robust": RobustScaler}
ANALYSIS_COLUMN = "visual_analysis"


@dataclass
class FeatureMetadata:
    """Spec 000's FeatureMetadata, computed on the training rows."""

    name: str
    type: str
    null_count: int
    coverage: float
    min: float | None = None
    max: float | None = None
    values: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.type != "categorical":
            d.pop("values")
        return d


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _as_bool(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and value in (0, 1):
        return float(value)
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return float(value.strip().lower() == "true")
    return None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "numeric"
    if isinstance(value, str):
        return "numeric" if _as_number(value) is not None else "string"
    return "other"


def describe_features(
    flat_rows: list[Mapping[str, Any]], max_categories: int = 20
) -> dict[str, FeatureMetadata]:
    """Type every key seen in the flattened rows (spec's `categorizeFeatures`, made robust)."""
    n = len(flat_rows)
    values_by_key: dict[str, list[Any]] = {}
    for row in flat_rows:
        for key, value in row.items():
            values_by_key.setdefault(key, [])
            if value is not None:
                values_by_key[key].append(value)
    metadata: dict[str, FeatureMetadata] = {}
    for key in sorted(values_by_key):
        values = values_by_key[key]
        null_count = n - len(values)
        coverage = len(values) / n if n else 0.0
        kinds = Counter(_kind(v) for v in values)
        kind = kinds.most_common(1)[0][0] if kinds else "numeric"
        if kind == "boolean" and kinds["boolean"] == len(values):
            metadata[key] = FeatureMetadata(key, "boolean", null_count, coverage)
        elif kind in {"numeric", "boolean"}:
            numbers = [x for x in (_as_number(v) for v in values) if x is not None]
            metadata[key] = FeatureMetadata(
                key,
                "numeric",
                null_count,
                coverage,
                min(numbers) if numbers else None,
                max(numbers) if numbers else None,
            )
        elif kind == "string":
            distinct = sorted({v for v in values if isinstance(v, str)})
            if len(distinct) <= max_categories:
                metadata[key] = FeatureMetadata(
                    key, "categorical", null_count, coverage, values=distinct
                )
            else:
                metadata[key] = FeatureMetadata(key, "text", null_count, coverage)
        else:
            metadata[key] = FeatureMetadata(key, "text", null_count, coverage)
    return metadata


def parse_documents(X: Any, column: str = ANALYSIS_COLUMN) -> list[Any]:
    """Accept a DataFrame with the analysis column, a Series, or a list of documents."""
    if isinstance(X, pd.DataFrame):
        if column not in X.columns:
            raise ValueError(f"input needs a {column!r} column; got {list(X.columns)}")
        docs = X[column].tolist()
    elif isinstance(X, pd.Series):
        docs = X.tolist()
    elif isinstance(X, Mapping):
        docs = [X]
    else:
        docs = list(X)
    parsed = []
    for doc in docs:
        if isinstance(doc, str | bytes):
            try:
                doc = json.loads(doc)
            except json.JSONDecodeError:
                doc = {}
        parsed.append(doc)
    return parsed


class AnalysisEncoder(TransformerMixin, BaseEstimator):
    """Raw `visual_analysis` documents -> encoded feature matrix (see module docstring)."""

    def __init__(
        self,
        scaling: str = "min-max",
        min_coverage: float = 0.5,
        max_categories: int = 20,
        missing_value: float = 0.0,
        column: str = ANALYSIS_COLUMN,
    ) -> None:
        self.scaling = scaling
        self.min_coverage = min_coverage
        self.max_categories = max_categories
        self.missing_value = missing_value
        self.column = column

    def _typed_frame(self, flat_rows: list[Mapping[str, Any]]) -> pd.DataFrame:
        data: dict[str, list[Any]] = {}
        for name in self.numeric_:
            data[name] = [_as_number(r.get(name)) for r in flat_rows]
        for name in self.boolean_:
            data[name] = [_as_bool(r.get(name)) for r in flat_rows]
        for name in self.categorical_:
            data[name] = [v if isinstance(v := r.get(name), str) else None for r in flat_rows]
        frame = pd.DataFrame(data, index=range(len(flat_rows)))
        numeric_cols = [*self.numeric_, *self.boolean_]
        if numeric_cols:
            frame[numeric_cols] = frame[numeric_cols].astype(float)
        if self.categorical_:
            frame[self.categorical_] = frame[self.categorical_].astype(object)
        return frame

    def fit(self, X: Any, y: Iterable[float] | None = None) -> AnalysisEncoder:
        if self.scaling not in SCALERS:
            raise ValueError(f"scaling must be one of {sorted(SCALERS)}, got {self.scaling!r}")
        flat_rows = [flatten_analysis(d) for d in parse_documents(X, self.column)]
        if not flat_rows:
            raise ValueError("cannot fit on zero documents")
        self.metadata_ = describe_features(flat_rows, self.max_categories)
        usable = {
            k: m
            for k, m in self.metadata_.items()
            if m.coverage >= self.min_coverage and m.type != "text"
        }
        self.numeric_ = [k for k, m in usable.items() if m.type == "numeric"]
        self.boolean_ = [k for k, m in usable.items() if m.type == "boolean"]
        self.categorical_ = [k for k, m in usable.items() if m.type == "categorical"]
        if not (self.numeric_ or self.boolean_ or self.categorical_):
            raise ValueError(
                "no usable features: every feature is text or under "
                f"{self.min_coverage:.0%} coverage"
            )
        fill = SimpleImputer(
            strategy="constant", fill_value=self.missing_value, keep_empty_features=True
        )
        transformers = []
        if self.numeric_:
            transformers.append(
                (
                    "num",
                    Pipeline([("scale", SCALERS[self.scaling]()), ("fill", fill)]),
                    self.numeric_,
                )
            )
        if self.boolean_:
            transformers.append(
                (
                    "bool",
                    SimpleImputer(
                        strategy="constant", fill_value=self.missing_value, keep_empty_features=True
                    ),
                    self.boolean_,
                )
            )
        if self.categorical_:
            categories = [self.metadata_[k].values for k in self.categorical_]
            transformers.append(
                (
                    "cat",
                    OneHotEncoder(
                        categories=categories, handle_unknown="ignore", sparse_output=False
                    ),
                    self.categorical_,
                )
            )
        self.columns_ = ColumnTransformer(transformers, verbose_feature_names_out=False)
        self.columns_.fit(self._typed_frame(flat_rows))
        self.feature_names_out_ = np.asarray(self.columns_.get_feature_names_out(), dtype=object)
        self.n_features_in_ = 1
        return self

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "columns_")
        flat_rows = [flatten_analysis(d) for d in parse_documents(X, self.column)]
        return np.asarray(self.columns_.transform(self._typed_frame(flat_rows)), dtype=float)

    def coverage(self, X: Any) -> np.ndarray:
        """Share of the model's input features present (non-null) in each document."""
        check_is_fitted(self, "columns_")
        names = [*self.numeric_, *self.boolean_, *self.categorical_]
        flat_rows = [flatten_analysis(d) for d in parse_documents(X, self.column)]
        return np.array([sum(r.get(k) is not None for k in names) / len(names) for r in flat_rows])

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_
