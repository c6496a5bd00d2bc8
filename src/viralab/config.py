"""How the Hydra config is composed and made safe to log (where it lives: `config_layers`).

The resolved config is logged with every run so any run can be repeated (DESIGN principle 3),
which means it must never carry a password, token or a URL with credentials: the rules live in
`viralab.redaction` (`redact`, `redact_text`, `redact_url` stay importable from here).
"""

from __future__ import annotations

import contextlib
import copy
import json
import shlex
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from viralab import redaction
from viralab.config_layers import (  # noqa: F401  (importable from here)
    PACKAGED_MODULE,
    check_group_choices,
    config_dir,
    config_file,
    config_layers,
    group_options,
    is_config_group,
)
from viralab.redaction import REDACTED  # noqa: F401  (importable from here)
from viralab.settings import apply_schemas, composition_error

# The rules live in `viralab.redaction`; these names stay importable from here.
is_secret_key = redaction.is_secret_key
redact = redaction.redact
redact_text = redaction.redact_text
redact_url = redaction.mask_url


def compose(
    overrides: Iterable[str] = (),
    config_name: str = "config",
    *,
    return_hydra_config: bool = False,
) -> DictConfig:
    """Compose the config outside `@hydra.main` (tests, CLI commands, sweeps).

    The packaged tree is Hydra's primary config module; `use_project_layers` puts the
    project's folders (`config_layers()`) before it on the search path. Every group is typed
    by its schema (`viralab.settings`).

    Raises:
        ConfigError: a bad override, a missing config, a value of the wrong type or a key the
            schema does not have, in one line naming the key and the file or override.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    # Function-level on purpose: config_search imports Hydra at its top, and most importers
    # of this module (serving, the CLI) never compose; it sits below this module (no circle).
    from viralab.config_search import use_project_layers

    use_project_layers()
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_module(config_module=PACKAGED_MODULE, version_base="1.3"):
        try:
            cfg = hydra_compose(
                config_name=config_name,
                overrides=list(overrides),
                return_hydra_config=return_hydra_config,
            )
        except (HydraException, OmegaConfBaseException) as exc:
            raise composition_error(exc) from None
    apply_schemas(cfg)  # a project file that replaced a packaged one without its schema
    return cfg


def expand_override_args(argv: list[str]) -> list[str]:
    """Split the one shell-quoted `overrides` argument `mlflow run` passes into Hydra overrides.

    MLflow quotes each declared parameter, so `-P overrides="model.alpha=0.3 seed=7"` arrives
    as a single argv element; an element that splits into several `key=value` tokens is
    expanded, any other element (e.g. `run_name='my run'`) is kept as it is, empties dropped.
    """
    out: list[str] = []
    for arg in argv:
        if not arg.strip():
            continue
        if any(ch.isspace() for ch in arg):
            try:
                parts = shlex.split(arg)
            except ValueError:
                parts = [arg]
            if len(parts) > 1 and all("=" in p or p.startswith("~") for p in parts):
                out.extend(parts)
                continue
        out.append(arg)
    return out


#: A config whose safe container was built another way (a sweep trial's, from its base).
_known_safe: ContextVar[tuple[DictConfig, dict[str, Any]] | None] = ContextVar(
    "viralab_known_safe_container", default=None
)


@contextlib.contextmanager
def known_safe_container(cfg: DictConfig, safe: Mapping[str, Any] | None) -> Iterator[None]:
    """In the body `to_safe_container(cfg)` (this very object) returns a copy of ``safe``.

    Why: a sweep trial's config is its base plus a few sampled values, and resolving and
    redacting the whole config again took ~3 ms a trial; the sweep builds the trial's safe form
    from the base's (`sweeps.plan.TrialComposer.safe_container`, tested equal).
    """
    if safe is None:
        yield
        return
    token = _known_safe.set((cfg, dict(safe)))
    try:
        yield
    finally:
        _known_safe.reset(token)


def to_safe_container(cfg: DictConfig) -> dict[str, Any]:
    """Resolve interpolations (env vars included) and redact: the form that may be logged."""
    known = _known_safe.get()
    if known is not None and known[0] is cfg:
        return copy.deepcopy(known[1])
    container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    return redact(container)


#: The words YAML 1.1 reads as booleans (OmegaConf's list: y, Y, yes, Yes, YES, ... OFF).
_YAML_BOOLS = frozenset(
    form
    for word in ("y", "yes", "n", "no", "true", "false", "on", "off")
    for form in (word, word.capitalize(), word.upper())
)


def _reads_as_number(text: str) -> bool:
    try:
        float(text)  # int("1_0") and the like parse as floats too
        return True
    except ValueError:
        return False


class _ConfigDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """libyaml's safe dumper quoting strings as OmegaConf's dumper does: any string that
    OmegaConf would read back as a bool or a number (`'1e-3'`, `'yes'`)."""


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    quoted = data in _YAML_BOOLS or _reads_as_number(data)
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="'" if quoted else None)


_ConfigDumper.add_representer(str, _represent_str)


def config_yaml(container: Mapping[str, Any]) -> str:
    """A plain (resolved, redacted) config as YAML, as `OmegaConf.to_yaml` writes it.

    Why not OmegaConf: re-wrapping the container in a DictConfig to print it took ~10 ms a
    trial; libyaml writes the same text (tests compare them) in under 1 ms.
    """
    return yaml.dump(
        container,
        Dumper=_ConfigDumper,
        default_flow_style=False,
        allow_unicode=True,
        sort_keys=False,
    )


def flatten_params(container: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Dot-keyed string params from a nested config, for `mlflow.log_params`."""
    flat: dict[str, str] = {}
    for k, v in container.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            flat.update(flatten_params(v, key))
        else:
            text = json.dumps(v) if isinstance(v, list | tuple) else str(v)
            flat[key] = text[:6000]
    return flat
