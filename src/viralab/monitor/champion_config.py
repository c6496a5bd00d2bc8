"""The champion's logged `config.yaml` read as data, never as code.

`viralab retrain run` repeats the champion's configuration, and that file comes from the
artifact store: whoever can write artifacts can write it. Hydra's `instantiate` imports and
calls whatever `_target_` names (`os.system`, `subprocess.Popen`, `builtins.eval`), and
OmegaConf resolves `${oc.env:...}` interpolations, which would copy this job's database and S3
credentials into the params of the retrain run. So before anything is merged or trained:

- the text is parsed with `yaml.safe_load` (no Python tags) and must be a mapping;
- the keys retrain needs are checked by a schema (`model.name`, `task.family`, types of
  `seed`, `target`, ...);
- `model._target_` must be on the allowlist `retrain.allowed_targets` (conf/retrain/), and a
  `_target_` anywhere else, Hydra's other instantiate keys (`_args_`, `_partial_`, ...) and any
  `${...}` interpolation are refused.

Any of these is an :class:`UntrustedConfig`: one line naming the key and why, exit 2.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from viralab.errors import ConfigError

#: Keys Hydra's `instantiate` acts on; only `model._target_` may appear, and only allowlisted.
INSTANTIATE_KEYS = ("_target_", "_args_", "_partial_", "_recursive_", "_convert_")


class UntrustedConfig(ConfigError):
    """The champion's config.yaml asks for something retraining will not do."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: StrictStr = Field(min_length=1)
    target: StrictStr | None = Field(default=None, alias="_target_")


class _Task(BaseModel):
    model_config = ConfigDict(extra="allow")

    family: StrictStr = Field(min_length=1)
    registered_model: StrictStr | None = None
    registered_model_prefix: StrictStr | None = None


class ChampionConfig(BaseModel):
    """The keys of a logged config that retraining reads, typed; the rest passes as data."""

    model_config = ConfigDict(extra="allow")

    model: _Model
    task: _Task
    seed: StrictInt | None = None
    target: StrictStr | None = None
    features: dict[str, Any] | None = None


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(dotted path, key, value) of every mapping entry and list item, depth first."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            yield here, key, value
            yield from _walk(value, here)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            here = f"{path}[{i}]"
            yield here, None, value
            yield from _walk(value, here)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "config"
    return f"{where}: {err['msg']}"


def parse_champion_config(text: str, allowed_targets: Iterable[str]) -> dict[str, Any]:
    """The champion's config.yaml as a plain mapping, checked (see the module docstring).

    Raises:
        UntrustedConfig: not YAML data, not a mapping, a schema error, an instantiate key or
            interpolation, or a `model._target_` off the allowlist.
    """
    allowed = {str(t) for t in allowed_targets}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UntrustedConfig(
            f"the champion's config.yaml is not plain YAML data: {detail}"
        ) from None
    if not isinstance(data, dict):
        raise UntrustedConfig("the champion's config.yaml is not a mapping")
    model = data.get("model")
    if isinstance(model, dict) and isinstance(model.get("_target_"), str):
        _check_model_target(model["_target_"], allowed)  # the first reason to give
    for path, key, value in _walk(data):
        if key is not None and not isinstance(key, str):
            raise UntrustedConfig(f"the champion's config.yaml has a non-text key at {path}")
        if key in INSTANTIATE_KEYS and path != "model._target_":
            raise UntrustedConfig(
                f"refused: the champion's config.yaml sets {path}; only model._target_ may name "
                "a class, and only one on retrain.allowed_targets"
            )
        if isinstance(value, str) and "${" in value:
            raise UntrustedConfig(
                f"refused: the champion's config.yaml holds an interpolation at {path} "
                f"({value[:60]!r}); a logged config is resolved, so it is not data from training"
            )
    try:
        parsed = ChampionConfig.model_validate(data)
    except ValidationError as exc:
        raise UntrustedConfig(
            f"the champion's config.yaml does not fit the schema: {_first_error(exc)}"
        ) from None
    _check_model_target(parsed.model.target, allowed)
    return data


def _check_model_target(target: Any, allowed: set[str]) -> None:
    if target is not None and target not in allowed:
        raise UntrustedConfig(
            f"refused: the champion's config.yaml names model._target_={target!r}, which is not "
            "on retrain.allowed_targets (conf/retrain/); nothing was trained"
        )


def check_target(model_cfg: Mapping[str, Any], allowed_targets: Iterable[str]) -> None:
    """The merged config's `model._target_` (and nothing nested) is allowlisted.

    Raises:
        UntrustedConfig: it is not.
    """
    allowed = {str(t) for t in allowed_targets}
    target = model_cfg.get("_target_")
    if target is not None and str(target) not in allowed:
        raise UntrustedConfig(
            f"refused: model._target_={target!r} is not on retrain.allowed_targets"
        )
    for path, key, _ in _walk(model_cfg, "model"):
        if key in INSTANTIATE_KEYS and path != "model._target_":
            raise UntrustedConfig(f"refused: {path} in the training config")


__all__ = ["ChampionConfig", "UntrustedConfig", "check_target", "parse_champion_config"]
