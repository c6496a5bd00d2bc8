"""Typed settings: one dataclass schema per config file, checked when the config is composed.

Each YAML under `viralab/conf/` names its schema first in its defaults list (Hydra's "schema
as first default": `defaults: [lstm_schema, ...]`), so a wrong type or an unknown key fails
composition, and a key the YAML leaves out still reads the schema's default (equal to the
packaged YAML's value; `tests/settings/test_schema.py` checks both). `register_schemas` puts
them in Hydra's ConfigStore; `viralab.config_search.use_project_layers` calls it, so every
entry point, `viralab.config.compose` and the tests' compose see them. `apply_schemas` types a
group that a project's `conf/` file replaced without naming the schema.

Code below the entry points reads the composed settings as they are (`cfg.model.loss`),
with no `.get(key, default)` of its own.

This package imports nothing from viralab but `viralab.errors` and `viralab.redaction`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from viralab.errors import ConfigError
from viralab.redaction import redact_text
from viralab.settings.data import DATA_SCHEMAS
from viralab.settings.features import FEATURES_SCHEMAS
from viralab.settings.models import MODEL_SCHEMAS
from viralab.settings.registry import RegistrySection
from viralab.settings.retrain import RetrainSection
from viralab.settings.sweep import PRUNER_SCHEMAS, SAMPLER_SCHEMAS, SweepSettings
from viralab.settings.task import TASK_SCHEMAS
from viralab.settings.tracking import TRACKING_SCHEMAS

#: Suffix of a schema's name in the ConfigStore: `conf/model/lstm.yaml` -> `model/lstm_schema`.
SCHEMA_SUFFIX = "_schema"

#: Config group -> (file name -> schema), as stored. `model` files are `@package _global_`
#: (they also override task and features), so their schemas name the `model` package.
GROUP_SCHEMAS: dict[str, Mapping[str, type]] = {
    "data": DATA_SCHEMAS,
    "features": FEATURES_SCHEMAS,
    "model": MODEL_SCHEMAS,
    "task": TASK_SCHEMAS,
    "tracking": TRACKING_SCHEMAS,
    "registry": {"default": RegistrySection},
    "retrain": {"default": RetrainSection},
    "sweep/sampler": SAMPLER_SCHEMAS,
    "sweep/pruner": PRUNER_SCHEMAS,
}

#: Schemas stored outside a group: `conf/sweep_app.yaml` names `sweep_schema` (package sweep).
ROOT_SCHEMAS: dict[str, tuple[type, str]] = {"sweep": (SweepSettings, "sweep")}

_registered = False


def register_schemas() -> None:
    """Store every schema in Hydra's ConfigStore (idempotent)."""
    global _registered
    if _registered:
        return
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    for group, schemas in GROUP_SCHEMAS.items():
        package = "model" if group == "model" else None
        for name, schema in schemas.items():
            store.store(group=group, name=f"{name}{SCHEMA_SUFFIX}", node=schema, package=package)
    for name, (schema, package) in ROOT_SCHEMAS.items():
        store.store(name=f"{name}{SCHEMA_SUFFIX}", node=schema, package=package)
    _registered = True


def _features_schema(node: Mapping[str, Any]) -> tuple[str, type | None]:
    if "sequence_length" in node:
        return "sequence", FEATURES_SCHEMAS["sequence"]
    if "min_feature_count" in node:
        return "tabular", FEATURES_SCHEMAS["tabular"]
    return "", None


def _tracking_schema(node: Any) -> tuple[str, type]:
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else node
    name = "server" if "MLFLOW_TRACKING_URI" in str(dict(raw).get("uri")) else "local"
    return name, TRACKING_SCHEMAS[name]


def _schema_for(group: str, node: Any) -> tuple[str, type | None]:
    """The schema of a composed group's node (the file it came from is not known here)."""
    if group == "model":
        name = str(node.get("name"))
        return name, MODEL_SCHEMAS.get(name)
    if group == "data":
        name = str(node.get("source"))
        return name, DATA_SCHEMAS.get(name)
    if group == "task":
        name = str(node.get("family"))
        return name, TASK_SCHEMAS.get(name)
    if group == "features":
        return _features_schema(node)
    if group == "tracking":
        return _tracking_schema(node)
    if group == "registry":
        return "default", RegistrySection
    if group == "retrain":
        return "default", RetrainSection
    if group == "sweep" and "sampler" in node:  # the sweep app's (not a sweep space's name)
        return "sweep_app", SweepSettings
    return "", None


def apply_schemas(cfg: Any) -> None:
    """Type, in place, each group of a composed training config that is not typed yet.

    A group is untyped when a project's `conf/` replaced its file with one that does not name
    the schema; this makes the schema apply all the same (types, unknown keys, defaults).

    Raises:
        ConfigError: a value of the wrong type or a key the schema does not have.
    """
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    for group in ("data", "features", "model", "task", "tracking", "registry", "retrain", "sweep"):
        node = cfg.get(group) if isinstance(cfg, DictConfig) else None
        if not isinstance(node, DictConfig):
            continue
        name, schema = _schema_for(group, node)
        if schema is None or OmegaConf.get_type(node) is schema:
            continue
        try:
            typed = OmegaConf.merge(OmegaConf.structured(schema), node)
        except OmegaConfBaseException as exc:
            where = f"{group}/{name}.yaml" if group != "sweep" else "sweep_app.yaml"
            raise ConfigError(_key_message(exc, f"{group}.", f" (in {where})")) from None
        cfg[group] = typed


def _omegaconf_cause(exc: BaseException) -> Any:
    """The first OmegaConf error in ``exc``'s chain that names a key, or None."""
    seen: BaseException | None = exc
    while seen is not None:
        if getattr(seen, "full_key", None):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _key_message(exc: BaseException, prefix: str, where: str) -> str:
    cause = _omegaconf_cause(exc)
    key = str(cause.full_key) if cause is not None else ""
    if key and prefix and not key.startswith(prefix):
        key = prefix + key
    detail = str(getattr(cause, "msg", None) or cause or exc).strip().splitlines()
    first = detail[0].strip() if detail else type(exc).__name__
    return f"{key}: {first}{where}" if key else f"{first}{where}"


_IN_FILE = re.compile(r"In '([^']+)'")
_OVERRIDE = re.compile(r"Error merging override (\S+)|Could not override '([^']+)'")


def composition_error(exc: BaseException) -> ConfigError:
    """Hydra's or OmegaConf's composition error as one line naming the key and its file.

    `model.alpha: Value 'abc' of type 'str' could not be converted to Float (override
    model.alpha=abc)`, `model.alphaa: Key 'alphaa' not in 'RidgeModel' (in model/mine.yaml)`;
    any other error keeps its own words, joined on one line. Redacted: an override may carry
    a credentialed URL.
    """
    text = str(exc)
    if _omegaconf_cause(exc) is not None:
        in_file = _IN_FILE.search(text)
        override = _OVERRIDE.search(text)
        where = (
            f" (in {in_file.group(1)}.yaml)"
            if in_file
            else f" (override {override.group(1) or override.group(2)})"
            if override
            else ""
        )
        return ConfigError(redact_text(_key_message(exc, "", where)))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return ConfigError(redact_text(" ".join(lines) or type(exc).__name__))
