"""Training a retrain's challenger with its family's own training function.

The monitor sits above the families in the layering, so it calls them directly rather than
going up through the `viralab.train` entry point (an entry point is what calls the monitor,
not what the monitor calls). The dispatch is the one `viralab.train.train` does.
"""

from __future__ import annotations

from omegaconf import DictConfig

from viralab.errors import ConfigError
from viralab.families.forecast import train_forecast
from viralab.families.preference import train as train_preference
from viralab.tracking import configure_tracking

FAMILIES = ("preference", "forecast")


def train_family(cfg: DictConfig) -> dict[str, float]:
    """Train the configured model family on the configured data; returns its metrics."""
    configure_tracking(cfg)
    family = cfg.task.family
    if family == "preference":
        return train_preference(cfg)
    if family == "forecast":
        return train_forecast(cfg)
    raise ConfigError(f"unknown task.family {family!r}; valid: {', '.join(FAMILIES)}")


__all__ = ["train_family"]
