"""What every `viralab registry` command shares: the `--mode` option, the console, and the
settings composed from the project config. Its own module so the sync command (here in the
registry) and the promotion commands (above it) read them from one place."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console

from viralab.config import compose
from viralab.errors import ConfigError
from viralab.registry.client import require_store
from viralab.registry.markers import RegistrySettings
from viralab.tracking import configure_tracking

ModeOption = Annotated[
    str | None,
    typer.Option(
        "--mode",
        help="Active marker: alias (champion/challenger) or stage (Production/Staging). "
        "Default (also for an empty value): registry.mode from conf/registry/.",
        show_default=False,
    ),
]


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, soft_wrap=True, highlight=False)


def load_settings(mode: str | None = None) -> RegistrySettings:
    """Compose the project config (with `registry.mode` overridden) and configure MLflow."""
    # artifact downloads would draw tqdm bars on stderr between our one-line messages
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    overrides = [f"registry.mode={mode}"] if mode else []
    try:
        cfg = compose(overrides)
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot compose the config: {detail}") from None
    configure_tracking(cfg)
    settings = RegistrySettings.from_config(cfg.registry)
    require_store()
    return settings
