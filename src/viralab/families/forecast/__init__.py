"""The stats forecasters (LSTM and peers, spec 002 and issue 16), split by role.

`prepare` (data), `fit` (the LSTM), `peer` (the peer families), `judge` and `evaluate`
(per-horizon judging), `log` (MLflow), `plots`, `train` (the entry), `compare` (the CLI
table). Lab notes behind the defaults: docs/forecasting-notes.md.
"""

from importlib import import_module
from typing import Any

#: The family's interface, by the module that defines it. Resolved on first use (PEP 562):
#: the training modules load TensorFlow and scikit-learn, and `viralab forecasts compare`
#: (the CLI imports `compare` at start-up) needs neither.
_EXPORTS = {
    "Prepared": "prepare",
    "prepare": "prepare",
    "resolve_targets": "prepare",
    "fit_target": "fit",
    "train": "train",
    "train_forecast": "train",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
