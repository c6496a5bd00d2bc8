"""Promotion gates as pure functions: metrics and config in, pass/fail with the figures out.

Nothing here talks to MLflow, so every rule is unit-testable and the CLI can print exactly
which gate refused a version and by how much. The thresholds live in `conf/registry/` (spec
000 table 6.2 for the preference model, spec 002 `performance_threshold` plus the naive
baseline for the forecasters).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from viralab.errors import ConfigError
from viralab.tracking.tags import (
    BEATS_NAIVE,
    METRIC_BEST_BASELINE_MAE,
    METRIC_MAE,
    TEST_SET_ARTIFACT,
)

OPERATORS: dict[str, tuple[str, Callable[[float, float], bool]]] = {
    "lt": ("<", operator.lt),
    "le": ("<=", operator.le),
    "gt": (">", operator.gt),
    "ge": (">=", operator.ge),
}


_SYMBOLS = {"<=": "le", ">=": "ge", "<": "lt", ">": "gt"}


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict; `detail` carries the figures a reviewer needs to judge it.

    The optional fields hold the same figures as numbers for the version page (evidence):
    `figure` is what was judged (the candidate's value, or the difference with the champion),
    `threshold` the limit it was held to, `interval` the confidence interval of `figure`,
    `n` the rows it rests on, `reference` the champion's value, `metric` its name.
    """

    gate: str
    passed: bool
    detail: str
    figure: float | None = None
    threshold: float | None = None
    interval: tuple[float, float] | None = None
    n: int | None = None
    reference: float | None = None
    metric: str | None = None

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.gate}: {self.detail}"

    @property
    def key(self) -> str:
        """The gate's name as an MLflow tag key part: `mae < 0.15` -> `mae_lt_0.15`."""
        text = self.gate.lower()
        for symbol, word in _SYMBOLS.items():
            text = text.replace(symbol, f" {word} ")
        return re.sub(r"[^\w.\-]+", "_", text).strip("_") or "gate"


@dataclass(frozen=True)
class GateReport:
    """All gates checked for one promotion, in the order they were checked."""

    results: tuple[GateResult, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> tuple[GateResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def extend(self, results: Iterable[GateResult], notes: Iterable[str] = ()) -> GateReport:
        return GateReport(self.results + tuple(results), self.notes + tuple(notes))

    def summary(self, limit: int = 5000) -> str:
        """A compact one-line record of every verdict, short enough for an MLflow tag."""
        text = "; ".join(r.line() for r in self.results) or "no gates configured"
        return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Threshold:
    metric: str
    op: str
    value: float

    @property
    def label(self) -> str:
        return f"{self.metric} {OPERATORS[self.op][0]} {self.value:g}"


@dataclass(frozen=True)
class BaselineRule:
    """The model must beat its best naive baseline (both metrics in original units)."""

    metric: str = METRIC_MAE
    baseline: str = METRIC_BEST_BASELINE_MAE
    tag: str | None = BEATS_NAIVE


@dataclass(frozen=True)
class GateSpec:
    """The gates configured for one registered model."""

    model: str
    thresholds: tuple[Threshold, ...] = ()
    beats_baseline: BaselineRule | None = None

    @property
    def empty(self) -> bool:
        return not self.thresholds and self.beats_baseline is None


@dataclass(frozen=True)
class GateSetSettings:
    """The frozen gate set (`champion_comparison.gate_set:`): how it is drawn and where kept.

    `database_url` None means `$VIRALAB_GATE_SETS_URL`, else the application database.
    """

    enabled: bool = True
    fraction: float = 0.2
    seed: int = 13
    min_members: int = 20
    max_origins: int = 300
    database_url: str | None = None


@dataclass(frozen=True)
class ComparisonSettings:
    """How a new champion is compared with the current one (`champion_comparison:`)."""

    enabled: bool = True
    eval_artifact: str = TEST_SET_ARTIFACT
    label_column: str = "__label__"
    fallback_metric: str = "mae"
    tolerance: float = 0.0
    confidence: float = 0.95
    resamples: int = 2000
    seed: int = 0
    gate_set: GateSetSettings = field(default_factory=GateSetSettings)


def gate_spec(gates: Mapping[str, Any] | None, model: str) -> GateSpec:
    """Parse `registry.gates.<model>`; a model with no entry has no threshold gates.

    Raises:
        ConfigError: an unknown operator or a value that is not a number.
    """
    entry = (gates or {}).get(model) or {}
    thresholds: list[Threshold] = []
    for metric, rule in (entry.get("thresholds") or {}).items():
        if not isinstance(rule, Mapping) or not rule:
            raise ConfigError(
                f"registry.gates.{model}.thresholds.{metric} must map an operator "
                f"({', '.join(OPERATORS)}) to a number, got {rule!r}"
            )
        for op, value in rule.items():
            if op not in OPERATORS:
                raise ConfigError(
                    f"registry.gates.{model}.thresholds.{metric}: unknown operator {op!r} "
                    f"(use {', '.join(OPERATORS)})"
                )
            thresholds.append(Threshold(str(metric), op, _number(value, model, metric)))
    baseline = entry.get("beats_baseline")
    rule = None
    if baseline:
        rule = BaselineRule(
            metric=str(baseline.get("metric", METRIC_MAE)),
            baseline=str(baseline.get("baseline", METRIC_BEST_BASELINE_MAE)),
            tag=baseline.get("tag"),
        )
    return GateSpec(model, tuple(thresholds), rule)


def comparison_settings(section: Mapping[str, Any] | None) -> ComparisonSettings:
    """Parse `registry.champion_comparison`.

    Raises:
        ConfigError: a number that is not one, or a confidence/fraction outside (0, 1).
    """
    section = section or {}
    where = "champion_comparison"
    confidence = _number(section.get("confidence", 0.95), where, "confidence")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"registry.{where}.confidence must be in (0, 1), got {confidence:g}")
    return ComparisonSettings(
        enabled=bool(section.get("enabled", True)),
        eval_artifact=str(section.get("eval_artifact", TEST_SET_ARTIFACT)),
        label_column=str(section.get("label_column", "__label__")),
        fallback_metric=str(section.get("fallback_metric", METRIC_MAE)),
        tolerance=_number(section.get("tolerance", 0.0), where, "tolerance"),
        confidence=confidence,
        resamples=int(_number(section.get("resamples", 2000), where, "resamples")),
        seed=int(_number(section.get("seed", 0), where, "seed")),
        gate_set=gate_set_settings(section.get("gate_set")),
    )


def gate_set_settings(section: Mapping[str, Any] | None) -> GateSetSettings:
    """Parse `registry.champion_comparison.gate_set`."""
    section = section or {}
    where = "champion_comparison.gate_set"
    fraction = _number(section.get("fraction", 0.2), where, "fraction")
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"registry.{where}.fraction must be in (0, 1), got {fraction:g}")
    url = section.get("database_url")
    return GateSetSettings(
        enabled=bool(section.get("enabled", True)),
        fraction=fraction,
        seed=int(_number(section.get("seed", 13), where, "seed")),
        min_members=int(_number(section.get("min_members", 20), where, "min_members")),
        max_origins=int(_number(section.get("max_origins", 300), where, "max_origins")),
        database_url=str(url) if url else None,
    )


def _number(value: Any, model: str, metric: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"registry gate {model}.{metric}: {value!r} is not a number") from None
    if math.isnan(number):
        raise ConfigError(f"registry gate {model}.{metric}: NaN is not a threshold")
    return number


def _usable(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def check_thresholds(metrics: Mapping[str, float], spec: GateSpec) -> list[GateResult]:
    """Each configured threshold against the run's metrics; a missing or NaN metric fails."""
    results = []
    for t in spec.thresholds:
        value = _usable(metrics.get(t.metric))
        if value is None:
            results.append(GateResult(t.label, False, f"{t.metric} was not logged by the run"))
            continue
        passed = OPERATORS[t.op][1](value, t.value)
        results.append(
            GateResult(
                t.label,
                passed,
                f"{t.metric} = {value:.6g}",
                figure=value,
                threshold=t.value,
                metric=t.metric,
            )
        )
    return results


def check_baseline(
    metrics: Mapping[str, float], tags: Mapping[str, str], rule: BaselineRule | None
) -> list[GateResult]:
    """The model's error must be strictly below the best naive baseline's.

    The metrics decide when both were logged (the tag is derived from them); otherwise the
    run's tag (e.g. `viralab.beats_naive`) must read "true".
    """
    if rule is None:
        return []
    gate = f"beats naive baseline ({rule.metric} < {rule.baseline})"
    value, baseline = _usable(metrics.get(rule.metric)), _usable(metrics.get(rule.baseline))
    if value is not None and baseline is not None:
        passed = value < baseline
        sign = "<" if passed else ">="
        return [GateResult(gate, passed, f"{rule.metric} {value:.6g} {sign} {baseline:.6g}")]
    if rule.tag and rule.tag in tags:
        passed = str(tags[rule.tag]).strip().lower() == "true"
        return [GateResult(gate, passed, f"tag {rule.tag} = {tags[rule.tag]!r}")]
    missing = rule.metric if value is None else rule.baseline
    return [GateResult(gate, False, f"{missing} was not logged by the run")]


def compare_mae(
    candidate_mae: float,
    champion_mae: float,
    tolerance: float,
    *,
    candidate: str,
    champion: str,
    basis: str,
) -> GateResult:
    """The candidate may not be worse than the champion (beyond a relative `tolerance`)."""
    limit = champion_mae * (1.0 + tolerance)
    passed = _usable(candidate_mae) is not None and candidate_mae <= limit
    sign = "<=" if passed else ">"
    slack = f" (tolerance {tolerance:.0%})" if tolerance else ""
    return GateResult(
        "not worse than champion",
        passed,
        f"{candidate} MAE {candidate_mae:.6g} {sign} {champion} MAE {champion_mae:.6g}"
        f"{slack} on {basis}",
    )


def check_metrics(
    metrics: Mapping[str, float], tags: Mapping[str, str], spec: GateSpec
) -> GateReport:
    """The threshold and baseline gates for one run."""
    notes = [f"no threshold gates configured for {spec.model!r}"] if spec.empty else []
    return GateReport(
        tuple(check_thresholds(metrics, spec) + check_baseline(metrics, tags, spec.beats_baseline)),
        tuple(notes),
    )
