"""Spec 002's training alerts, as run tags."""

from __future__ import annotations

from viralab.families.forecast.alerts import (
    AlertThresholds,
    alert_tags,
    longest_stall,
    training_alerts,
)

HEALTHY = {"loss": [1.0, 0.5, 0.4, 0.35], "val_loss": [1.1, 0.6, 0.5, 0.45]}


def test_a_healthy_fit_raises_nothing() -> None:
    assert training_alerts(HEALTHY, duration_s=30, peak_ram_percent=40) == {}
    assert alert_tags({}) == {"viralab.alerts": "none"}


def test_long_training_time() -> None:
    alerts = training_alerts(HEALTHY, duration_s=301, peak_ram_percent=40)
    assert list(alerts) == ["long_training_time"]
    assert "301 s > 300 s" in alerts["long_training_time"]


def test_poor_convergence_counts_epochs_without_a_new_best() -> None:
    val = [1.0] + [1.5] * 20
    assert longest_stall(val) == 20
    assert longest_stall([3, 2, 2.5, 1, 1.1]) == 1
    history = {"loss": [0.9] * 21, "val_loss": val}
    alerts = training_alerts(history, 10, 10, best_epoch=1)
    assert "poor_convergence" in alerts
    few = {"loss": [0.9] * 20, "val_loss": val[:20]}
    assert "poor_convergence" not in training_alerts(few, 10, 10, best_epoch=1)


def test_high_validation_loss_at_the_kept_epoch() -> None:
    history = {"loss": [1.0, 0.1, 0.1], "val_loss": [1.5, 0.25, 0.9]}
    assert "high_validation_loss" in training_alerts(history, 1, 1, best_epoch=2)
    assert "high_validation_loss" not in training_alerts(history, 1, 1, best_epoch=1)
    assert "high_validation_loss" in training_alerts(history, 1, 1)  # default: lowest val


def test_memory_issues() -> None:
    alerts = training_alerts(HEALTHY, 1, peak_ram_percent=85.0)
    assert alerts["memory_issues"] == "RAM use peaked at 85% > 80%"


def test_thresholds_come_from_config_and_tags_name_each_alert() -> None:
    t = AlertThresholds.from_config({"max_duration_s": 10, "max_ram_percent": 50})
    assert t.max_duration_s == 10 and t.no_improvement_epochs == 20
    alerts = training_alerts(HEALTHY, 11, 60, thresholds=t)
    tags = alert_tags(alerts)
    assert tags["viralab.alerts"] == "long_training_time,memory_issues"
    assert set(tags) == {
        "viralab.alerts",
        "viralab.alert.long_training_time",
        "viralab.alert.memory_issues",
    }
