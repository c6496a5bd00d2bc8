"""Whether this process logs its predictions: ``VIRALAB_PREDICTION_LOG=on|off`` wins; else
the config's `tracking.prediction_log` (true/false; null = automatic); automatic = on when
MLflow tracks to a server (an http(s) ``MLFLOW_TRACKING_URI``, i.e. a `tracking=server`
deployment), off for the embedded SQLite store."""

from __future__ import annotations

import os

from viralab.config import compose

ENV_SWITCH = "VIRALAB_PREDICTION_LOG"

_ON = {"1", "on", "true", "yes"}
_OFF = {"0", "off", "false", "no"}


def parse_switch(value: str | None) -> bool | None:
    """on/off words as True/False; None for anything else (unset: the next rule decides)."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in _ON:
        return True
    if text in _OFF:
        return False
    return None


def _config_switch() -> bool | None:
    """`tracking.prediction_log` of the project config (None: unset, null, or no config)."""
    try:
        value = compose().tracking.get("prediction_log")
    except Exception:  # no config here (a bare model server): the automatic rule decides
        return None
    return None if value is None else parse_switch(str(value))


def is_server_uri(uri: str | None) -> bool:
    return bool(uri) and str(uri).lower().startswith(("http://", "https://"))


def logging_enabled() -> bool:
    """``VIRALAB_PREDICTION_LOG`` if set, else `tracking.prediction_log`, else whether MLflow
    tracks to a server."""
    explicit = parse_switch(os.environ.get(ENV_SWITCH))
    if explicit is not None:
        return explicit
    configured = _config_switch()
    if configured is not None:
        return configured
    # lazy: the writer process imports this package and never needs MLflow (a heavy import)
    from viralab.tracking.store import tracking_uri

    return is_server_uri(tracking_uri())
