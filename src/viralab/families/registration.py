"""What every family does right after its run registered (or declined to register) a
version: log the gate set it held out, then hand the version to whoever writes its evidence.

The evidence (gates, champion comparison) is promotion's, which sits above the families: the
caller (`viralab.training`) passes its writer in as `on_registered`, so a family never
imports the layer that scores it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from viralab.registry.holdout import log_gate_set

#: Called as ``on_registered(cfg, registered_model, version)`` inside the training run.
RegistrationHook = Callable[[Any, str, "str | int"], None]


def after_registration(
    cfg: Any, model: str, version: str | int | None, on_registered: RegistrationHook | None
) -> None:
    """Log the held-out gate set on the run; then, when a version was registered, call
    `on_registered` (training called directly, without a hook, writes no evidence)."""
    log_gate_set(model, registered=version is not None, cfg=cfg)
    if version is not None and on_registered is not None:
        on_registered(cfg, model, version)
