"""The registered preference model: raw analysis documents in, score, confidence, factors out.

An MLflow pyfunc wrapping the fitted scikit-learn pipeline (encoder [+ selector] + estimator),
so `models:/preference@champion` — in-process, or behind `mlflow models serve` — takes the same
raw JSON the analysis service produces and answers with spec 000 §7.2's structure:

- `score`: 0-10 (the 0-1 prediction clipped, times 10); `prediction`: the 0-1 value;
- `confidence`: coverage x the model's test R2 (clipped to 0-1), as the spec defines it;
  coverage = the share of the features the model weighs (`serve.explain.weighed_columns`:
  kept by selection, nonzero coefficient / importance) for which the document gives a value
  the encoder can read, an absent `<key>_has_<value>` flag of a present array counting as
  false (`AnalysisEncoder.encode_table`). An odd-shaped document is scored, with lower
  confidence, not rejected;
- `top_factors`: JSON list of {feature, contribution}, |contribution| > 0.02, top 10
  (see `serve.explain`).

Logged as models-from-code: MLflow is given this file's path as `python_model` and runs it
at load time (`mlflow.models.set_model` at the bottom), so the wrapper is code, not a pickle.
The fitted pipeline is an artifact in skops format, loaded with `TRUSTED_TYPES` listed here
in code, not the allow-list the sklearn flavor would read back from the model's own MLmodel
file (MLflow 3.17's own loader warns that a crafted model can whitelist anything there).
Requests are bounded by `viralab.serve.limits` (size, depth, strict params, strict mode).
Scoring runs through `serve.scoring.CompiledScorer`, compiled at load time for the pipeline.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import mlflow.models
import mlflow.pyfunc
import numpy as np
import pandas as pd

from viralab.errors import ConfigError
from viralab.features.documents import ANALYSIS_COLUMN
from viralab.serve import prediction_log as plog  # by module: tests replace its functions
from viralab.serve.explain import Explainer
from viralab.serve.limits import RequestLimitError, ServeLimits, parse_bool
from viralab.serve.scoring import CompiledScorer
from viralab.serve.served_identity import IdentityResolver

PIPELINE_ARTIFACT = "pipeline"
PIPELINE_FILE = "pipeline.skops"
#: Types skops does not trust by default that our pipelines hold: our own transformers and
#: the scikit-learn internals of the estimators `conf/model` names. Anything else in a saved
#: pipeline is refused at logging time (`save_pipeline`) and at loading time (skops).
TRUSTED_TYPES = [
    "numpy.dtype",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.tree._tree.Tree",
    "viralab.features.selection.CorrelationSelector",
    "viralab.features.tabular.AnalysisEncoder",
    "viralab.features.tabular.FeatureMetadata",
]
OUTPUT_COLUMNS = ["prediction", "score", "confidence", "top_factors"]
#: Optional input column beside `ANALYSIS_COLUMN`: labels the logged prediction (not scored).
VIDEO_ID_COLUMN = "video_id"
#: The params the signature declares (MLflow drops undeclared ones); "" = the model's setting.
PARAMS_EXAMPLE = {"top_factors": True, "strict": ""}


def save_pipeline(pipeline: Any, path: str | Path) -> Path:
    """Write the fitted pipeline in skops format, refusing types serving would not trust."""
    import skops.io

    data = skops.io.dumps(pipeline)
    untrusted = sorted(set(skops.io.get_untrusted_types(data=data)) - set(TRUSTED_TYPES))
    if untrusted:
        raise ConfigError(
            f"the pipeline holds types serving does not trust: {', '.join(untrusted)}; "
            "review them and add them to viralab.serve.preference_model.TRUSTED_TYPES"
        )
    path = Path(path)
    path.write_bytes(data)
    return path


def load_pipeline(path: str | Path) -> Any:
    """Read a skops pipeline trusting only `TRUSTED_TYPES` (never the artifact's own list)."""
    import skops.io

    return skops.io.load(path, trusted=TRUSTED_TYPES)


def _as_json_text(value: Any, index: int = 0) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    try:
        return json.dumps(value)
    except RecursionError:  # a dict nested thousands deep, passed in-process
        raise RequestLimitError(f"document {index} nests too deeply to encode") from None
    except (TypeError, ValueError) as exc:
        raise RequestLimitError(f"document {index} is not JSON-like: {exc}") from None


def document_texts(documents: Any) -> list[str]:
    """What a caller sends (dicts, JSON strings, a frame) as one JSON text per document."""
    if isinstance(documents, pd.DataFrame):
        if ANALYSIS_COLUMN not in documents.columns:
            raise ValueError(
                f"input needs a {ANALYSIS_COLUMN!r} column; got {list(documents.columns)}"
            )
        values = documents[ANALYSIS_COLUMN].tolist()
    elif isinstance(documents, dict):
        values = [documents]
    else:
        values = list(documents)
    return [_as_json_text(v, i) for i, v in enumerate(values)]


def documents_frame(documents: Any) -> pd.DataFrame:
    """Coerce what a caller sends (dicts, JSON strings, a frame) to the model's input frame."""
    texts = pd.Series(document_texts(documents), dtype=object)
    return pd.DataFrame({ANALYSIS_COLUMN: texts})


#: Set by MLflow's scoring server (`mlflow models serve`) in the process it serves from.
SERVING_ENV = "_MLFLOW_IS_IN_SERVING_ENVIRONMENT"


def output_frame(columns: dict[str, np.ndarray]) -> pd.DataFrame:
    """`PreferenceModel.output_columns` as the frame `score` returns."""
    return pd.DataFrame(
        columns,
        index=pd.RangeIndex(len(columns["prediction"])),
        copy=False,  # fresh arrays: nothing to protect (a third of a single call's cost)
    )


def served_records(frame: pd.DataFrame | dict[str, Any]) -> list[dict[str, Any]]:
    """The output (a frame, or its columns as arrays) as the list of row dicts MLflow's scoring
    server would make of the frame.

    The server turns a returned DataFrame into JSON with `to_dict(orient="records")`, which
    took about 1 ms of a ~2 ms single-document request (pandas row iteration); handed the
    records, it writes the very same JSON (`tests/serve/test_rest.py`). Under the server the
    pyfunc passes the columns it computed and builds no frame at all: a frame built only to be
    taken apart again cost ~0.1 ms of a single-document request (its construction, then a
    cache-missing `frame[column]` per column)."""
    columns = list(frame.keys())
    values = zip(*(frame[c].tolist() for c in columns), strict=True)
    return [dict(zip(columns, row, strict=True)) for row in values]


class PreferenceModel(mlflow.pyfunc.PythonModel):
    """pyfunc: DataFrame[visual_analysis (JSON text)] -> prediction, score, confidence,
    top_factors (JSON text)."""

    def __init__(
        self, pipeline: Any = None, r2: float | None = None, limits: ServeLimits | None = None
    ) -> None:
        self.pipeline = pipeline
        self.r2 = r2
        self.limits = limits or ServeLimits()
        self._scorer: CompiledScorer | None = None
        self._identity = None

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.pipeline = load_pipeline(context.artifacts[PIPELINE_ARTIFACT])
        config = context.model_config or {}
        if config.get("r2") is not None:
            self.r2 = float(config["r2"])
        self.limits = ServeLimits.from_config(config)
        self._scorer = CompiledScorer(self.pipeline)  # compiled once, at load time
        self._identity = None
        if plog.get_prediction_log() is not None:  # which version, found off the load path
            self._identity = IdentityResolver(context.artifacts, config)

    @property
    def scorer(self) -> CompiledScorer:
        """The scoring path compiled for the current pipeline (built on first use)."""
        if self._scorer is None or self._scorer.pipeline is not self.pipeline:
            self._scorer = CompiledScorer(self.pipeline)
        return self._scorer

    @property
    def explainer(self) -> Explainer:
        return self.scorer.explainer

    def score(
        self, model_input: Any, with_factors: bool = True, strict: bool | None = None
    ) -> pd.DataFrame:
        """Score documents; the shared body of `predict` and `predict_virality_score`.

        Raises:
            RequestLimitError: a document over the size/depth limits, or (strict mode) not
                a JSON object; nothing of the batch is scored then.
        """
        return output_frame(
            self.output_columns(model_input, with_factors=with_factors, strict=strict)
        )

    def output_columns(
        self, model_input: Any, with_factors: bool = True, strict: bool | None = None
    ) -> dict[str, np.ndarray]:
        """`score`'s output as its columns (`OUTPUT_COLUMNS`, in order), before any frame."""
        texts = document_texts(model_input)
        for i, text in enumerate(texts):
            self.limits.check_text(text, i, strict=strict)
        raw, coverage, factors = self.scorer.score(texts, with_factors=with_factors)
        prediction = np.clip(raw, 0.0, 1.0)
        r2 = 1.0 if self.r2 is None else float(np.clip(self.r2, 0.0, 1.0))
        return {
            "prediction": prediction,
            "score": prediction * 10.0,
            "confidence": coverage * r2,
            "top_factors": np.array(factors, dtype=object),
        }

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame | list[dict[str, Any]]:
        params = params or {}
        with_factors = parse_bool(params.get("top_factors", True), "top_factors")
        # "" (the signature's default) keeps the model's own setting (model_config / env)
        raw_strict = params.get("strict", "")
        strict = None if raw_strict in ("", None) else parse_bool(raw_strict, "strict")
        started = time.perf_counter()
        if os.environ.get(SERVING_ENV) == "true":
            # the scoring server only serialises what it gets: hand it the rows, no frame
            columns = self.output_columns(model_input, with_factors=with_factors, strict=strict)
            self._log(model_input, columns, (time.perf_counter() - started) * 1000.0)
            return served_records(columns)
        result = self.score(model_input, with_factors=with_factors, strict=strict)
        self._log(model_input, result, (time.perf_counter() - started) * 1000.0)
        return result

    def _log(
        self, model_input: Any, result: pd.DataFrame | dict[str, np.ndarray], latency_ms: float
    ) -> None:
        """Record the answers (the output frame, or its columns) in the prediction log
        (buffered: no database work here). The optional `video_id` column of the input labels
        them so ratings can judge them."""
        identity = getattr(self, "_identity", None)
        # only a loaded model logs (`load_context` found its identity while the log was on):
        # a wrapper built in code is training's (signature inference), not serving
        prediction_log = None if identity is None else plog.active_log()
        if prediction_log is None:
            return
        served = identity.get()
        if isinstance(result, dict):
            result = pd.DataFrame(result, copy=False)
        if isinstance(model_input, pd.DataFrame) and ANALYSIS_COLUMN in model_input.columns:
            documents = model_input[ANALYSIS_COLUMN].tolist()
            has_ids = VIDEO_ID_COLUMN in model_input.columns
            ids = model_input[VIDEO_ID_COLUMN].tolist() if has_ids else None
        else:
            # as given: the writer thread digests them (no second json.dumps here)
            documents = [model_input] if isinstance(model_input, dict) else list(model_input)
            ids = None
        plog.record_scores(
            prediction_log,
            model=served.model,
            version=served.version,
            marker=served.marker,
            documents=documents,
            video_ids=ids,
            result=result,
            latency_ms=latency_ms,
        )


# Models-from-code: MLflow runs this file at load time and serves the object set here; the
# pipeline and the limits arrive through `load_context`.
mlflow.models.set_model(PreferenceModel())
