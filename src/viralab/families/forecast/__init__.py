"""The stats forecasters (LSTM and peers, spec 002 and issue 16), split by role.

`prepare` (data), `fit` (the LSTM), `peer` (the peer families), `judge` and `evaluate`
(per-horizon judging), `log` (MLflow), `plots`, `train` (the entry), `compare` (the CLI
table). Lab notes behind the defaults: docs/forecasting-notes.md.
"""

from viralab.families.forecast.fit import fit_target
from viralab.families.forecast.prepare import Prepared, prepare, resolve_targets
from viralab.families.forecast.train import train, train_forecast

__all__ = ["Prepared", "fit_target", "prepare", "resolve_targets", "train", "train_forecast"]
