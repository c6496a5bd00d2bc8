"""The stats forecasters (LSTM and peers, spec 002 and issue 16), split by role.

`prepare` (data, through `features.sequence_chain`), `fit` (the LSTM), `alerts` (a fit's
health), `peer` (the peer families), `judge` (per-horizon judging; the scaling and intervals are
`models.forecast_eval`), `log` (MLflow), `plots`, `train` (the entry), `score`
(`score_recent`: a saved model on new rows, for the monitor). The side-by-side table of trained
forecasters is `monitor.forecast_compare` (reading runs needs none of this stack). Lab notes
behind the defaults: docs/forecasting-notes.md.
"""

from viralab.families.forecast.fit import fit_target
from viralab.families.forecast.prepare import Prepared, prepare, resolve_targets
from viralab.families.forecast.score import score_recent
from viralab.families.forecast.train import train, train_forecast

__all__ = [
    "Prepared",
    "fit_target",
    "prepare",
    "resolve_targets",
    "score_recent",
    "train",
    "train_forecast",
]
