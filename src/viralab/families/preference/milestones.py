"""Spec 000 §8: what the number of usable ratings allows a run to do, and what comes next.

Below the first milestone (100 ratings) and up to the second (200) a run analyses correlations
only; from 200 on it trains. Between 100 and 199 a user may force training
(`task.force_train=true`): the spec advises against it, it is not forbidden. Under 100 there is
no model at all, forced or not. The thresholds live in `conf/task/preference.yaml`
(`task.milestones`); the spec's numbers are the defaults here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from viralab.config import check_group_choices, compose
from viralab.errors import ConfigError
from viralab.families.preference.prepare import extract_usable

BELOW_FIRST = "collecting"


@dataclass(frozen=True)
class Milestone:
    """One step of the spec's list: reached at `at` usable ratings."""

    name: str
    at: int
    steps: tuple[str, ...]
    command: str


SPEC_MILESTONES: tuple[Milestone, ...] = (
    Milestone(
        "correlation",
        100,
        (
            "Run correlation analysis only",
            "Identify top 20 positive and negative correlations",
            "Validate against expected correlations",
            "Create feature_importance_snapshot",
            "NO model training yet (insufficient data)",
        ),
        "python -m viralab.train   (logs correlations.csv and feature_importance_snapshot.json)",
    ),
    Milestone(
        "first_model",
        200,
        (
            "Train first model (Ridge regression)",
            "Target: MAE < 0.20",
            "Register it as the first version of the preference model",
            "Create snapshot",
            "Promote (alias champion) if metrics are acceptable",
        ),
        "python -m viralab.train model=ridge; viralab registry promote preference <version>",
    ),
    Milestone(
        "retrain",
        300,
        (
            "Retrain model",
            "Compare to the first version",
            "If improved, register and promote the new version",
            "Consider feature pruning (remove |correlation| < 0.1)",
            "Update snapshot",
        ),
        "python -m viralab.train model=ridge features.min_abs_corr=0.1",
    ),
    Milestone(
        "advanced",
        500,
        (
            "Try Random Forest model",
            "Compare Ridge vs RF",
            "Select best performer",
            "Promote it if the improvement is significant",
            "Consider multi-output for dimension prediction",
        ),
        "python -m viralab.train model=random_forest task.multi_output=true",
    ),
)


@dataclass(frozen=True)
class TrainingDecision:
    """What a run does with `n_ratings` usable ratings, and why (for the console and tags)."""

    n_ratings: int
    milestone: str
    train: bool
    forced: bool
    reason: str


def milestones_from_config(thresholds: Mapping[str, Any] | None) -> tuple[Milestone, ...]:
    """The spec's milestones with thresholds overridden by `task.milestones` (name -> count).

    Raises:
        ConfigError: an unknown name, or thresholds that do not increase.
    """
    if not thresholds:
        return SPEC_MILESTONES
    known = {m.name for m in SPEC_MILESTONES}
    unknown = sorted(set(thresholds) - known)
    if unknown:
        raise ConfigError(
            f"unknown milestone(s) {', '.join(unknown)} in task.milestones; "
            f"valid: {', '.join(m.name for m in SPEC_MILESTONES)}"
        )
    out = tuple(replace(m, at=int(thresholds.get(m.name, m.at))) for m in SPEC_MILESTONES)
    ats = [m.at for m in out]
    if any(b <= a for a, b in pairwise(ats)) or ats[0] < 0:
        shown = ", ".join(f"{m.name}={m.at}" for m in out)
        raise ConfigError(f"task.milestones must increase from >= 0: {shown}")
    return out


def current_milestone(
    n_ratings: int, milestones: Sequence[Milestone] = SPEC_MILESTONES
) -> Milestone | None:
    """The last milestone reached, or None below the first."""
    reached = [m for m in milestones if n_ratings >= m.at]
    return reached[-1] if reached else None


def next_milestone(
    n_ratings: int, milestones: Sequence[Milestone] = SPEC_MILESTONES
) -> Milestone | None:
    """The first milestone not yet reached, or None when all are."""
    return next((m for m in milestones if n_ratings < m.at), None)


def decide_training(
    n_ratings: int, force: bool = False, milestones: Sequence[Milestone] = SPEC_MILESTONES
) -> TrainingDecision:
    """Train or analyse only: < first milestone never trains, < second trains only if forced."""
    first, second = milestones[0], milestones[1]
    reached = current_milestone(n_ratings, milestones)
    name = reached.name if reached else BELOW_FIRST
    if n_ratings < first.at:
        return TrainingDecision(
            n_ratings,
            name,
            train=False,
            forced=False,
            reason=(
                f"{n_ratings} usable ratings, under {first.at}: correlation analysis only, "
                "no model (spec §8)"
            ),
        )
    if n_ratings < second.at:
        if force:
            return TrainingDecision(
                n_ratings,
                name,
                train=True,
                forced=True,
                reason=(
                    f"{n_ratings} usable ratings, under {second.at}: training forced "
                    "(task.force_train=true)"
                ),
            )
        return TrainingDecision(
            n_ratings,
            name,
            train=False,
            forced=False,
            reason=(
                f"{n_ratings} usable ratings, under {second.at}: correlation analysis only, "
                "no model (spec §8; task.force_train=true trains anyway)"
            ),
        )
    return TrainingDecision(
        n_ratings, name, train=True, forced=False, reason=f"{n_ratings} usable ratings: training"
    )


def milestone_report(
    n_ratings: int, milestones: Sequence[Milestone] = SPEC_MILESTONES
) -> list[str]:
    """Lines for `viralab milestone`: where the data stands and what the next step is."""
    reached = current_milestone(n_ratings, milestones)
    upcoming = next_milestone(n_ratings, milestones)
    lines = []
    if reached is None:
        lines.append(f"Milestone: none yet (the first, {milestones[0].name}, is at "
                     f"{milestones[0].at} ratings)")  # fmt: skip
    else:
        lines.append(f"Milestone reached: {reached.name} (>= {reached.at} ratings)")
        lines.extend(f"  - {step}" for step in reached.steps)
        lines.append(f"  run: {reached.command}")
    if upcoming is None:
        lines.append("Next: every milestone reached; retrain as new ratings arrive")
    else:
        lines.append(
            f"Next: {upcoming.name} at {upcoming.at} ratings "
            f"({upcoming.at - n_ratings} more usable ratings needed)"
        )
        lines.extend(f"  - {step}" for step in upcoming.steps)
    decision = decide_training(n_ratings, milestones=milestones)
    lines.append(f"A training run now: {decision.reason}")
    return lines


def data_status(overrides: Sequence[str] = ()) -> list[str]:
    """`viralab milestone`: count the configured source's usable ratings (the training
    extraction, same rules) and report them against the milestones."""
    check_group_choices(overrides)
    try:
        cfg = compose(overrides)
    except Exception as exc:  # Hydra's override and composition errors, as one line
        raise ConfigError(f"cannot compose the config: {exc}".splitlines()[0]) from None
    if cfg.task.family != "preference":
        raise ConfigError("milestones apply to the preference model (task=preference)")
    kept, report = extract_usable(cfg)
    thresholds = cfg.task.milestones
    milestones = milestones_from_config(dict(thresholds) if thresholds else None)
    return [
        f"Usable ratings: {len(kept)} ({report.summary()})",
        *milestone_report(len(kept), milestones),
    ]
