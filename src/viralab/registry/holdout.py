"""Every training holds its model's gate set back, and says so on the candidate run.

Two one-line hooks in the data loading (`preference.load_preference_data`,
`forecasting.prepare`) drop the gate rows, freezing the gate set first when this training
registers the model's first version. `log_gate_set`, inside the candidate's run, records what
was held back: a `gate` dataset with the gate set's digest, a digest tag (the champion
comparison refuses a candidate whose training did not hold the current gate set out) and the
count of rows.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from viralab.errors import DataError
from viralab.features.sequence import TARGETS
from viralab.registry.gate_set import (
    GateSet,
    Kind,
    choose_ratings,
    choose_stretch,
    current_gate_set,
    current_user,
    freeze_gate_set,
    in_stretch,
    new_gate_set,
)
from viralab.registry.gates import GateSetSettings, gate_set_settings
from viralab.tracking import log_metrics, set_tags
from viralab.tracking.tags import (
    GATE_CONTEXT,
    GATE_SET_DIGEST,
    GATE_SET_HELD_BACK,
    METRIC_GATE_HELD_BACK,
    NO_GATE_SET,
)

log = logging.getLogger(__name__)


#: What this process's training held back, per registered model: (gate set, rows held,
#: whether the set still has to be stored). The hooks run before the run opens; `log_gate_set`
#: reads it inside the candidate's run and stores a pending set once a version is registered.
_APPLIED: dict[str, tuple[GateSet | None, int, bool]] = {}


def settings_from_cfg(cfg: Any) -> GateSetSettings:
    registry = cfg.get("registry") or {}
    section = (registry.get("champion_comparison") or {}).get("gate_set")
    if section is not None and hasattr(section, "items"):
        section = {k: section[k] for k in section}
    return gate_set_settings(section)


def _gate_or_pending(
    cfg: Any, model: str, kind: Kind, members_of: Any, settings: GateSetSettings, enough: bool
) -> tuple[GateSet | None, bool]:
    """The current gate set, or — when this training may register the model's first version —
    a new one drawn now and held back, stored only once that version is registered (a
    correlation-only run registers nothing). A model registered before gate sets existed
    gets none here: its versions saw those rows, so a set drawn now would favour them;
    `viralab registry gate-set freeze` draws one on purpose.

    An unreachable store is a warning, not a failure: the run is tagged as trained without a
    gate set, and the champion comparison refuses such a candidate.
    """
    try:
        gate = current_gate_set(model, settings)
    except DataError as exc:
        log.warning("Training %s without a gate set: %s", model, exc)
        return None, False
    if gate is not None or not (cfg.get("register", True) and enough):
        return gate, False
    if not first_registration(model):
        log.warning(
            "%s has versions but no gate set: comparisons use the champion's eval set until "
            "`viralab registry gate-set freeze %s`",
            model,
            model,
        )
        return None, False
    return new_gate_set(model, kind, members_of(), settings, by=current_user()), True


def first_registration(model: str) -> bool:
    """True when the registry has no version of `model` yet (False when it cannot tell)."""
    from mlflow import MlflowClient

    try:
        return not MlflowClient().search_model_versions(f"name='{model}'", max_results=1)
    except Exception as exc:  # an unreachable registry: do not freeze on a guess
        log.warning("Cannot tell whether %s is registered yet: %s", model, exc)
        return False


def hold_out_gate_ratings(cfg: Any, records: list[dict[str, Any]], report: Any) -> list[dict]:
    """The usable ratings minus the preference model's gate set (frozen now if due).

    Sets `report.held_back` (the extraction report says how many rows the gate kept).
    """
    settings = settings_from_cfg(cfg)
    model = str(cfg.task.get("registered_model", "preference"))
    if not settings.enabled:
        return records
    gate, pending = _gate_or_pending(
        cfg,
        model,
        "ratings",
        lambda: choose_ratings((r.get("id") for r in records), settings.fraction, settings.seed),
        settings,
        len(records) >= settings.min_members,
    )
    if gate is None:
        _APPLIED[model] = (None, 0, False)
        return records
    held = set(gate.members)
    kept = [r for r in records if str(r.get("id")) not in held]
    report.held_back = len(records) - len(kept)
    _APPLIED[model] = (gate, report.held_back, pending)
    log.info("Gate set %s held back %d of %d ratings", gate.digest, report.held_back, len(records))
    return kept


def forecast_models(cfg: Any) -> list[str]:
    """The registered forecasters this config trains (`target=all`: all three)."""
    target = str(cfg.get("target", "all"))
    prefix = str(cfg.task.get("registered_model_prefix", "youtube-lstm-"))
    return [f"{prefix}{t}" for t in (TARGETS if target == "all" else [target])]


def hold_out_gate_stretch(cfg: Any, stats: pd.DataFrame) -> pd.DataFrame:
    """The stats rows minus the gate stretches of the forecasters being trained.

    The models trained together share one data preparation, so the union of their stretches
    is held back (each model's own stretch is part of it).
    """
    settings = settings_from_cfg(cfg)
    if not settings.enabled:
        return stats
    gates = []
    for model in forecast_models(cfg):
        gate, pending = _gate_or_pending(
            cfg,
            model,
            "stretch",
            lambda: choose_stretch(stats, settings.fraction),
            settings,
            len(stats) > 0,
        )
        gates.append((model, gate, pending))
    mask = in_stretch(stats, [g for _, g, _ in gates if g is not None])
    held = int(mask.sum())
    for model, gate, pending in gates:
        _APPLIED[model] = (gate, held if gate is not None else 0, pending)
    if held:
        log.info("Gate stretches held back %d of %d stats rows", held, len(stats))
    return stats.loc[~mask].reset_index(drop=True)


def applied_gate_set(model: str) -> tuple[GateSet | None, int]:
    """What this process's training held back for `model` (None, 0 when nothing)."""
    gate, held, _ = _APPLIED.get(model, (None, 0, False))
    return gate, held


def log_gate_set(model: str, registered: bool = False, cfg: Any = None) -> GateSet | None:
    """On the active run: the gate set held back as a `gate` dataset, its digest as a tag
    ("none" when training held nothing back) and the count of rows held back.

    When this training drew the model's first gate set and `registered` (a version now
    exists), the set is stored: from now on every training holds it back.
    """
    import mlflow

    gate, held, pending = _APPLIED.get(model, (None, 0, False))
    if gate is not None and pending and registered:
        settings = settings_from_cfg(cfg) if cfg is not None else GateSetSettings()
        try:
            stored, created = freeze_gate_set(
                model, gate.kind, gate.members, settings, by=gate.frozen_by, reason=gate.reason
            )
        except DataError as exc:
            log.warning("Gate set of %s not stored: %s", model, exc)
        else:
            _APPLIED[model] = (gate, held, False)
            if not created and stored.digest != gate.digest:
                log.warning(
                    "%s got gate set %s from a concurrent registration; this run held out %s",
                    model,
                    stored.digest,
                    gate.digest,
                )
    set_tags(
        {
            GATE_SET_DIGEST: gate.digest if gate else NO_GATE_SET,
            GATE_SET_HELD_BACK: str(held),
        }
    )
    log_metrics({METRIC_GATE_HELD_BACK: float(held)})
    if gate is not None:
        dataset = mlflow.data.from_pandas(
            gate.members_frame(), name=f"gate-set-{model}", digest=gate.digest
        )
        mlflow.log_input(dataset, context=GATE_CONTEXT)
    return gate
