"""What callers pass -> the raw analysis documents, and those documents flattened.

Training, scoring and monitoring accept a DataFrame with the analysis column, a Series, one
mapping or a list of documents (dicts or JSON strings); this is the one place that tells
them apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from viralab.features.flatten import flatten_document

ANALYSIS_COLUMN = "visual_analysis"


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
