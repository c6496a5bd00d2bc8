"""The training entry point: `python -m viralab.train model=... data=...` (Hydra app).

`train(cfg)` builds everything and returns the metrics (tests and sweeps call it directly);
`main` only parses the command line. `mlflow run .` reaches the same `main` through MLproject.
"""

from __future__ import annotations

import logging
import sys

import hydra
from omegaconf import DictConfig

from viralab.config import check_group_choices, expand_override_args
from viralab.config_search import PACKAGED_CONFIG, use_project_layers
from viralab.entrypoint import (
    hydra_errors_as_config_errors,
    refuse_secret_overrides,
    user_errors_exit,
)
from viralab.settings import apply_schemas
from viralab.training import FAMILIES, train_family  # noqa: F401  (FAMILIES: importable here)

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Train the configured model family on the configured data; returns its metrics."""
    return train_family(cfg)


@hydra.main(config_path=PACKAGED_CONFIG, config_name="config", version_base="1.3")
@user_errors_exit
def _hydra_main(cfg: DictConfig) -> float | None:
    apply_schemas(cfg)  # as `viralab.config.compose` does
    metrics = train(cfg)
    return metrics.get("mae")


@user_errors_exit
def main() -> None:
    overrides = expand_override_args(sys.argv[1:])
    refuse_secret_overrides(overrides)  # before Hydra writes or MLflow logs anything
    check_group_choices(overrides)
    sys.argv = [sys.argv[0], *overrides]
    use_project_layers()  # the project's conf/ before the packaged tree
    hydra_errors_as_config_errors(_hydra_main)


if __name__ == "__main__":
    main()
