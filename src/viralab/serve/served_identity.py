"""Which registered model and version a loaded pyfunc is, so its log rows can say so.

`mlflow models serve -m models:/preference@champion` hands the pyfunc only its artifacts and
`model_config`, never the URI it was loaded from. The identity is found, in this order:

1. `model_config` keys ``registered_model_name`` / ``registered_model_version`` /
   ``registered_model_marker`` (`mlflow models serve` has no flag for them; in-process:
   `mlflow.pyfunc.load_model(uri, model_config={...})`);
2. environment ``VIRALAB_SERVED_MODEL`` / ``VIRALAB_SERVED_VERSION`` /
   ``VIRALAB_SERVED_MARKER`` (set them beside `mlflow models serve` to pin the label);
3. the registry: the model directory's ``MLmodel`` names its run and logged-model id, and the
   registered version whose ``model_id`` (else ``run_id``) matches is the one served; its
   marker is champion/challenger when it held that alias at load time, else ``explicit``.

The registry lookup runs on a daemon thread started at load time (only when the prediction log
is on), so loading never waits on the registry; the first logged request waits at most
`IDENTITY_WAIT` seconds for it, and rows are labelled ``unknown`` / no version if it failed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from viralab.tracking.store import logged_model_version

log = logging.getLogger(__name__)

IDENTITY_WAIT = 5.0
MARKERS = ("champion", "challenger")


@dataclass(frozen=True)
class ServedIdentity:
    model: str
    version: int | None
    marker: str


UNKNOWN = ServedIdentity("unknown", None, "explicit")


def _from_mapping(values: Mapping[str, Any], keys: tuple[str, str, str]) -> ServedIdentity | None:
    name = values.get(keys[0])
    if not name:
        return None
    version = values.get(keys[1])
    try:
        number = int(version) if version not in (None, "") else None
    except (TypeError, ValueError):
        number = None
    return ServedIdentity(str(name), number, str(values.get(keys[2]) or "explicit"))


def _model_dir(artifacts: Mapping[str, str]) -> Path | None:
    """The folder holding ``MLmodel``, found from any artifact's local path."""
    for path in artifacts.values():
        for parent in Path(path).resolve().parents:
            if (parent / "MLmodel").exists():
                return parent
    return None


def from_registry(artifacts: Mapping[str, str]) -> ServedIdentity:
    """The registered version whose logged model (else run) is this one."""
    folder = _model_dir(artifacts)
    if folder is None:
        return UNKNOWN
    mv = logged_model_version(str(folder / "MLmodel"))
    if mv is None:
        return UNKNOWN
    aliases = set(mv.aliases or [])
    marker = next((m for m in MARKERS if m in aliases), "explicit")
    if marker == "explicit" and mv.current_stage in ("Production", "Staging"):
        marker = "champion" if mv.current_stage == "Production" else "challenger"
    return ServedIdentity(mv.name, int(mv.version), marker)


class IdentityResolver:
    """Starts the lookup at load time; `get()` waits for it once, at most `IDENTITY_WAIT`."""

    def __init__(self, artifacts: Mapping[str, str], model_config: Mapping[str, Any]) -> None:
        self._known = _from_mapping(
            model_config,
            ("registered_model_name", "registered_model_version", "registered_model_marker"),
        ) or _from_mapping(
            os.environ, ("VIRALAB_SERVED_MODEL", "VIRALAB_SERVED_VERSION", "VIRALAB_SERVED_MARKER")
        )
        self._future: Future | None = None
        if self._known is None:
            self._future = Future()
            import threading

            threading.Thread(
                target=self._lookup, args=(dict(artifacts),), name="viralab-identity", daemon=True
            ).start()

    def _lookup(self, artifacts: dict[str, str]) -> None:
        assert self._future is not None
        try:
            self._future.set_result(from_registry(artifacts))
        except Exception as exc:  # labelled unknown; serving is not affected
            log.warning("prediction log: cannot tell which registered version is served: %s", exc)
            self._future.set_result(UNKNOWN)

    def get(self) -> ServedIdentity:
        if self._known is not None:
            return self._known
        assert self._future is not None
        try:
            self._known = self._future.result(timeout=IDENTITY_WAIT)
        except FutureTimeout:
            return UNKNOWN  # asked again on the next request
        return self._known
