"""Which version is active and which is the candidate: aliases by default, stages as a mode.

MLflow deprecated stages in 2.9; aliases (`champion`, `challenger`) are the default marker and
`registry.mode=stage` keeps teams on Production/Staging working. Everything that asks "who is
the champion" or moves the marker goes through here, so promotion and sync agree on the rule.
The registry itself is the source of truth: a reviewer who moves the alias (or stage) in the
MLflow UI needs nothing else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from omegaconf import DictConfig, OmegaConf

from viralab.errors import ConfigError
from viralab.registry.client import registry_errors, versions_filter
from viralab.registry.gates import ComparisonSettings, GateSpec, comparison_settings, gate_spec

Mode = Literal["alias", "stage"]
Target = Literal["champion", "challenger"]
Policy = Literal["enforce", "warn", "off"]
POLICIES: tuple[Policy, ...] = ("enforce", "warn", "off")
TARGETS: tuple[Target, ...] = ("champion", "challenger")
AB_KEYS = ("video_id",)


@dataclass(frozen=True)
class AbSettings:
    """`registry.ab`: the share of keyed requests the challenger answers in-process (0 = off).

    `key` names the request field hashed to pick the arm (only `video_id` exists today), so a
    video always sees the same version; requests without it go to the champion.
    """

    share: float = 0.0
    key: str = "video_id"

    @property
    def enabled(self) -> bool:
        return self.share > 0.0

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> AbSettings:
        """Raises ConfigError for a share outside [0, 1] or an unknown key."""
        section = dict(section or {})
        try:
            share = float(section.get("share", 0.0) or 0.0)
        except (TypeError, ValueError):
            raise ConfigError(
                f"registry.ab.share must be a number, got {section['share']!r}"
            ) from None
        if not 0.0 <= share <= 1.0:
            raise ConfigError(f"registry.ab.share must be within [0, 1], got {share:g}")
        key = str(section.get("key", "video_id"))
        if key not in AB_KEYS:
            raise ConfigError(f"registry.ab.key must be one of {', '.join(AB_KEYS)}, got {key!r}")
        return cls(share=share, key=key)


@dataclass(frozen=True)
class RegistrySettings:
    """`conf/registry/*.yaml` as typed values."""

    mode: Mode = "alias"
    active_alias: str = "champion"
    candidate_alias: str = "challenger"
    active_stage: str = "Production"
    candidate_stage: str = "Staging"
    gates: Mapping[str, Any] = field(default_factory=dict)
    champion_comparison: ComparisonSettings = field(default_factory=ComparisonSettings)
    guard_policy: Policy = "enforce"
    ab: AbSettings = field(default_factory=AbSettings)

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | DictConfig | None) -> RegistrySettings:
        """From the composed config's `registry` group (or a plain mapping): the one parse of
        it, wherever a command or the server needs it. Raises ConfigError for a mode other
        than alias/stage."""
        if isinstance(section, DictConfig):
            section = OmegaConf.to_container(section, resolve=True)  # type: ignore[assignment]
        section = dict(section or {})
        mode = str(section.get("mode", "alias"))
        if mode not in ("alias", "stage"):
            raise ConfigError(f"registry.mode must be 'alias' or 'stage', got {mode!r}")
        policy = str((section.get("guard") or {}).get("policy", "enforce"))
        if policy not in POLICIES:
            raise ConfigError(
                f"registry.guard.policy must be one of {', '.join(POLICIES)}, got {policy!r}"
            )
        return cls(
            mode=mode,  # type: ignore[arg-type]
            active_alias=str(section.get("active_alias", "champion")),
            candidate_alias=str(section.get("candidate_alias", "challenger")),
            active_stage=str(section.get("active_stage", "Production")),
            candidate_stage=str(section.get("candidate_stage", "Staging")),
            gates=dict(section.get("gates") or {}),
            champion_comparison=comparison_settings(section.get("champion_comparison")),
            guard_policy=policy,  # type: ignore[arg-type]
            ab=AbSettings.from_config(section.get("ab")),
        )

    def guarded(self, model: str) -> bool:
        """The server app checks marker moves of models that have gates configured."""
        return self.guard_policy != "off" and model in self.gates

    def gate_spec(self, model: str) -> GateSpec:
        return gate_spec(self.gates, model)

    def marker(self, target: Target) -> str:
        """The alias or stage name that stands for `target` in this mode."""
        if self.mode == "stage":
            return self.active_stage if target == "champion" else self.candidate_stage
        return self.active_alias if target == "champion" else self.candidate_alias

    def describe(self, target: Target) -> str:
        kind = "stage" if self.mode == "stage" else "alias"
        return f"{kind} {self.marker(target)!r}"


def stage_precedence(last_updated: int | None, version: int | str) -> tuple[int, int]:
    """Order among versions sharing a stage (possible when a reviewer did not archive the
    others): the most recently moved one wins, then the highest version number."""
    return (last_updated or 0, int(version))


def pick_stage_holder(versions: Iterable[ModelVersion], stage: str) -> ModelVersion | None:
    """The version in `stage` (see `stage_precedence` when several are)."""
    holders = [v for v in versions if v.current_stage == stage]
    if not holders:
        return None
    return max(holders, key=lambda v: stage_precedence(v.last_updated_timestamp, v.version))


def holder(
    client: MlflowClient, settings: RegistrySettings, model: str, target: Target
) -> ModelVersion | None:
    """The version currently marked as `target` (champion/challenger), or None."""
    return marker_holder(client, settings, model, settings.marker(target))


def marker_holder(
    client: MlflowClient, settings: RegistrySettings, model: str, marker: str
) -> ModelVersion | None:
    """The version holding alias (or, in stage mode, stage) `marker`, or None."""
    with registry_errors(f"reading who holds {marker!r} of {model}"):
        if settings.mode == "alias":
            aliases = client.get_registered_model(model).aliases
            version = aliases.get(marker)
            return None if version is None else client.get_model_version(model, str(version))
        versions = client.search_model_versions(versions_filter(model))
        return pick_stage_holder(versions, marker)


def mark(
    client: MlflowClient,
    settings: RegistrySettings,
    version: ModelVersion,
    target: Target,
) -> None:
    """Give `version` the marker for `target`; the previous holder loses it.

    Alias mode moves the alias (an alias names one version) and, on promotion to champion,
    removes the challenger alias from the promoted version. Stage mode transitions with
    `archive_existing_versions=True`, so the previous holder of the stage is archived.
    """
    model, number = version.name, str(version.version)
    with registry_errors(f"marking {model} version {number} as {target}"):
        if settings.mode == "stage":
            client.transition_model_version_stage(
                model, number, settings.marker(target), archive_existing_versions=True
            )
            return
        client.set_registered_model_alias(model, settings.marker(target), number)
        if target == "champion":
            aliases = client.get_registered_model(model).aliases
            if str(aliases.get(settings.candidate_alias)) == number:
                client.delete_registered_model_alias(model, settings.candidate_alias)


def target_of(settings: RegistrySettings, marker: str) -> Target | None:
    """champion/challenger for a marker name of this mode, None for any other alias/stage."""
    for target in TARGETS:
        if settings.marker(target) == marker:
            return target
    return None


def restore_point(
    client: MlflowClient, settings: RegistrySettings, model: str
) -> Callable[[], None]:
    """Remember how `model`'s markers stand now; calling the result puts them back.

    Used when a marker moved but the event that records it could not be committed: the
    registry must not keep a move nobody can account for.
    """
    names = (settings.marker("champion"), settings.marker("challenger"))
    with registry_errors(f"reading the markers of {model}"):
        if settings.mode == "alias":
            aliases = dict(client.get_registered_model(model).aliases)
            saved = {name: aliases.get(name) for name in names}

            def restore_aliases() -> None:
                for name, version in saved.items():
                    if version is None:
                        with contextlib.suppress(Exception):
                            client.delete_registered_model_alias(model, name)
                    else:
                        client.set_registered_model_alias(model, name, str(version))

            return restore_aliases
        stages = {
            str(v.version): v.current_stage
            for v in client.search_model_versions(versions_filter(model))
        }

    def restore_stages() -> None:
        now = {
            str(v.version): v.current_stage
            for v in client.search_model_versions(versions_filter(model))
        }
        for version, stage in stages.items():
            if now.get(version) not in (None, stage):
                client.transition_model_version_stage(
                    model, version, stage or "None", archive_existing_versions=False
                )

    return restore_stages
