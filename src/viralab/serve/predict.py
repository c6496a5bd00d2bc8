"""`predict_virality_score` and forecasts from whatever version the registry says is active.

Loading is cached: one load per process per (model, version). The active version is
re-resolved from the registry (alias `champion`, or stage Production in stage mode) at most
every `resolve_ttl` seconds, so moving the alias — from the CLI or in the MLflow UI — takes
effect in a running process without a restart, and a hot loop does not query the registry on
every call. Once a process holds a version, a registry or store that is down never stops it
answering (`viralab.serve.model_cache`, whose names are importable from here too).

Every answer is recorded in the prediction log when it is on (`viralab.serve.prediction_log`:
buffered, written by a background thread, after scoring returns), with its version and
marker and the caller's video id. With `registry.ab.share` > 0, `score_documents` lets the
challenger answer that share of the videos (`viralab.serve.ab`); a request for an explicit
version is never split.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from viralab.features.documents import ANALYSIS_COLUMN
from viralab.registry.markers import RegistrySettings
from viralab.serve.ab import arms, challenger, project_ab_settings
from viralab.serve.limits import check_horizon
from viralab.serve.model_cache import (
    DEFAULT_RESOLVE_TTL,
    REFRESH_WAIT,
    clear_caches,
    first_outage,
    load_model,
    load_version,
    registry_settings,
    resolve,
)
from viralab.serve.prediction_log import (
    get_prediction_log,
    record_forecast,
    record_scores,
    suppressed,
)
from viralab.serve.preference_model import output_frame
from viralab.service_limits import unreachable_message

if TYPE_CHECKING:
    import mlflow
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_RESOLVE_TTL",
    "REFRESH_WAIT",
    "clear_caches",
    "forecast",
    "load_model",
    "load_version",
    "predict_virality_score",
    "resolve",
    "score_documents",
]


def _marker_of(ref: str | int | None) -> str:
    """How a request named its version: the active one, an alias, or an explicit ref."""
    if ref in (None, ""):
        return "champion"
    return str(ref) if str(ref) in ("champion", "challenger") else "explicit"


def _as_documents(documents: Any) -> tuple[list[Any], list[Any] | None]:
    """The documents as a list (the A/B split indexes them), and a frame's video ids."""
    if isinstance(documents, pd.DataFrame):
        ids = documents["video_id"].tolist() if "video_id" in documents.columns else None
        return documents[ANALYSIS_COLUMN].tolist(), ids
    if isinstance(documents, dict | str | bytes):
        return [documents], None
    return list(documents), None


def _ab_settings(settings: RegistrySettings | Mapping[str, Any] | None) -> RegistrySettings | None:
    """The registry settings whose `ab` section applies; None when they cannot be read (the
    split is optional: a config that cannot be composed leaves every request to the champion,
    and the first resolution reports the config problem itself)."""
    if settings is not None:
        return registry_settings(settings)
    try:
        return project_ab_settings()[0]
    except Exception as exc:
        log.warning("A/B settings not read (%s): the champion answers every request", exc)
        return None


def _challenger_model(name: str, rival: ModelVersion) -> mlflow.pyfunc.PyFuncModel | None:
    """The challenger's model, or None (its share goes to the champion) when it cannot be
    loaded: the split is optional, a request must not fail for it (logged once)."""
    try:
        return load_version(name, str(rival.version))
    except Exception as exc:
        if first_outage((name, f"challenger:{rival.version}")):
            log.warning(
                "A/B: cannot load %s version %s (%s); the champion answers its share",
                name,
                rival.version,
                unreachable_message(exc) or exc,
            )
        return None


def _score_arm(
    pyfunc: mlflow.pyfunc.PyFuncModel,
    documents: list[Any],
    with_factors: bool,
    *,
    name: str,
    version: str | int,
    marker: str,
    video_ids: list[Any] | None,
) -> pd.DataFrame:
    """Score with one version and log the answers (after scoring: the log never delays it)."""
    started = time.perf_counter()
    model = pyfunc.unwrap_python_model()
    if hasattr(model, "output_columns"):
        # the columns first: the log reads them as arrays (a frame's column lookups cost
        # more than the rest of logging a request)
        columns = model.output_columns(documents, with_factors=with_factors)
        result = output_frame(columns)
    else:  # a model of its own kind with only `score`
        columns = result = model.score(documents, with_factors=with_factors)
    prediction_log = get_prediction_log()
    if prediction_log is not None:
        record_scores(
            prediction_log,
            model=name,
            version=version,
            marker=marker,
            documents=documents,
            video_ids=video_ids,
            result=columns,
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )
    return result


def score_documents(
    documents: Any,
    *,
    model_name: str = "preference",
    ref: str | int | None = None,
    with_factors: bool = True,
    video_ids: Sequence[Any] | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Score many documents (dicts or JSON text) with the active preference model.

    `video_ids` (one per document, None where unknown; a frame's `video_id` column otherwise)
    label the logged predictions, so ratings that arrive later judge them, and key the A/B
    split: with `registry.ab.share` > 0 and a challenger, that share of the videos is answered
    by the challenger (see `viralab.serve.ab`). An explicit `ref` is never split.
    """
    model, version = load_model(model_name, ref, **kwargs)
    if isinstance(documents, pd.DataFrame) and ANALYSIS_COLUMN not in documents.columns:
        return model.unwrap_python_model().score(documents, with_factors=with_factors)  # raises
    docs, frame_ids = _as_documents(documents)
    ids = list(video_ids) if video_ids is not None else frame_ids
    if ids is not None and len(ids) != len(docs):
        raise ValueError(f"{len(ids)} video ids for {len(docs)} documents")
    marker = _marker_of(ref)
    routes: list[bool] | None = None
    rival = rival_model = None
    if ref in (None, "") and ids is not None:
        reg = _ab_settings(kwargs.get("settings"))
        if reg is not None and reg.ab.enabled:
            rival = challenger(model_name, reg)
            if rival is not None and str(rival.version) != str(version.version):
                routes = arms(model_name, ids, reg.ab.share, len(docs))
                rival_model = _challenger_model(model_name, rival) if any(routes) else None
                if rival_model is None:
                    routes = None
    if not routes or not any(routes):
        return _score_arm(
            model, docs, with_factors, name=model_name, version=version.version,
            marker=marker, video_ids=ids,
        )  # fmt: skip
    assert rival is not None and rival_model is not None
    parts = []
    for arm, pyfunc, held, label in (
        (False, model, version, "champion"),
        (True, rival_model, rival, "challenger"),
    ):
        index = [i for i, r in enumerate(routes) if r is arm]
        if not index:
            continue
        part = _score_arm(
            pyfunc,
            [docs[i] for i in index],
            with_factors,
            name=model_name,
            version=held.version,
            marker=label,
            video_ids=[ids[i] for i in index],
        )
        part.index = index
        parts.append(part)
    return pd.concat(parts).sort_index().reset_index(drop=True)


def predict_virality_score(
    analysis: Mapping[str, Any] | str,
    *,
    model_name: str = "preference",
    ref: str | int | None = None,
    video_id: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """Spec 000 §7.2: `{score (0-10), confidence, top_factors: [{feature, contribution}]}`.

    `video_id` labels the logged prediction (ratings arriving later judge it) and keys A/B.
    """
    out = score_documents(
        [analysis],
        model_name=model_name,
        ref=ref,
        video_ids=None if video_id is None else [video_id],
        **kwargs,
    )
    # column by column: `.iloc[0]` of a mixed frame builds a Series (~50 us of ~450)
    return {
        "score": float(out["score"].iat[0]),
        "confidence": float(out["confidence"].iat[0]),
        "top_factors": json.loads(out["top_factors"].iat[0]),
    }


def forecast(
    rows: pd.DataFrame,
    *,
    target: str = "views",
    horizon: int = 1,
    model_prefix: str = "youtube-lstm-",
    ref: str | int | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """Roll a forecaster forward `horizon` minutes from one video's recent rows."""
    horizon = check_horizon(horizon)  # before any work: the cost grows with the horizon
    name = f"{model_prefix}{target}"
    model, version = load_model(name, ref, **kwargs)
    started = time.perf_counter()
    with suppressed():  # the pyfunc would log too, without knowing the marker
        result = pd.DataFrame(model.predict(rows, params={"horizon": horizon}))
    prediction_log = get_prediction_log()
    if prediction_log is not None:
        record_forecast(
            prediction_log,
            model=name,
            version=version.version,
            marker=_marker_of(ref),
            rows=rows,
            result=result,
            latency_ms=(time.perf_counter() - started) * 1000.0,
        )
    return result
