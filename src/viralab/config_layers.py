"""Where the Hydra config tree lives: the package's own tree, under the project's folders.

The complete tree ships inside the package (`viralab/conf/`), so the installed wheel runs from
any directory. A project changes a config by putting a file of the same relative path in its
own folder, searched first: `$VIRALAB_CONFIG_DIR`, then `./conf` (e.g. the git-ignored
`conf/local/default.yaml`, a new `conf/sweep/mine.yaml`, a team's `conf/registry/default.yaml`).
No Hydra import here: listing choices and finding a file must stay cheap.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from viralab.errors import ConfigError

#: The packaged tree as a Python package (Hydra's `pkg://viralab.conf`).
PACKAGED_MODULE = "viralab.conf"


def config_dir() -> Path:
    """The complete config tree shipped in the package (`viralab/conf/`).

    Every config has its default here; `config_layers()` puts the project's folders first.
    """
    return Path(__file__).resolve().with_name("conf")


def config_layers() -> list[Path]:
    """The config folders, first match wins: `$VIRALAB_CONFIG_DIR`, `./conf`, the package's.

    Why layers: a project overrides one file without copying the rest, and an empty
    directory still has every default. A folder that does not exist is skipped; a file in an
    earlier folder hides the file of the same relative path in a later one.
    """
    env = os.environ.get("VIRALAB_CONFIG_DIR")
    candidates = [Path(env)] if env else []
    candidates += [Path.cwd() / "conf", config_dir()]
    layers: list[Path] = []
    for candidate in candidates:
        if candidate.is_dir() and candidate.resolve() not in layers:
            layers.append(candidate.resolve())
    return layers


def config_file(*parts: str) -> Path | None:
    """The file at ``parts`` (e.g. `"sweep", "ridge.yaml"`) in the first layer that has it."""
    for layer in config_layers():
        path = layer.joinpath(*parts)
        if path.is_file():
            return path
    return None


def is_config_group(group: str) -> bool:
    """Whether ``group`` (`model`, `sweep/sampler`) is a config group folder in any layer."""
    return any((layer / group).is_dir() for layer in config_layers())


def group_options(group: str) -> list[str]:
    """The choices a config group offers (the YAML files in `<layer>/<group>/`, all layers)."""
    return sorted({p.stem for layer in config_layers() for p in (layer / group).glob("*.yaml")})


def check_group_choices(overrides: Iterable[str]) -> None:
    """Reject `group=choice` for a choice that does not exist, naming the valid ones.

    Hydra would say the same across a dozen lines with its search path; users get one line.
    """
    for override in overrides:
        key, sep, value = override.partition("=")
        key = key.lstrip("+~")
        if not sep or "." in key or "@" in key or not is_config_group(key):
            continue
        if value and value != "null" and config_file(key, f"{value}.yaml") is None:
            valid = ", ".join(group_options(key))
            raise ConfigError(f"unknown {key} {value!r}; valid choices: {valid}")
