"""`predict_virality_score` and forecasts from whatever version the registry says is active.

Loading is cached: one load per process per (model, version). The active version is
re-resolved from the registry (alias `champion`, or stage Production in stage mode) at most
every `resolve_ttl` seconds, so moving the alias — from the CLI or in the MLflow UI — takes
effect in a running process without a restart, and a hot loop does not query the registry on
every call.

Keep serving: once a process holds a version, a registry that is down or slow never stops it
answering. The re-resolution runs on a worker thread and a call waits for it at most
`REFRESH_WAIT` seconds (not at all while an outage is known); when it fails with a
connection error or does not answer, the held version keeps answering, the outage is logged
once (a warning), and the next try comes after the TTL. When the registry answers again a
second line says so. A registry that answers "no such alias/version" is not an outage: that
error reaches the caller as before. The first resolution (nothing held yet) has nothing to
fall back to and fails as the registry does.

Every answer is recorded in the prediction log when it is on (`viralab.serve.prediction_log`:
buffered, written by a background thread, after scoring returns), with its version and
marker and the caller's video id. With `registry.ab.share` > 0, `score_documents` lets the
challenger answer that share of the videos (`viralab.serve.ab`); a request for an explicit
version is never split.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities.model_registry import ModelVersion

from viralab.features.tabular import ANALYSIS_COLUMN
from viralab.registry.client import RegistryError, get_client, resolve_version
from viralab.registry.markers import RegistrySettings, holder
from viralab.serve.ab import arms, challenger
from viralab.serve.limits import check_horizon
from viralab.serve.prediction_log import (
    get_prediction_log,
    record_forecast,
    record_scores,
    suppressed,
)
from viralab.serve.preference_model import output_frame
from viralab.service_limits import unreachable_message

log = logging.getLogger(__name__)

DEFAULT_RESOLVE_TTL = 5.0
#: Seconds a call waits for a re-resolution before answering with the version it holds.
REFRESH_WAIT = 5.0


@dataclass
class _Held:
    """The version a (model, ref) resolves to, when it was last checked, and outage state."""

    checked: float
    version: ModelVersion
    pending: Future | None = None
    outage: bool = False


_resolved: dict[tuple[str, str], _Held] = {}
_loaded: dict[tuple[str, str], tuple[mlflow.pyfunc.PyFuncModel, ModelVersion]] = {}
_outages: set[tuple[str, str]] = set()  # keys whose model load fell back (logged once)
_lock = threading.Lock()


def _in_background(
    name: str, ref: str | int | None, settings: RegistrySettings | Mapping[str, Any] | None
) -> Future:
    """`_lookup` on a daemon thread: a registry that hangs (MLflow retries for minutes by
    default) must neither block callers past `REFRESH_WAIT` nor the process's exit."""
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(_lookup(name, ref, settings))
        except BaseException as exc:  # handed to the caller through the future
            future.set_exception(exc)

    threading.Thread(target=run, name=f"viralab-resolve-{name}", daemon=True).start()
    return future


def _registry_settings(settings: RegistrySettings | Mapping[str, Any] | None) -> RegistrySettings:
    if isinstance(settings, RegistrySettings):
        return settings
    if settings is None:
        from viralab.config import compose

        settings = compose().registry
    return RegistrySettings.from_config(settings)


def _lookup(
    name: str, ref: str | int | None, settings: RegistrySettings | Mapping[str, Any] | None
) -> ModelVersion:
    client = get_client()
    if ref not in (None, ""):
        return resolve_version(client, name, ref)
    reg = _registry_settings(settings)
    version = holder(client, reg, name, "champion")
    if version is None:
        raise RegistryError(
            f"model {name!r} has no active version ({reg.describe('champion')}); promote "
            f"one first: viralab registry promote {name} <version> --to champion"
        )
    return version


def _keep_held(key: tuple[str, str], held: _Held, reason: str) -> ModelVersion:
    with _lock:
        held.checked = time.monotonic()  # next try after the TTL, not on every call
        first = not held.outage
        held.outage = True
    if first:
        log.warning(
            "registry unreachable (%s); %s keeps serving version %s until it answers",
            reason,
            key[0],
            held.version.version,
        )
    return held.version


def resolve(
    name: str,
    ref: str | int | None = None,
    *,
    settings: RegistrySettings | Mapping[str, Any] | None = None,
    resolve_ttl: float = DEFAULT_RESOLVE_TTL,
    refresh_wait: float = REFRESH_WAIT,
) -> ModelVersion:
    """The version to use: `ref` (a number or alias) or else the active one.

    Once a version is held, an unreachable registry keeps it (see the module docstring).

    Raises:
        RegistryError: unknown model/version/alias, or no version is active yet.
    """
    key = (name, str(ref or ""))
    now = time.monotonic()
    with _lock:
        held = _resolved.get(key)
        if held and now - held.checked < resolve_ttl:
            return held.version
        if held is not None and held.pending is None:
            held.pending = _in_background(name, ref, settings)
        future = held.pending if held is not None else None
    if held is None or future is None:
        version = _lookup(name, ref, settings)  # nothing to fall back to: errors propagate
        with _lock:
            _resolved[key] = _Held(time.monotonic(), version)
        return version
    try:
        version = future.result(timeout=0 if held.outage else refresh_wait)
    except FutureTimeout:
        return _keep_held(key, held, f"no answer within {refresh_wait:g} s")
    except Exception as exc:
        with _lock:
            held.pending = None
        message = unreachable_message(exc)
        if message is None:
            raise
        return _keep_held(key, held, message)
    with _lock:
        recovered = held.outage
        _resolved[key] = _Held(time.monotonic(), version)
    if recovered:
        log.warning("registry reachable again; %s resolves to version %s", name, version.version)
    return version


@functools.lru_cache(maxsize=16)
def load_version(name: str, version: str) -> mlflow.pyfunc.PyFuncModel:
    """One load per process per registered version."""
    return mlflow.pyfunc.load_model(f"models:/{name}/{version}")


def clear_caches() -> None:
    """Forget resolved versions and loaded models (tests, or after a store switch)."""
    with _lock:
        _resolved.clear()
        _loaded.clear()
        _outages.clear()
    load_version.cache_clear()
    from viralab.serve.ab import clear_cache

    clear_cache()


def load_model(
    name: str, ref: str | int | None = None, **kwargs: Any
) -> tuple[mlflow.pyfunc.PyFuncModel, ModelVersion]:
    """The model the registry names, or the one already held when a newly named version
    cannot be downloaded because the store is unreachable (logged once)."""
    key = (name, str(ref or ""))
    version = resolve(name, ref, **kwargs)
    try:
        model = load_version(name, str(version.version))
    except Exception as exc:
        held = _loaded.get(key)
        message = unreachable_message(exc)
        if held is None or message is None:
            raise
        with _lock:
            first = key not in _outages
            _outages.add(key)
        if first:
            log.warning(
                "cannot load %s version %s (%s); keeps serving version %s",
                name,
                version.version,
                message,
                held[1].version,
            )
        return held
    with _lock:
        _loaded[key] = (model, version)
        _outages.discard(key)
    return model, version


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
        return _registry_settings(settings)
    from viralab.serve.ab import project_ab_settings

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
        key = (name, f"challenger:{rival.version}")
        with _lock:
            first = key not in _outages
            _outages.add(key)
        if first:
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
