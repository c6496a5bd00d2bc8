"""Retrain triggers: is a registered model due for retraining, and by which figure?

The triggers of spec 000 §9 (preference) and spec 002 "Retraining Triggers" (forecasters),
judged against the model's active version (the champion) and the data the configured source
holds now. Thresholds live in `conf/retrain/default.yaml`, per registered model.

preference (spec 000 `RetrainTrigger`):

- `new_ratings`: usable ratings (the training extraction) rated after the newest rating the
  version trained on (its run's `viralab.data.max_rated_at` tag; runs logged before that tag
  existed fall back to the run's start time, the spec's `trained_at`); fires at >= 50;
- `performance_degradation`: the live MAE of what the champion actually served (its logged
  predictions in the prediction log, `viralab.monitor.live`, judged by the ratings that came
  after them; at least `min_scored` of them); without such predictions the champion re-scores
  the new ratings instead, and the trigger's text (and the `viralab.retrain.live_mae_source`
  tag) says so; fires when that live MAE is more than 0.05 above the test MAE its run logged;
- `feature_drift`: population stability index (PSI) per encoded feature, the new ratings
  against the training rows' distribution saved with the version (`drift/reference.json`);
  see `viralab.analysis.drift` for why a feature must also drift significantly.

forecasters (spec 002 `retraining_conditions`):

- `new_rows`: stats rows after the newest row the version trained on; fires at > 1000;
- `performance_degradation`: the champion forecasts every window whose target row is new;
  fires when that MAE (original units) is > 50 % above the test MAE its run logged;
- `schedule`: the champion's training run is more than 7 days old (the weekly schedule).

Every model also has `manual` (`--manual`, or `viralab retrain run --force`), and any model may
set `max_age_days`. Checking trains nothing: it reads the registry and the data and loads the
champion once to score the new rows.

Layout: this module is the entry (`check`); the settings are `retrain_settings`, the verdicts
`trigger_results`, the champion and its runs `champion`, the triggers every family has
`shared_triggers`, each family's `preference_triggers` / `forecast_triggers`. A saved model is
scored through its family's interface (`families.preference.score_recent`,
`families.forecast.score_recent`), never by reaching into it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from omegaconf import DictConfig

from viralab.analysis.drift import MEASURE
from viralab.monitor.champion import champion_of, lineage, load_champion
from viralab.monitor.forecast_triggers import check_forecast
from viralab.monitor.memory import judged_already
from viralab.monitor.preference_triggers import check_preference
from viralab.monitor.retrain_settings import FAMILIES, ModelTriggers, RetrainSettings
from viralab.monitor.trigger_results import (
    FIRED,
    NOT_JUDGED,
    OFF,
    QUIET,
    CheckResult,
    Trigger,
)
from viralab.registry.client import get_client
from viralab.registry.markers import RegistrySettings
from viralab.tracking import configure_tracking

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)


def check(
    cfg: DictConfig,
    model: str,
    *,
    manual: bool = False,
    now: datetime | None = None,
    client: MlflowClient | None = None,
) -> CheckResult:
    """Judge every trigger of `model` against its champion on the configured data.

    Raises:
        ConfigError: `model` has no section in `retrain.models`, or a bad threshold.
        RegistryError: unknown model, no champion, or an unreachable store.
        DataError: the configured data cannot be read.
    """
    configure_tracking(cfg)
    settings = RetrainSettings.from_config(cfg.get("retrain"))
    mt = settings.for_model(model)
    registry = RegistrySettings.from_config(cfg.registry)
    client = client or get_client()
    champion, run = champion_of(client, registry, model)
    now = now or datetime.now(UTC)
    log.info("Checking retrain triggers of %s v%s", model, champion.version)
    judge = check_preference if mt.family == "preference" else check_forecast
    result = judge(cfg, mt, client, champion, run, manual=manual, now=now)

    refusal = judged_already(client, result)
    if refusal is not None:
        result.already_judged = refusal.describe()
    return result


__all__ = [
    "FAMILIES",
    "FIRED",
    "MEASURE",
    "NOT_JUDGED",
    "OFF",
    "QUIET",
    "CheckResult",
    "ModelTriggers",
    "RetrainSettings",
    "Trigger",
    "champion_of",
    "check",
    "lineage",
    "load_champion",
]
