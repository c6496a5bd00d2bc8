"""The preference model's scoring path, compiled once per loaded pipeline.

`PreferenceModel.score` used to go text -> `flatten_rows` (every key of every document) ->
`encode_with_coverage` -> selection step -> estimator -> one `top_factors` + `json.dumps`
per row. `CompiledScorer` keeps the arithmetic and swaps the plumbing for what the fitted
pipeline allows since it is fixed once loaded:

- parse with orjson and flatten only the keys the encoder reads (`CompiledFlattener`);
- encode with the encoder's own `encode_table` (the same code the general path ends in);
- select columns by index (what the selection steps' `transform` does, without the
  validation pass per call);
- top factors for all rows at once (`top_factors_json`).

The stages are separate methods so `benchmarks/predict.py` can time each one. Results equal
the general path's (`tests/serve/test_scoring.py`).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from sklearn.linear_model import LinearRegression, Ridge

from viralab.features.compiled import CompiledFlattener, parse_json
from viralab.serve.explain import Explainer, factor_heads, top_factors_json, weighed_columns

#: Documents scored together: large enough for numpy to pay off, small enough to stay in cache.
CHUNK = 256


class CompiledScorer:
    """Scores JSON texts with one fitted pipeline (encoder [+ selectors] + estimator)."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.encoder = encoder = pipeline.named_steps["features"]
        self.estimator = pipeline[-1]
        selected = _selected_columns(pipeline)
        if selected is None:  # every encoded column reaches the estimator (or is mixed)
            needed = encoder.inputs_of(np.ones(len(encoder.get_feature_names_out()), bool))
        else:
            columns = np.zeros(len(encoder.get_feature_names_out()), dtype=bool)
            columns[selected] = True
            needed = encoder.inputs_of(columns)
        #: only the inputs behind the estimator's columns are flattened and encoded
        self.layout = encoder.layout(needed)
        self.flattener = CompiledFlattener(self.layout.keys)
        self.weighed = encoder.inputs_of(weighed_columns(pipeline))[needed]
        self.transform_rest = selected is None and len(pipeline) > 2
        self.selected = None
        if selected is not None:  # positions of the selected columns in the layout's output
            at = {column: i for i, column in enumerate(self.layout.output)}
            self.selected = np.asarray([at[column] for column in selected], dtype=int)
        self._explainer: Explainer | None = None
        self._heads: list[str] | None = None
        self._linear = type(self.estimator) in (Ridge, LinearRegression)

    @property
    def explainer(self) -> Explainer:
        if self._explainer is None:
            self._explainer = Explainer(self.pipeline)
        return self._explainer

    # --- stages (timed one by one by the benchmark) -----------------------------------------

    def parse(self, texts: Sequence[str | bytes]) -> list[Any]:
        return [parse_json(text) for text in texts]

    def flatten(self, documents: Sequence[Any]) -> list[list[Any]]:
        row = self.flattener.row
        return [row(document) for document in documents]

    def encode(self, table: list[list[Any]]) -> tuple[np.ndarray, np.ndarray]:
        """The estimator's input (after selection) and each row's coverage of what it weighs."""
        encoded, coverage = self.encoder.encode_table(table, self.weighed, self.layout)
        if self.selected is not None:
            encoded = encoded[:, self.selected]
        elif self.transform_rest:
            encoded = self.pipeline[1:-1].transform(encoded)
        return encoded, coverage

    def predict(self, encoded: np.ndarray) -> np.ndarray:
        """The estimator's raw prediction (not yet clipped).

        Ridge and LinearRegression: their `predict` is `X @ coef_ + intercept_` after
        `validate_data`, whose checks (~0.2 ms a call through narwhals/inspect) cannot fail
        on what `encode` returns except for non-finite values; those still go through
        `predict`, which refuses them as before.
        """
        if self._linear and np.isfinite(encoded).all():
            coef = self.estimator.coef_
            return np.asarray(
                (encoded @ coef if coef.ndim == 1 else encoded @ coef.T)
                + self.estimator.intercept_,
                dtype=float,
            )
        return np.asarray(self.estimator.predict(encoded), dtype=float)

    def explain(self, encoded: np.ndarray) -> list[str]:
        """Each row's top factors as JSON text ("[]" for models without contributions)."""
        contributions = self.explainer.explain(encoded)
        if contributions is None:
            return ["[]"] * len(encoded)
        if self._heads is None:
            self._heads = factor_heads(contributions.names)
        return top_factors_json(contributions, heads=self._heads)

    # --- all of it --------------------------------------------------------------------------

    def score(
        self, texts: Sequence[str | bytes], with_factors: bool = True
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Raw predictions, coverage and top-factor texts for JSON texts (parsed and
        flattened one by one, so each parsed document is freed at once), `CHUNK` documents
        at a time: a 10,000-document batch in one piece kept every flat row and matrix out of
        the CPU's caches (measured: 17-20k documents/s whole, 21-22k in chunks of 250)."""
        if len(texts) <= CHUNK:
            return self._score_chunk(texts, with_factors)
        parts = [
            self._score_chunk(texts[i : i + CHUNK], with_factors)
            for i in range(0, len(texts), CHUNK)
        ]
        return (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            [text for p in parts for text in p[2]],
        )

    def _score_chunk(
        self, texts: Sequence[str | bytes], with_factors: bool
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        with gc_paused():
            encoded, coverage = self.encode(self.flattener.rows(texts))
            raw = self.predict(encoded)
            factors = self.explain(encoded) if with_factors else ["[]"] * len(raw)
        return raw, coverage, factors


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch is scored.

    Parsing allocates ~20 containers per document and the rows live until the batch is
    encoded, so the collector ran its generations over a growing heap again and again
    (measured: parsing 3-10x slower in a 10,000-document batch than one at a time). Nothing
    on this path makes reference cycles; refcounting frees it all. Re-enabled only by the
    caller that disabled it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _selected_columns(pipeline: Any) -> np.ndarray | None:
    """The encoder's output columns the estimator sees, when every step between them is a
    column selector (`get_support`); None when there is none, or a step transforms values."""
    middle = pipeline.steps[1:-1]
    if not middle:
        return None
    index = np.arange(len(pipeline.named_steps["features"].get_feature_names_out()))
    for _, step in middle:
        if not hasattr(step, "get_support"):
            return None
        index = index[np.asarray(step.get_support(), dtype=bool)]
    return index
