"""Spec 002 "Training Monitoring": warnings about a fit, logged as run tags.

The spec's four alerts, with thresholds from ``task.alerts``:

- ``long_training_time``: training took longer than ``max_duration_s`` (300 s);
- ``poor_convergence``: the validation loss went ``no_improvement_epochs`` (20) epochs or more
  without a new best (with early stopping at patience 10 this fires only if patience is raised
  or early stopping is off);
- ``high_validation_loss``: at the epoch whose weights were kept, val_loss is more than
  ``val_train_ratio`` (2) times the training loss;
- ``memory_issues``: system RAM use peaked above ``max_ram_percent`` (80 %) during training
  (psutil, sampled at every epoch end).

Pure functions: the caller passes the fit's numbers and logs the returned tags.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from viralab.tracking.tags import ALERT_PREFIX, ALERTS_RAISED

ALERTS = ("long_training_time", "poor_convergence", "high_validation_loss", "memory_issues")


@dataclass(frozen=True)
class AlertThresholds:
    max_duration_s: float = 300.0
    no_improvement_epochs: int = 20
    val_train_ratio: float = 2.0
    max_ram_percent: float = 80.0

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> AlertThresholds:
        cfg = cfg or {}
        defaults = cls()
        return cls(
            max_duration_s=float(cfg.get("max_duration_s", defaults.max_duration_s)),
            no_improvement_epochs=int(
                cfg.get("no_improvement_epochs", defaults.no_improvement_epochs)
            ),
            val_train_ratio=float(cfg.get("val_train_ratio", defaults.val_train_ratio)),
            max_ram_percent=float(cfg.get("max_ram_percent", defaults.max_ram_percent)),
        )


def longest_stall(val_losses: Sequence[float]) -> int:
    """The most consecutive epochs without a new best (lowest) validation loss."""
    best = math.inf
    stall = longest = 0
    for value in val_losses:
        if value < best:
            best, stall = value, 0
        else:
            stall += 1
            longest = max(longest, stall)
    return longest


def training_alerts(
    history: Mapping[str, Sequence[float]],
    duration_s: float,
    peak_ram_percent: float,
    best_epoch: int | None = None,
    thresholds: AlertThresholds | None = None,
) -> dict[str, str]:
    """The alerts that fired, each with a message carrying its values (empty if none).

    Args:
        history: per-epoch ``loss`` and ``val_loss``.
        best_epoch: 1-based epoch whose weights were kept (default: lowest val_loss).
    """
    t = thresholds or AlertThresholds()
    alerts: dict[str, str] = {}
    if duration_s > t.max_duration_s:
        alerts["long_training_time"] = (
            f"training took {duration_s:.0f} s > {t.max_duration_s:.0f} s"
        )
    val = list(history.get("val_loss") or [])
    train = list(history.get("loss") or [])
    stall = longest_stall(val)
    if stall >= t.no_improvement_epochs:
        alerts["poor_convergence"] = (
            f"no val_loss improvement for {stall} epochs (threshold {t.no_improvement_epochs})"
        )
    if val and train:
        i = (best_epoch - 1) if best_epoch else min(range(len(val)), key=val.__getitem__)
        i = max(0, min(i, len(val) - 1, len(train) - 1))
        if train[i] > 0 and val[i] > t.val_train_ratio * train[i]:
            alerts["high_validation_loss"] = (
                f"val_loss {val[i]:.4g} > {t.val_train_ratio:g} x train_loss {train[i]:.4g} "
                f"at epoch {i + 1}"
            )
    if peak_ram_percent > t.max_ram_percent:
        alerts["memory_issues"] = (
            f"RAM use peaked at {peak_ram_percent:.0f}% > {t.max_ram_percent:.0f}%"
        )
    return alerts


def alert_tags(alerts: Mapping[str, str]) -> dict[str, str]:
    """Run tags: one ``viralab.alert.<name>`` per alert, and ``viralab.alerts`` listing them."""
    tags = {f"{ALERT_PREFIX}{name}": message[:500] for name, message in alerts.items()}
    tags[ALERTS_RAISED] = ",".join(sorted(alerts)) or "none"
    return tags
