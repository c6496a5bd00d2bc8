"""Spec 000 §3.2-3.3 as one scikit-learn transformer: raw analysis documents -> numbers.

`AnalysisEncoder` flattens, types every feature from the training rows (numeric / boolean /
categorical / text, with min, max, null count and coverage), drops text and low-coverage
features, then scales numbers, maps booleans to 0/1 and one-hot encodes categoricals. Because
the fitted encoder *is* the preprocessing, it travels inside the logged model and scoring needs
no separate normalisation config.

Typing and coercion rules (for odd-shaped documents, applied the same way in fit and
transform):

- a feature's type comes from its non-null training values: only booleans -> boolean;
  otherwise the most common kind decides: numbers, booleans and numeric-looking strings
  such as "7" -> numeric; other strings -> categorical when at most `max_categories`
  distinct values, else text (skipped);
- at transform, a value that does not fit its feature's type is treated as missing ("abc" in
  a numeric feature, a number in a categorical one; an array or object where a number was
  expected never reaches the feature at all: flattening gives it other keys); numeric
  strings are parsed, booleans in numeric features count as 0/1, and boolean features also
  read "true"/"false" and 0/1;
- missing numeric values are filled after scaling by `missing`: "constant" with
  `missing_value` (the spec: 0, so with min-max a missing number counts as the training
  minimum), or the training "mean" / "median" of the scaled column (SimpleImputer);
- missing booleans are always 0 (false), whatever `missing` says: an absent `<key>_has_<x>`
  array flag means the array lacked that value, and a mean would turn an always-true flag
  into a constant;
- unknown categories at inference are ignored (all-zero one-hot), never an error;
- features never seen in training are ignored; a document that is not an object, or text
  that is not valid JSON, is a row of missing values (see `viralab.features.flatten`).

Feature names are the flattened keys themselves (one-hot columns: `<key>_<category>`, from
scikit-learn's `OneHotEncoder`); nothing ever splits a name to find its parts.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, RobustScaler, StandardScaler
from sklearn.utils.validation import check_is_fitted

from viralab.features.flatten import flatten_document

SCALERS = {"min-max": MinMaxScaler, "z-score": StandardScaler, "robust": RobustScaler}
MISSING_STRATEGIES = ("constant", "mean", "median")
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
        # not `dataclasses.asdict`: its recursive deep copy cost ~8 ms a run over ~300 features
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.type == "categorical":
            d["values"] = list(self.values)
        else:
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


def _kinds(values: list[Any]) -> Counter:
    """How many values of each kind; plain numbers and plain booleans skip the per-value test."""
    types = set(map(type, values))
    if types and types <= {int, float}:
        return Counter({"numeric": len(values)})
    if types == {bool}:
        return Counter({"boolean": len(values)})
    return Counter(_kind(v) for v in values)


def _numeric_column(values: list[Any]) -> np.ndarray:
    """`_as_number` over a column; numpy converts the usual all-number column in one go."""
    try:
        column = np.array(values, dtype=float)
    except (TypeError, ValueError):
        column = None
    if column is None or column.shape != (len(values),):
        return np.array([_as_number(v) for v in values], dtype=float)
    column[~np.isfinite(column)] = np.nan
    return column


def _bool_column(values: list[Any]) -> np.ndarray:
    """`_as_bool` over a column; a column of booleans and None converts in one go."""
    if set(map(type, values)) <= {bool, type(None)}:
        return np.array(values, dtype=float)
    return np.array([_as_bool(v) for v in values], dtype=float)


def _scale(scaler: Any, values: np.ndarray) -> np.ndarray:
    """A fitted min-max / z-score / robust scaler's transform as plain arithmetic (NaN kept)."""
    if isinstance(scaler, MinMaxScaler):
        out = values * scaler.scale_ + scaler.min_
        if scaler.clip:
            out = np.clip(out, *scaler.feature_range)
        return out
    if isinstance(scaler, StandardScaler):
        out = values - scaler.mean_ if scaler.with_mean else values.copy()
        return out / scaler.scale_ if scaler.with_std else out
    if isinstance(scaler, RobustScaler):
        out = values - scaler.center_ if scaler.with_centering else values.copy()
        return out / scaler.scale_ if scaler.with_scaling else out
    return np.asarray(scaler.transform(values), dtype=float)


def _fill(values: np.ndarray, statistics: np.ndarray) -> np.ndarray:
    """SimpleImputer's transform: each NaN takes its column's fitted fill value."""
    return np.where(np.isnan(values), np.asarray(statistics, dtype=float), values)


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
        kinds = _kinds(values)
        kind = kinds.most_common(1)[0][0] if kinds else "numeric"
        if kind == "boolean" and kinds["boolean"] == len(values):
            metadata[key] = FeatureMetadata(key, "boolean", null_count, coverage)
        elif kind in {"numeric", "boolean"}:
            column = _numeric_column(values)
            numbers = column[np.isfinite(column)].tolist()
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


def documents_of(X: Any, column: str = ANALYSIS_COLUMN) -> list[Any]:
    """The raw documents in what a caller passes: a DataFrame with the analysis column, a
    Series, one mapping, or a list of documents (dicts or JSON strings)."""
    if isinstance(X, pd.DataFrame):
        if column not in X.columns:
            raise ValueError(f"input needs a {column!r} column; got {list(X.columns)}")
        return X[column].tolist()
    if isinstance(X, pd.Series):
        return X.tolist()
    if isinstance(X, Mapping):
        return [X]
    return list(X)


def parse_documents(X: Any, column: str = ANALYSIS_COLUMN) -> list[Any]:
    """`documents_of`, with JSON text parsed (text that is not JSON becomes {})."""
    parsed = []
    for doc in documents_of(X, column):
        if isinstance(doc, str | bytes):
            try:
                doc = json.loads(doc)
            except json.JSONDecodeError:
                doc = {}
        parsed.append(doc)
    return parsed


def flatten_rows(X: Any, column: str = ANALYSIS_COLUMN) -> list[Mapping[str, Any]]:
    """Every document of `X` flattened (shared, read-only dicts: see `flatten_document`)."""
    return [flatten_document(doc) for doc in documents_of(X, column)]


class AnalysisEncoder(TransformerMixin, BaseEstimator):
    """Raw `visual_analysis` documents -> encoded feature matrix (see module docstring).

    Args:
        scaling: "min-max" (spec), "z-score" or "robust" for numeric features.
        min_coverage: keep a feature only when at least this share of training documents
            has a non-null value for it (spec: 0.5).
        max_categories: a string feature with more distinct values than this is free text
            and skipped (spec: 20).
        missing: how missing numeric values are filled after scaling: "constant" (spec),
            "mean" or "median".
        missing_value: the constant for `missing="constant"` (spec: 0).
        column: the input column holding the documents.
    """

    def __init__(
        self,
        scaling: str = "min-max",
        min_coverage: float = 0.5,
        max_categories: int = 20,
        missing: str = "constant",
        missing_value: float = 0.0,
        column: str = ANALYSIS_COLUMN,
    ) -> None:
        self.scaling = scaling
        self.min_coverage = min_coverage
        self.max_categories = max_categories
        self.missing = missing
        self.missing_value = missing_value
        self.column = column

    def _typed_frame(self, flat_rows: list[Mapping[str, Any]]) -> pd.DataFrame:
        data: dict[str, Any] = {}
        for name in self.numeric_:
            data[name] = _numeric_column([r.get(name) for r in flat_rows])
        for name in self.boolean_:
            data[name] = _bool_column([r.get(name) for r in flat_rows])
        for name in self.categorical_:
            data[name] = pd.Series(
                [v if isinstance(v := r.get(name), str) else None for r in flat_rows],
                dtype=object,
            )
        return pd.DataFrame(data, index=range(len(flat_rows)))

    def _check_params(self) -> None:
        if self.scaling not in SCALERS:
            raise ValueError(f"scaling must be one of {sorted(SCALERS)}, got {self.scaling!r}")
        if self.missing not in MISSING_STRATEGIES:
            raise ValueError(
                f"missing must be one of {list(MISSING_STRATEGIES)}, got {self.missing!r}"
            )

    def _column_transformer(self) -> ColumnTransformer:
        transformers: list[tuple[str, Any, list[str]]] = []
        if self.numeric_:
            fill = SimpleImputer(
                strategy=self.missing,
                fill_value=self.missing_value,
                keep_empty_features=True,
            )
            scale = Pipeline([("scale", SCALERS[self.scaling]()), ("fill", fill)])
            transformers.append(("num", scale, self.numeric_))
        if self.boolean_:
            absent_is_false = SimpleImputer(
                strategy="constant", fill_value=0.0, keep_empty_features=True
            )
            transformers.append(("bool", absent_is_false, self.boolean_))
        if self.categorical_:
            categories = [self.metadata_[k].values for k in self.categorical_]
            one_hot = OneHotEncoder(
                categories=categories, handle_unknown="ignore", sparse_output=False
            )
            transformers.append(("cat", one_hot, self.categorical_))
        return ColumnTransformer(transformers, verbose_feature_names_out=False)

    def fit(self, X: Any, y: Iterable[float] | None = None) -> AnalysisEncoder:
        """Type the features of the training documents and fit scalers and encoders."""
        self._check_params()
        flat_rows = flatten_rows(X, self.column)
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
        self.columns_ = self._column_transformer()
        self.columns_.fit(self._typed_frame(flat_rows))
        self.feature_names_out_ = np.asarray(self.columns_.get_feature_names_out(), dtype=object)
        self.n_features_in_ = 1
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Encode documents with what `fit` learned; never fails on odd shapes."""
        check_is_fitted(self, "columns_")
        return self.encode_flat(flatten_rows(X, self.column))

    def encode_flat(self, flat_rows: list[Mapping[str, Any]]) -> np.ndarray:
        """`transform` for already flattened rows, computed with numpy from the fitted
        ColumnTransformer's parameters (scaler, fill values, categories).

        Scoring calls this on every request: going through the ColumnTransformer costs a
        DataFrame and a validation pass per column (~10 ms for one document). The result is
        the same; `tests/features/test_tabular.py` checks it against `columns_.transform`.
        """
        return self.encode_with_coverage(flat_rows)[0]

    def encode_with_coverage(
        self, flat_rows: list[Mapping[str, Any]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The encoded matrix and each row's coverage, from one pass over the rows."""
        check_is_fitted(self, "columns_")
        names = [*self.numeric_, *self.boolean_, *self.categorical_]
        n, n_num, n_bool = len(flat_rows), len(self.numeric_), len(self.boolean_)
        table = [[row.get(k) for k in names] for row in flat_rows]  # row-wise: cache friendly
        coverage = np.array([1.0 - row.count(None) / len(names) for row in table])
        columns = list(zip(*table, strict=True)) if n else [() for _ in names]
        blocks = []
        named = self.columns_.named_transformers_
        if n_num:
            values = np.column_stack([_numeric_column(list(c)) for c in columns[:n_num]]).reshape(
                n, n_num
            )
            scaled = _scale(named["num"].named_steps["scale"], values)
            blocks.append(_fill(scaled, named["num"].named_steps["fill"].statistics_))
        if n_bool:
            values = np.column_stack(
                [_bool_column(list(c)) for c in columns[n_num : n_num + n_bool]]
            ).reshape(n, n_bool)
            blocks.append(_fill(values, named["bool"].statistics_))
        if self.categorical_:
            encoder = named["cat"]
            width = sum(len(c) for c in encoder.categories_)
            one_hot = np.zeros((n, width))
            offset = 0
            for column, categories in zip(
                columns[n_num + n_bool :], encoder.categories_, strict=True
            ):
                index = {str(c): j for j, c in enumerate(categories)}
                for i, value in enumerate(column):
                    if isinstance(value, str) and (j := index.get(value)) is not None:
                        one_hot[i, offset + j] = 1.0
                offset += len(categories)
            blocks.append(one_hot)
        matrix = np.hstack(blocks) if blocks else np.empty((n, 0))
        return matrix, coverage

    def coverage(self, X: Any) -> np.ndarray:
        """Share of the model's input features present (non-null) in each document."""
        check_is_fitted(self, "columns_")
        return self.encode_with_coverage(flatten_rows(X, self.column))[1]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Encoded feature names: flattened keys, one-hot columns as `<key>_<category>`."""
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_
