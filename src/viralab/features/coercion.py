"""Raw flat values -> numbers, the same way in fit, transform and the compiled scoring path.

A value that does not fit its feature's type is missing (NaN), never an error: numeric
strings are parsed, booleans count as 0/1 in numeric features, boolean features also read
"true"/"false" and 0/1. The block and scaling helpers are the fitted scikit-learn steps'
transforms as plain numpy (the per-request path cannot afford a DataFrame per column).
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import chain
from typing import Any

import numpy as np
from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler


def as_number(value: Any) -> float | None:
    """A finite number from a number, boolean or numeric string; None otherwise."""
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


def as_bool(value: Any) -> float | None:
    """1.0/0.0 from a boolean, 0/1 or "true"/"false"; None otherwise."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and value in (0, 1):
        return float(value)
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return float(value.strip().lower() == "true")
    return None


def value_kind(value: Any) -> str:
    """How a training value votes on its feature's type."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "numeric"
    if isinstance(value, str):
        return "numeric" if as_number(value) is not None else "string"
    return "other"


def value_kinds(values: list[Any]) -> Counter:
    """How many values of each kind; plain numbers and plain booleans skip the per-value test."""
    types = set(map(type, values))
    if types and types <= {int, float}:
        return Counter({"numeric": len(values)})
    if types == {bool}:
        return Counter({"boolean": len(values)})
    return Counter(value_kind(v) for v in values)


def numeric_column(values: list[Any]) -> np.ndarray:
    """`as_number` over a column; numpy converts the usual all-number column in one go."""
    try:
        column = np.array(values, dtype=float)
    except (TypeError, ValueError):
        column = None
    if column is None or column.shape != (len(values),):
        return np.array([as_number(v) for v in values], dtype=float)
    column[~np.isfinite(column)] = np.nan
    return column


def bool_column(values: list[Any]) -> np.ndarray:
    """`as_bool` over a column; a column of booleans and None converts in one go."""
    if set(map(type, values)) <= {bool, type(None)}:
        return np.array(values, dtype=float)
    return np.array([as_bool(v) for v in values], dtype=float)


def scale_columns(scaler: Any, values: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
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


def fill_missing(values: np.ndarray, statistics: np.ndarray) -> np.ndarray:
    """SimpleImputer's transform: each NaN takes its column's fitted fill value."""
    return np.where(np.isnan(values), np.asarray(statistics, dtype=float), values)


def numeric_block(rows: list[list[Any]], n: int, width: int) -> np.ndarray:
    """`numeric_column` over every column at once: one numpy conversion of the whole block
    when it converts (as each column then would), else column by column, exactly as there."""
    try:
        values = np.array(rows, dtype=float).reshape(n, width)
    except (TypeError, ValueError):
        columns = list(zip(*rows, strict=True)) if n else [() for _ in range(width)]
        return np.column_stack([numeric_column(list(c)) for c in columns]).reshape(n, width)
    values[~np.isfinite(values)] = np.nan
    return values


def bool_block(rows: list[list[Any]], n: int, width: int) -> np.ndarray:
    """`bool_column` over every column at once (the usual block of booleans and None)."""
    if set(map(type, chain.from_iterable(rows))) <= {bool, type(None)}:
        return np.array(rows, dtype=float).reshape(n, width)
    columns = list(zip(*rows, strict=True)) if n else [() for _ in range(width)]
    return np.column_stack([bool_column(list(c)) for c in columns]).reshape(n, width)
