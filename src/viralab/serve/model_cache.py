"""Which model answers: the version the registry names, resolved at most every
`resolve_ttl` seconds, and its loaded pyfunc, one load per process per version; both held
through registry and store outages.

Keep serving: once a process holds a version, a registry that is down or slow never stops it
answering. The re-resolution runs on a worker thread and a call waits for it at most
`REFRESH_WAIT` seconds (not at all while an outage is known); when it fails with a
connection error or does not answer, the held version keeps answering, the outage is logged
once (a warning), and the next try comes after the TTL. When the registry answers again a
second line says so. A registry that answers "no such alias/version" is not an outage: that
error reaches the caller as before. The first resolution (nothing held yet) has nothing to
fall back to and fails as the registry does.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from viralab.config import compose
from viralab.registry.client import RegistryError, get_client, load_pyfunc, resolve_version
from viralab.registry.markers import RegistrySettings, holder
from viralab.serve.ab import clear_cache
from viralab.service_limits import unreachable_message

if TYPE_CHECKING:
    import mlflow.pyfunc
    from mlflow.entities.model_registry import ModelVersion

# the serving path's warnings keep the logger they always had
log = logging.getLogger("viralab.serve.predict")

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


def registry_settings(settings: RegistrySettings | Mapping[str, Any] | None) -> RegistrySettings:
    """`settings` as `RegistrySettings`; None = the project config's `registry` section."""
    if isinstance(settings, RegistrySettings):
        return settings
    if settings is None:
        settings = compose().registry
    return RegistrySettings.from_config(settings)


def _lookup(
    name: str, ref: str | int | None, settings: RegistrySettings | Mapping[str, Any] | None
) -> ModelVersion:
    client = get_client()
    if ref not in (None, ""):
        return resolve_version(client, name, ref)
    reg = registry_settings(settings)
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
    return load_pyfunc(f"models:/{name}/{version}")


def clear_caches() -> None:
    """Forget resolved versions and loaded models (tests, or after a store switch)."""
    with _lock:
        _resolved.clear()
        _loaded.clear()
        _outages.clear()
    load_version.cache_clear()
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
        if first_outage(key):
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


def first_outage(key: tuple[str, str]) -> bool:
    """Whether a model load for `key` failed for the first time since it last succeeded
    (then its warning is logged: once, not on every request)."""
    with _lock:
        first = key not in _outages
        _outages.add(key)
    return first
