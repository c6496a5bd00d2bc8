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
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from itertools import chain
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


def _scale(scaler: Any, values: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
    """A fitted min-max / z-score / robust scaler's transform as plain arithmetic (NaN kept);
    `columns`: `values` holds only these of the scaler's columns."""
    at = slice(None) if columns is None else columns
    if isinstance(scaler, MinMaxScaler):
        out = values * scaler.scale_[at] + scaler.min_[at]
        if scaler.clip:
            out = np.clip(out, *scaler.feature_range)
        return out
    if isinstance(scaler, StandardScaler):
        out = values - scaler.mean_[at] if scaler.with_mean else values.copy()
        return out / scaler.scale_[at] if scaler.with_std else out
    if isinstance(scaler, RobustScaler):
        out = values - scaler.center_[at] if scaler.with_centering else values.copy()
        return out / scaler.scale_[at] if scaler.with_scaling else out
    if columns is None:
        return np.asarray(scaler.transform(values), dtype=float)
    full = np.full((len(values), scaler.n_features_in_), np.nan)
    full[:, columns] = values
    return np.asarray(scaler.transform(full), dtype=float)[:, columns]


def _fill(values: np.ndarray, statistics: np.ndarray) -> np.ndarray:
    """SimpleImputer's transform: each NaN takes its column's fitted fill value."""
    return np.where(np.isnan(values), np.asarray(statistics, dtype=float), values)


def _numeric_block(rows: list[list[Any]], n: int, width: int) -> np.ndarray:
    """`_numeric_column` over every column at once: one numpy conversion of the whole block
    when it converts (as each column then would), else column by column, exactly as there."""
    try:
        values = np.array(rows, dtype=float).reshape(n, width)
    except (TypeError, ValueError):
        columns = list(zip(*rows, strict=True)) if n else [() for _ in range(width)]
        return np.column_stack([_numeric_column(list(c)) for c in columns]).reshape(n, width)
    values[~np.isfinite(values)] = np.nan
    return values


def _bool_block(rows: list[list[Any]], n: int, width: int) -> np.ndarray:
    """`_bool_column` over every column at once (the usual block of booleans and None)."""
    if set(map(type, chain.from_iterable(rows))) <= {bool, type(None)}:
        return np.array(rows, dtype=float).reshape(n, width)
    columns = list(zip(*rows, strict=True)) if n else [() for _ in range(width)]
    return np.column_stack([_bool_column(list(c)) for c in columns]).reshape(n, width)


_SANITIZED = re.compile(r"[a-z0-9_]{0,30}")


def has_flag_array(name: str, known: Mapping[str, Any]) -> str | None:
    """The array key whose `<key>_has_<value>` flag `name` is, when `<key>_count` is a key
    in `known` (the training rows' keys); None for anything else. The rightmost "_has_"
    that fits wins ("a_has_b_has_c" with array "a_has_b" seen -> "a_has_b")."""
    at = name.rfind("_has_")
    while at >= 0:
        array = name[:at]
        if f"{array}_count" in known and _SANITIZED.fullmatch(name[at + 5 :]):
            return array
        at = name.rfind("_has_", 0, at)
    return None


@dataclass(frozen=True)
class InputLayout:
    """What encoding reads from a flat row, in order: `keys` = the inputs (numeric, boolean,
    categorical: all of `numeric_ + boolean_ + categorical_`, or the subset a scorer needs)
    then the `<key>_count` of each has-flag's array that is not itself an input (coverage
    asks whether the array was present). `output` says where the encoded columns sit in the
    full encoder's output. Derived from the fitted encoder on use and never stored with it
    (the saved model keeps its fitted state only)."""

    keys: tuple[str, ...]
    num: np.ndarray  # positions in `numeric_` (and the scaler's columns)
    boolean: np.ndarray  # positions in `boolean_`
    cat: np.ndarray  # positions in `categorical_`
    flag_columns: np.ndarray  # positions within the boolean block of the has-flags
    flag_count: np.ndarray  # their arrays' `_count` positions in `keys`
    cat_index: tuple[dict[str, int], ...]
    cat_offset: tuple[int, ...]  # within this layout's one-hot block
    cat_width: int
    output: np.ndarray  # the encoded columns' positions in `get_feature_names_out()`
    scaler: Any  # the fitted numeric scaler (None without numeric inputs)
    num_fill: np.ndarray  # fill values of this layout's numeric inputs (after scaling)
    bool_fill: np.ndarray  # and of its boolean ones

    @property
    def n_num(self) -> int:
        return len(self.num)

    @property
    def n_bool(self) -> int:
        return len(self.boolean)

    @property
    def n_cat(self) -> int:
        return len(self.cat)

    @classmethod
    def of(cls, encoder: AnalysisEncoder, inputs: np.ndarray | None = None) -> InputLayout:
        n_num, n_bool = len(encoder.numeric_), len(encoder.boolean_)
        everything = [*encoder.numeric_, *encoder.boolean_, *encoder.categorical_]
        chosen = np.ones(len(everything), dtype=bool) if inputs is None else inputs
        chosen = np.asarray(chosen, dtype=bool)
        num = np.flatnonzero(chosen[:n_num])
        boolean = np.flatnonzero(chosen[n_num : n_num + n_bool])
        cat = np.flatnonzero(chosen[n_num + n_bool :])
        keys = [everything[i] for i in np.flatnonzero(chosen)]
        position = {k: i for i, k in enumerate(keys)}
        flag_columns, flag_count = [], []
        for b, at in enumerate(boolean):
            array = has_flag_array(encoder.boolean_[at], encoder.metadata_)
            if array is None:
                continue
            count = f"{array}_count"
            if count not in position:
                position[count] = len(keys)
                keys.append(count)
            flag_columns.append(b)
            flag_count.append(position[count])
        cat_index, cat_offset, width = [], [], 0
        output = [*num, *(n_num + boolean)]
        if encoder.categorical_:
            all_categories = encoder.columns_.named_transformers_["cat"].categories_
            starts = np.cumsum([0, *map(len, all_categories)]) + n_num + n_bool
            for c in cat:
                categories = all_categories[c]
                cat_index.append({str(v): j for j, v in enumerate(categories)})
                cat_offset.append(width)
                width += len(categories)
                output.extend(range(starts[c], starts[c] + len(categories)))
        named = encoder.columns_.named_transformers_  # a new Bunch per access: read once
        numeric = named["num"].named_steps if encoder.numeric_ else None
        return cls(
            tuple(keys),
            num,
            boolean,
            cat,
            np.asarray(flag_columns, dtype=int),
            np.asarray(flag_count, dtype=int),
            tuple(cat_index),
            tuple(cat_offset),
            width,
            np.asarray(output, dtype=int),
            numeric["scale"] if numeric else None,
            numeric["fill"].statistics_[num] if numeric else np.empty(0),
            named["bool"].statistics_[boolean] if encoder.boolean_ else np.empty(0),
        )


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
            values = _numeric_block([r[:n_num] for r in table], n, n_num)
            present.append(np.isfinite(values))
            subset = None if n_num == len(self.numeric_) else lay.num
            blocks.append(_fill(_scale(lay.scaler, values, subset), lay.num_fill))
        if n_bool:
            end = n_num + n_bool
            values = _bool_block([r[n_num:end] for r in table], n, n_bool)
            seen = ~np.isnan(values)
            if lay.flag_count.size:  # has-flags: present when their array's count is
                arrays = np.array(
                    [[r[j] is not None for j in lay.flag_count] for r in table], dtype=bool
                ).reshape(n, lay.flag_count.size)
                seen[:, lay.flag_columns] |= arrays
            present.append(seen)
            blocks.append(_fill(values, lay.bool_fill))
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
