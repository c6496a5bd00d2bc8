"""One way to train a configured model family: `viralab.train`, sweeps and retrains call it.

Why here: the entry point (`viralab.train`), the sweeps and the monitor's retrain all dispatch
on `task.family`; one function above the families and promotion keeps them the same, and
hands the families promotion's evidence writer for the versions they register.
"""

from __future__ import annotations

from omegaconf import DictConfig

from viralab.errors import ConfigError
from viralab.promotion.evidence import write_registration_evidence
from viralab.tracking import configure_tracking

FAMILIES = ("preference", "forecast")


def train_family(cfg: DictConfig) -> dict[str, float]:
    """Train the configured model family on the configured data; returns its metrics."""
    configure_tracking(cfg)
    family = cfg.task.family
    # why here: each family's training loads its stack (scikit-learn and matplotlib, TensorFlow
    # for the forecasters), and every `viralab` command imports the monitor at start-up
    if family == "preference":
        from viralab.families.preference.run import train_preference

        return train_preference(cfg, on_registered=write_registration_evidence)
    if family == "forecast":
        # why here: TensorFlow loads with the forecast family (seconds), only when it trains
        from viralab.families.forecast.train import train_forecast

        return train_forecast(cfg, on_registered=write_registration_evidence)
    raise ConfigError(f"unknown task.family {family!r}; valid: {', '.join(FAMILIES)}")
