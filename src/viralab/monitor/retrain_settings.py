"""`conf/retrain/*.yaml` as typed values: which triggers each registered model has, and their
thresholds (a None threshold turns its trigger off).

Its own module because the CLI, the checks and the retrain all read these settings, and none
of them should need the others to do so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from viralab.analysis.drift import DriftSettings
from viralab.errors import ConfigError

FAMILIES = ("preference", "forecast")


def _optional(section: Mapping[str, Any], key: str, kind: type) -> Any:
    value = section.get(key)
    if value is None:
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"retrain: {key} must be a number or null, got {value!r}") from None


@dataclass(frozen=True)
class ModelTriggers:
    """One model's section of `retrain.models`; a None threshold turns its trigger off."""

    model: str
    family: str
    new_ratings: int | None = None
    new_rows: int | None = None
    mae_increase: float | None = None
    mae_increase_ratio: float | None = None
    min_scored: int = 10
    max_age_days: float | None = None
    drift: DriftSettings | None = None

    @classmethod
    def from_config(cls, model: str, section: Mapping[str, Any]) -> ModelTriggers:
        family = str(section.get("family", ""))
        if family not in FAMILIES:
            raise ConfigError(
                f"retrain.models.{model}.family must be one of {', '.join(FAMILIES)}, "
                f"got {family!r}"
            )
        drift = section.get("drift")
        return cls(
            model=model,
            family=family,
            new_ratings=_optional(section, "new_ratings", int),
            new_rows=_optional(section, "new_rows", int),
            mae_increase=_optional(section, "mae_increase", float),
            mae_increase_ratio=_optional(section, "mae_increase_ratio", float),
            min_scored=int(section.get("min_scored") or 1),
            max_age_days=_optional(section, "max_age_days", float),
            drift=DriftSettings.from_config(drift) if drift is not None else None,
        )


@dataclass(frozen=True)
class RetrainSettings:
    """`conf/retrain/*.yaml` as typed values."""

    experiment: str = "retraining"
    auto_promote: bool = False
    models: Mapping[str, ModelTriggers] = field(default_factory=dict)

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | DictConfig | None) -> RetrainSettings:
        if isinstance(section, DictConfig):
            section = OmegaConf.to_container(section, resolve=True)  # type: ignore[assignment]
        section = dict(section or {})
        models = {
            str(name): ModelTriggers.from_config(str(name), dict(body or {}))
            for name, body in (section.get("models") or {}).items()
        }
        return cls(
            experiment=str(section.get("experiment") or "retraining"),
            auto_promote=bool(section.get("auto_promote", False)),
            models=models,
        )

    def for_model(self, model: str) -> ModelTriggers:
        """Raises ConfigError naming the configured models when `model` is not one."""
        if model not in self.models:
            known = ", ".join(sorted(self.models)) or "none"
            raise ConfigError(
                f"no retrain triggers configured for model {model!r} "
                f"(retrain.models in conf/retrain/); configured: {known}"
            )
        return self.models[model]


__all__ = ["FAMILIES", "ModelTriggers", "RetrainSettings"]
