"""A search space (`sweep.params` in `conf/sweep/<name>.yaml`): checked, sampled, made overrides.

Each parameter names an Optuna distribution and the Hydra key (or keys) its value overrides, so
a new space is a YAML file, not code::

    alpha:   {key: model.alpha, type: float, low: 1.0e-3, high: 100.0, log: true}
    units:   {key: [model.lstm_units_1, model.lstm_units_2], type: categorical,
              choices: [25, 50, 75, 100]}
    leaves:  {key: model.min_samples_leaf, type: int, low: 1, high: 5}

Everything here is checked before the first trial: a wrong distribution, a missing bound or a
key that matches no config entry is one `ConfigError` naming the parameter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from viralab.errors import ConfigError

PARAM_TYPES = ("categorical", "int", "float")
_FIELDS = {
    "categorical": {"key", "type", "choices"},
    "int": {"key", "type", "low", "high", "step", "log"},
    "float": {"key", "type", "low", "high", "step", "log"},
}
_BARE_STRING = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_RESERVED_WORDS = {"true", "false", "null", "nan", "inf", "none"}
_MISSING = object()

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Param:
    """One tunable value: its Optuna name, distribution and the Hydra keys it sets."""

    name: str
    keys: tuple[str, ...]
    type: str
    choices: tuple[Scalar, ...] = ()
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False

    def suggest(self, trial: Any) -> Scalar:
        """Ask an Optuna trial (or `FixedTrial`) for this parameter's value."""
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.type == "int":
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(
            self.name, float(self.low), float(self.high), step=self.step, log=self.log
        )

    def first_value(self) -> Scalar:
        """A valid value (the first choice, or the low bound) to test-compose the space with."""
        if self.type == "categorical":
            return self.choices[0]
        return int(self.low) if self.type == "int" else float(self.low)

    def grid_values(self) -> list[Scalar]:
        """Every value, for the grid sampler; a continuous float range has no grid."""
        if self.type == "categorical":
            return list(self.choices)
        if self.type == "int" and not self.log:
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.type == "float" and self.step:
            n = math.floor((self.high - self.low) / self.step + 1e-9)
            return [round(self.low + i * self.step, 12) for i in range(n + 1)]
        raise ConfigError(
            f"sweep.params.{self.name}: the grid sampler needs categorical choices, an int "
            "range without log, or a float range with a step"
        )

    def describe(self) -> str:
        if self.type == "categorical":
            return f"categorical{list(self.choices)}"
        scale = ", log" if self.log else (f", step {self.step}" if self.step else "")
        return f"{self.type}[{self.low}, {self.high}{scale}]"


@dataclass(frozen=True)
class SearchSpace:
    """The parameters of one sweep, in file order."""

    params: tuple[Param, ...]

    @property
    def keys(self) -> list[str]:
        return [k for p in self.params for k in p.keys]

    def suggest(self, trial: Any) -> dict[str, Scalar]:
        return {p.name: p.suggest(trial) for p in self.params}

    def first_point(self) -> dict[str, Scalar]:
        return {p.name: p.first_value() for p in self.params}

    def overrides(self, values: Mapping[str, Scalar]) -> list[str]:
        """Hydra overrides (`key=value`) that put a sampled point into the training config."""
        return [f"{k}={hydra_value(values[p.name])}" for p in self.params for k in p.keys]

    def key_values(self, values: Mapping[str, Scalar]) -> dict[str, Scalar]:
        """The sampled point keyed by the Hydra keys it sets (`model.alpha` -> 0.3)."""
        return {k: values[p.name] for p in self.params if p.name in values for k in p.keys}

    def grid(self) -> dict[str, list[Scalar]]:
        return {p.name: p.grid_values() for p in self.params}


def hydra_value(value: Any) -> str:
    """A value written so a Hydra override reads it back as the same type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    text = str(value)
    if _BARE_STRING.match(text) and text.lower() not in _RESERVED_WORDS:
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(where: str, field: str, value: Any) -> float:
    if not _is_number(value):
        hint = ""
        if isinstance(value, str) and re.fullmatch(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+", value):
            hint = f" (write {float(value):.1e}: YAML 1.1 reads {value} as text)"
        raise ConfigError(f"{where}.{field} must be a number, got {value!r}{hint}")
    if not math.isfinite(float(value)):
        raise ConfigError(f"{where}.{field} must be finite, got {value!r}")
    return value


def _parse_param(name: str, spec: Any) -> Param:
    where = f"sweep.params.{name}"
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"{where} must be a mapping with `key` and `type`, got {spec!r} "
            "(e.g. {key: model.alpha, type: float, low: 0.001, high: 10, log: true})"
        )
    kind = spec.get("type")
    if kind not in PARAM_TYPES:
        raise ConfigError(
            f"{where}.type {kind!r} is not a distribution; valid: {', '.join(PARAM_TYPES)} "
            "(int and float take `log: true` for a log scale)"
        )
    unknown = sorted(set(spec) - _FIELDS[kind])
    if unknown:
        raise ConfigError(
            f"{where}: unknown field(s) {', '.join(unknown)} for type {kind}; "
            f"valid: {', '.join(sorted(_FIELDS[kind]))}"
        )
    raw_keys = spec.get("key")
    keys = [raw_keys] if isinstance(raw_keys, str) else raw_keys
    if (
        not isinstance(keys, Sequence)
        or isinstance(keys, str)
        or not keys
        or not all(isinstance(k, str) and k.strip() for k in keys)
    ):
        raise ConfigError(
            f"{where}.key must name the Hydra key(s) the value overrides (e.g. model.alpha, "
            f"or a list of keys), got {raw_keys!r}"
        )
    keys = [k.strip() for k in keys]
    bad = [k for k in keys if not re.fullmatch(r"[A-Za-z_][\w-]*(\.[A-Za-z_0-9][\w-]*)*", k)]
    if bad:
        raise ConfigError(f"{where}.key {bad[0]!r} is not a config key (dotted names only)")

    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, Sequence) or isinstance(choices, str) or not choices:
            raise ConfigError(f"{where}.choices must be a non-empty list, got {choices!r}")
        for c in choices:
            if c is not None and not isinstance(c, str | int | float | bool):
                raise ConfigError(
                    f"{where}.choices may hold only str, int, float, bool or null, got {c!r}"
                )
        if len({(type(c), c) for c in choices}) != len(choices):
            raise ConfigError(f"{where}.choices has duplicates: {list(choices)}")
        return Param(name, tuple(keys), kind, choices=tuple(choices))

    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where} ({kind}) needs both `low` and `high`")
    low, high = _number(where, "low", spec["low"]), _number(where, "high", spec["high"])
    if low > high:
        raise ConfigError(f"{where}: low ({low}) is above high ({high})")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}.log must be true or false, got {log!r}")
    step = spec.get("step")
    if step is not None:
        step = _number(where, "step", step)
        if step <= 0:
            raise ConfigError(f"{where}.step must be positive, got {step}")
        if log:
            raise ConfigError(f"{where}: `step` and `log: true` cannot be combined")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log scale needs low > 0, got {low}")
    if kind == "int":
        for field, v in (("low", low), ("high", high), ("step", step)):
            if v is not None and float(v) != int(v):
                raise ConfigError(f"{where}.{field} must be a whole number for type int, got {v}")
        return Param(
            name, tuple(keys), kind, low=int(low), high=int(high),
            step=int(step) if step else None, log=log,
        )  # fmt: skip
    return Param(
        name, tuple(keys), kind, low=float(low), high=float(high),
        step=float(step) if step else None, log=log,
    )  # fmt: skip


def parse_space(params: Any) -> SearchSpace:
    """Check `sweep.params` and build the space.

    Raises:
        ConfigError: an empty space, a parameter with an unknown distribution or field, missing
            or inconsistent bounds, or two parameters setting the same key.
    """
    if isinstance(params, DictConfig | ListConfig):
        params = OmegaConf.to_container(params, resolve=True)
    if not isinstance(params, Mapping) or not params:
        raise ConfigError(
            "sweep.params is empty: a space needs at least one parameter "
            "(see conf/sweep/ridge.yaml)"
        )
    parsed = tuple(_parse_param(str(name), spec) for name, spec in params.items())
    seen: dict[str, str] = {}
    for p in parsed:
        for k in p.keys:
            if k in seen:
                raise ConfigError(f"sweep.params.{p.name} and .{seen[k]} both set {k}")
            seen[k] = p.name
    return SearchSpace(parsed)


def check_keys(space: SearchSpace, cfg: DictConfig, context: str = "") -> None:
    """Every key the space overrides must already be a value in the composed training config.

    Raises:
        ConfigError: a key that matches no entry, naming what the parent node does offer.
    """
    for p in space.params:
        for key in p.keys:
            value = OmegaConf.select(cfg, key, default=_MISSING, throw_on_missing=False)
            if value is _MISSING:
                parent, _, _ = key.rpartition(".")
                node = OmegaConf.select(cfg, parent, default=None) if parent else cfg
                offered = (
                    f"; {parent or 'the config'} has: {', '.join(map(str, node.keys()))}"
                    if isinstance(node, DictConfig)
                    else ""
                )
                raise ConfigError(
                    f"sweep.params.{p.name}.key {key!r} matches no config entry{context}{offered}"
                )
            if isinstance(value, DictConfig | ListConfig):
                raise ConfigError(
                    f"sweep.params.{p.name}.key {key!r} is a config node, not a value{context}"
                )
