"""Planning a retrain: the config the challenger trains with.

The champion's logged `config.yaml` (resolved, with secrets redacted) is merged onto a fresh
compose of the current config, except `data`, `tracking`, `registry` and `retrain`, which stay
current: retraining runs on today's data and store, with secrets from today's environment, and
the redacted `***` values are dropped rather than trained with.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from viralab.config import compose, config_file
from viralab.errors import ConfigError, ViralabError
from viralab.monitor.champion import lineage
from viralab.monitor.champion_config import check_target, parse_champion_config
from viralab.redaction import is_redacted
from viralab.registry.client import RunData, registry_errors
from viralab.tracking.tags import CONFIG_ARTIFACT

if TYPE_CHECKING:
    from mlflow import MlflowClient

#: Sections that come from the current config, not from the champion's logged one.
CURRENT_SECTIONS = ("data", "tracking", "registry", "retrain", "hydra")


class RetrainError(ViralabError):
    """Retraining could not produce a version to challenge with."""


# ------------------------------------------------------------------------------------------
# The champion's config
# ------------------------------------------------------------------------------------------


def logged_config(client: MlflowClient, run: RunData) -> tuple[str, str]:
    """The champion's `config.yaml` text and the id of the run that holds it (the version's
    run, or its parent for a `target=all` child).

    Raises:
        RetrainError: neither run logged a config.
    """
    for candidate in lineage(client, run):
        with registry_errors(f"listing artifacts of run {candidate.run_id}"):
            names = {f.path for f in client.list_artifacts(candidate.run_id)}
        if CONFIG_ARTIFACT not in names:
            continue
        with (
            registry_errors(f"downloading {CONFIG_ARTIFACT} of run {candidate.run_id}"),
            tempfile.TemporaryDirectory(prefix="viralab-config-") as tmp,
        ):
            local = client.download_artifacts(candidate.run_id, CONFIG_ARTIFACT, tmp)
            return Path(local).read_text(encoding="utf-8"), candidate.run_id
    raise RetrainError(
        f"the champion's run {run.run_id} (and its parent) logged no {CONFIG_ARTIFACT}: "
        "nothing to retrain with"
    )


def without_redacted(node: Any) -> Any:
    """A copy with every redacted value (`***`, or a URL with `:***@`) dropped, so the fresh
    config's value (from today's environment) applies instead."""
    if isinstance(node, Mapping):
        return {k: without_redacted(v) for k, v in node.items() if not is_redacted(v)}
    return node


def ignored_overrides(overrides: Sequence[str]) -> list[str]:
    """Overrides `run` does not apply: anything outside the current-config sections (the
    champion's logged config decides those)."""
    out = []
    for override in overrides:
        key = override.lstrip("+~").partition("=")[0]
        if key.split(".", 1)[0] not in CURRENT_SECTIONS:
            out.append(override)
    return out


def allowed_targets(cfg: DictConfig) -> list[str]:
    """`retrain.allowed_targets`: the classes a champion's config may name as `model._target_`."""
    section = cfg.get("retrain") or {}
    targets = section.get("allowed_targets")
    if targets is None:
        return []
    return [str(t) for t in targets]


def training_config(
    overrides: Sequence[str],
    logged_yaml: str,
    *,
    model: str,
    run_name: str,
    allowed: Sequence[str] | None = None,
) -> DictConfig:
    """The champion's logged config on a fresh compose of the current one (see module doc).

    The logged text is data from the artifact store: it is parsed through a schema and its
    `model._target_` must be on `allowed` (default: the current `retrain.allowed_targets`)
    before anything is merged (`viralab.monitor.champion_config`).

    The fresh compose picks the champion's model group (`model=<model.name>`) so the groups it
    pulls in (task, features) match; `register` is on and, for a forecaster, `target` is the
    one this registered model forecasts.

    Raises:
        UntrustedConfig: the logged config is not plain data or names a foreign `_target_`.
        ConfigError: training it would register a different model than `model`.
    """
    current = [o for o in overrides if o not in ignored_overrides(overrides)]
    if allowed is None:
        allowed = allowed_targets(compose(current))
    logged = parse_champion_config(logged_yaml, allowed)
    model_name = str((logged.get("model") or {}).get("name") or "")
    if model_name and config_file("model", f"{model_name}.yaml") is not None:
        current.insert(0, f"model={model_name}")
    fresh = compose(current)
    data = OmegaConf.to_container(fresh.data, resolve=True)  # today's data, pinned
    for section in CURRENT_SECTIONS:
        logged.pop(section, None)
    # untyped: a champion logged by an older version may carry keys today's schemas dropped
    fresh = OmegaConf.create(OmegaConf.to_container(fresh, resolve=False))
    OmegaConf.set_struct(fresh, False)
    merged = OmegaConf.merge(fresh, without_redacted(logged))
    merged.data = data
    check_target(OmegaConf.to_container(merged.model, resolve=False), allowed)  # type: ignore[arg-type]
    merged.run_name = run_name
    merged.register = True
    task = merged.task
    if task.family == "forecast":
        prefix = str(task.registered_model_prefix)
        if not model.startswith(prefix):
            raise ConfigError(f"{model!r} is not a forecaster name ({prefix}<target>)")
        merged.target = model.removeprefix(prefix)
    elif str(task.get("registered_model")) != model:
        raise ConfigError(
            f"the champion's config registers {task.get('registered_model')!r}, not {model!r}"
        )
    return merged


__all__ = [
    "CURRENT_SECTIONS",
    "RetrainError",
    "allowed_targets",
    "ignored_overrides",
    "logged_config",
    "training_config",
    "without_redacted",
]
