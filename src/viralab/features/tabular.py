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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, RobustScaler, StandardScaler
from sklearn.utils.validation import check_is_fitted

from viralab.features.coercion import (
    bool_block,
    bool_column,
    fill_missing,
    numeric_block,
    numeric_column,
    scale_columns,
    value_kinds,
)
from viralab.features.documents import ANALYSIS_COLUMN, flatten_rows
from viralab.features.layout import InputLayout

SCALERS = {"min-max": MinMaxScaler, "z-score": StandardScaler, "robust": RobustScaler}
MISSING_STRATEGIES = ("constant", "mean", "median")


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


#: encoder -> (its `columns_` when computed, layout): a refit replaces `columns_`.
_LAYOUTS: WeakKeyDictionary = WeakKeyDictionary()


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
        kinds = value_kinds(values)
        kind = kinds.most_common(1)[0][0] if kinds else "numeric"
        if kind == "boolean" and kinds["boolean"] == len(values):
            metadata[key] = FeatureMetadata(key, "boolean", null_count, coverage)
        elif kind in {"numeric", "boolean"}:
            column = numeric_column(values)
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
            data[name] = numeric_column([r.get(name) for r in flat_rows])
        for name in self.boolean_:
            data[name] = bool_column([r.get(name) for r in flat_rows])
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

    def layout(self, inputs: np.ndarray | None = None) -> InputLayout:
        """The flat keys encoding reads and how (see `InputLayout`): all inputs (cached per
        fit), or those marked in `inputs` (a boolean mask over `numeric_ + boolean_ +
        categorical_`; the caller keeps it)."""
        check_is_fitted(self, "columns_")
        if inputs is not None:
            return InputLayout.of(self, inputs)
        cached = _LAYOUTS.get(self)
        if cached is None or cached[0] is not self.columns_:
            cached = (self.columns_, InputLayout.of(self))
            _LAYOUTS[self] = cached
        return cached[1]

    def encode_with_coverage(
        self, flat_rows: list[Mapping[str, Any]], weighed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The encoded matrix and each row's coverage (see `encode_table`), from flat rows."""
        keys = self.layout().keys
        return self.encode_table([[row.get(k) for k in keys] for row in flat_rows], weighed)

    def encode_table(
        self,
        table: list[list[Any]],
        weighed: np.ndarray | None = None,
        layout: InputLayout | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Encode rows of raw flat values laid out as `layout.keys` (default: all inputs),
        with coverage; the columns are `layout.output` of the full encoding.

        Both scoring paths end here: the general one builds `table` from `flatten_rows`,
        the compiled one (`viralab.features.compiled`) straight from parsed JSON, so they
        can only differ in how the table is built (tests compare the tables).

        Coverage is the share of the inputs in `weighed` (a boolean mask over the layout's
        inputs; None = all of them) for which the document gives the model a value it can
        read: a finite number for a numeric input, true/false for a boolean, a category
        seen in training for a categorical. A `<key>_has_<value>` flag whose
        array is present (its `<key>_count` is) counts as present-and-false when absent:
        the array was there and lacked the value; when the whole array is absent the flag
        is missing like any other input.
        """
        lay = self.layout() if layout is None else layout
        n, n_num, n_bool, n_cat = len(table), lay.n_num, lay.n_bool, lay.n_cat
        blocks, present = [], []
        if n_num:
            values = numeric_block([r[:n_num] for r in table], n, n_num)
            present.append(np.isfinite(values))
            subset = None if n_num == len(self.numeric_) else lay.num
            blocks.append(fill_missing(scale_columns(lay.scaler, values, subset), lay.num_fill))
        if n_bool:
            end = n_num + n_bool
            values = bool_block([r[n_num:end] for r in table], n, n_bool)
            seen = ~np.isnan(values)
            if lay.flag_count.size:  # has-flags: present when their array's count is
                arrays = np.array(
                    [[r[j] is not None for j in lay.flag_count] for r in table], dtype=bool
                ).reshape(n, lay.flag_count.size)
                seen[:, lay.flag_columns] |= arrays
            present.append(seen)
            blocks.append(fill_missing(values, lay.bool_fill))
        if n_cat:
            start = n_num + n_bool
            one_hot = np.zeros((n, lay.cat_width))
            known = np.zeros((n, n_cat), dtype=bool)
            for c, (index, offset) in enumerate(zip(lay.cat_index, lay.cat_offset, strict=True)):
                for i, row in enumerate(table):
                    value = row[start + c]
                    if isinstance(value, str) and (j := index.get(value)) is not None:
                        one_hot[i, offset + j] = 1.0
                        known[i, c] = True
            present.append(known)
            blocks.append(one_hot)
        matrix = np.hstack(blocks) if blocks else np.empty((n, 0))
        readable = np.hstack(present) if present else np.zeros((n, 0), dtype=bool)
        if weighed is not None:
            readable = readable[:, np.asarray(weighed, dtype=bool)]
        coverage = readable.mean(axis=1) if readable.shape[1] else np.zeros(n)
        return matrix, coverage

    def inputs_of(self, columns: np.ndarray) -> np.ndarray:
        """Which inputs (`numeric_ + boolean_ + categorical_`) feed the encoded columns
        marked in `columns` (a boolean mask over `get_feature_names_out()`): numbers and
        booleans one column each, a categorical any of its one-hot columns."""
        lay = self.layout()
        columns = np.asarray(columns, dtype=bool)
        plain = lay.n_num + lay.n_bool
        cats = [
            bool(columns[plain + offset : plain + offset + len(index)].any())
            for index, offset in zip(lay.cat_index, lay.cat_offset, strict=True)
        ]
        return np.concatenate([columns[:plain], np.asarray(cats, dtype=bool)])

    def coverage(self, X: Any, weighed: np.ndarray | None = None) -> np.ndarray:
        """Each document's coverage of the inputs in `weighed` (all by default)."""
        check_is_fitted(self, "columns_")
        return self.encode_with_coverage(flatten_rows(X, self.column), weighed)[1]

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Encoded feature names: flattened keys, one-hot columns as `<key>_<category>`."""
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_
