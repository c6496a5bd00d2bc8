"""A/B between champion and challenger: which arm answers a request, deterministically.

The arm is a function of the request's key alone (`registry.ab.key`, the video id): sha256 of
``"<model>:<key>"`` read as a uniform number in [0, 1), challenger when it is below the share.
So a video always sees the same version (its ratings then judge one version, not a mix), the
split needs no state shared between processes or servers, and widening the share only moves
videos from champion to challenger, never back. Requests without the key go to the champion.

The challenger is whoever holds the challenger marker (alias or stage, `registry.markers`),
looked up at most every `CHALLENGER_TTL` seconds; with none, or a registry that cannot say,
every request goes to the champion.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from viralab.config import compose
from viralab.registry.client import get_client
from viralab.registry.markers import AbSettings, RegistrySettings, holder

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)

CHALLENGER_TTL = 5.0
_SCALE = float(2**64)

_challengers: dict[str, tuple[float, ModelVersion | None]] = {}
_lock = threading.Lock()


def bucket(model: str, key: Any) -> float:
    """The key's position in [0, 1): stable across processes, machines and Python versions
    (sha256, not `hash()`, which is salted per process)."""
    raw = hashlib.sha256(f"{model}:{key}".encode()).digest()
    return int.from_bytes(raw[:8], "big") / _SCALE


def to_challenger(model: str, key: Any, share: float) -> bool:
    """Whether the request keyed `key` goes to the challenger (never without a key)."""
    if key is None or key == "" or share <= 0.0:
        return False
    return bucket(model, key) < share


def arms(model: str, keys: Sequence[Any] | None, share: float, n: int) -> list[bool]:
    """Per request: True = challenger. `keys` None (no key known) = all champion."""
    if keys is None or share <= 0.0:
        return [False] * n
    return [to_challenger(model, k, share) for k in keys]


@functools.lru_cache(maxsize=1)
def project_ab_settings() -> tuple[RegistrySettings, AbSettings]:
    """The project's registry settings (read once per process: restart to change the share)."""
    settings = RegistrySettings.from_config(compose().registry)
    return settings, settings.ab


def challenger(model: str, settings: RegistrySettings) -> ModelVersion | None:
    """Who holds the challenger marker now (cached `CHALLENGER_TTL` s); None when nobody does
    or the registry cannot say (then the champion answers everything, logged once)."""
    now = time.monotonic()
    with _lock:
        cached = _challengers.get(model)
        if cached is not None and now - cached[0] < CHALLENGER_TTL:
            return cached[1]
    try:
        version = holder(get_client(), settings, model, "challenger")
    except Exception as exc:  # the split is optional: never fail a request for it
        if cached is None or cached[1] is not None:
            log.warning("A/B: cannot find %s's challenger (%s); champion answers all", model, exc)
        version = None
    with _lock:
        _challengers[model] = (time.monotonic(), version)
    return version


def clear_cache() -> None:
    with _lock:
        _challengers.clear()
    project_ab_settings.cache_clear()
