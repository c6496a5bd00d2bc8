"""`viralab registry gate-set freeze|show|refresh <model>`: the frozen gate set by hand.

`freeze` fixes the gate set now (training does it at a model's first registration); `show`
prints it with its history; `refresh` replaces it, explicitly and on the record (who, when,
`--reason`), and re-scores the current champion on the new set, since every figure judged on
the old one no longer compares. Errors are one line on stderr and exit code 2.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from viralab.config import compose
from viralab.data.sources import load_stats
from viralab.entrypoint import user_errors_exit
from viralab.errors import ConfigError
from viralab.families.preference.prepare import extract_usable
from viralab.features.sequence import target_column
from viralab.promotion.evaluation import load_gate_rows, score_gate_set
from viralab.registry.client import get_client
from viralab.registry.gate_set import (
    choose_ratings,
    choose_stretch,
    current_gate_set,
    current_user,
    freeze_gate_set,
    gate_set_history,
)
from viralab.registry.holdout import first_registration, settings_from_cfg
from viralab.registry.markers import RegistrySettings, holder
from viralab.tracking import configure_tracking

EXIT_ERROR = 2

app = typer.Typer(
    help="The frozen gate set per registered model: rows no training sees, on which a "
    "challenger is compared with the champion.",
    no_args_is_help=True,
)

ModelArg = Annotated[str, typer.Argument(help="Registered model, e.g. preference.")]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="Config override for where the data comes from, e.g. --set data=files "
        "--set data.path=ratings.json (repeatable).",
        show_default=False,
    ),
]


def _compose(model: str, overrides: list[str] | None) -> tuple[Any, str]:
    """The project config for `model` and its gate-set kind (ratings | stretch)."""
    base = compose(list(overrides or []))
    forecast = compose(["model=lstm", *(overrides or [])])
    prefix = str(forecast.task.get("registered_model_prefix", "youtube-lstm-"))
    if model == str(base.task.get("registered_model", "preference")):
        cfg, kind = base, "ratings"
    elif model.startswith(prefix):
        cfg, kind = forecast, "stretch"
        target_column(model.removeprefix(prefix))  # ConfigError for an unknown target
    else:
        raise ConfigError(
            f"unknown model {model!r}: gate sets exist for "
            f"{base.task.get('registered_model', 'preference')!r} and {prefix}<target>"
        )
    configure_tracking(cfg)
    return cfg, kind


def _members(cfg: Any, kind: str, settings: Any) -> Any:
    if kind == "ratings":
        records, _ = extract_usable(cfg)
        if len(records) < settings.min_members:
            raise ConfigError(
                f"only {len(records)} usable ratings; a gate set needs at least "
                f"{settings.min_members} (champion_comparison.gate_set.min_members)"
            )
        return choose_ratings((r.get("id") for r in records), settings.fraction, settings.seed)

    return choose_stretch(load_stats(cfg.data), settings.fraction)


@app.command()
@user_errors_exit
def freeze(model: ModelArg, set_: SetOption = None) -> None:
    """Fix MODEL's gate set from the current data (no-op when it already has one)."""
    cfg, kind = _compose(model, set_)
    settings = settings_from_cfg(cfg)
    gate, created = freeze_gate_set(
        model,
        kind,  # type: ignore[arg-type]
        _members(cfg, kind, settings),
        settings,
        by=current_user(),
        reason="frozen by hand",
    )
    done = "froze" if created else "already frozen (refresh replaces it):"
    typer.echo(f"{done} {gate.describe()}")
    if created and not first_registration(model):
        typer.echo(
            f"note: {model} already has versions trained on some of these rows: their figures "
            "on the gate set are in-sample (favouring them) until the next retrain"
        )


@app.command()
@user_errors_exit
def show(model: ModelArg) -> None:
    """Print MODEL's current gate set and every earlier one (the refresh history)."""
    cfg, _ = _compose(model, None)
    history = gate_set_history(model, settings_from_cfg(cfg))
    if not history:
        typer.echo(f"{model}: no gate set frozen (`viralab registry gate-set freeze {model}`)")
        return
    for gate in reversed(history):
        when = "current"
        if gate.replaced_at:
            when = f"replaced {gate.replaced_at:%Y-%m-%d %H:%M:%S} UTC"
        typer.echo(f"[{when}] {gate.describe()}")


@app.command()
@user_errors_exit
def refresh(
    model: ModelArg,
    reason: Annotated[
        str, typer.Option("--reason", help="Why the gate set is replaced (recorded).")
    ] = "",
    set_: SetOption = None,
) -> None:
    """Replace MODEL's gate set from the current data, on the record; re-score the champion."""
    if not reason.strip():
        raise ConfigError("refresh needs --reason '...': it is recorded with who and when")
    cfg, kind = _compose(model, set_)
    settings = settings_from_cfg(cfg)
    old = _current(model, settings)
    gate, _ = freeze_gate_set(
        model,
        kind,  # type: ignore[arg-type]
        _members(cfg, kind, settings),
        settings,
        by=current_user(),
        reason=reason,
        replace=True,
    )
    if old is not None:
        typer.echo(f"replaced: {old.describe()}")
    typer.echo(f"refreshed: {gate.describe()}")
    typer.echo(_rescore_champion(cfg, model, gate))


def _current(model: str, settings: Any) -> Any:
    return current_gate_set(model, settings)


def _rescore_champion(cfg: Any, model: str, gate: Any) -> str:
    """One line: the champion's MAE/MASE on the new gate set, or why there is none."""

    try:
        settings = RegistrySettings.from_config(cfg.registry)
        client = get_client()
        champion = holder(client, settings, model, "champion")
        if champion is None:
            return f"{model} has no champion to re-score"
        uri = f"models:/{model}/{champion.version}"
        scores = score_gate_set(
            [uri], gate, load_gate_rows(gate, cfg.data), settings.champion_comparison
        )
    except Exception as exc:  # the new set is stored either way; say why there is no score
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"champion not re-scored: {type(exc).__name__}: {detail}"
    return (
        f"champion version {champion.version} on gate set {gate.digest}: "
        f"{scores.metric} {scores.figure(uri):.4g} (n={scores.n}); its training may have "
        "seen these rows, which favours the champion until the next retrain"
    )
