"""`viralab retrain ...`: check the triggers, retrain when due.

    viralab retrain check [MODEL] [OVERRIDES...] [--manual] [--log]
    viralab retrain run   [MODEL] [OVERRIDES...] [--force] [--auto-promote/--no-auto-promote]

MODEL defaults to `preference` (also `youtube-lstm-views|likes|comments`); OVERRIDES are
Hydra overrides choosing the current data, store, gates or thresholds, e.g. `data=files
data.path=exports/ratings.json retrain.models.preference.new_ratings=100`.

Exit codes, for cron and CI: `check` 0 = nothing to do (no trigger fired, or the data is what
a refused challenger already saw), 10 = retrain advised; `run` 0 = done (retrained, or nothing
to do), 3 = the registry's gates refused the new version as challenger (the data it saw is
recorded, so it does not trigger again), 75 = another retrain of the model holds its lock
(EX_TEMPFAIL: try later; the line says who); both 2 = error, as one `error: ...` line on stderr,
including "cannot judge": the champion could not be scored and no trigger fired.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from viralab.config import check_group_choices, compose, expand_override_args
from viralab.entrypoint import refuse_secret_overrides, user_errors_exit
from viralab.errors import ConfigError, ViralabError
from viralab.monitor.lock import RetrainLocked
from viralab.monitor.retrain import (
    CHAMPION,
    REFUSED,
    SKIPPED,
    RetrainOutcome,
    log_check_run,
    retrain,
)
from viralab.monitor.trigger_results import CheckResult
from viralab.monitor.triggers import RetrainSettings
from viralab.monitor.triggers import check as run_check

EXIT_ERROR = 2
EXIT_REFUSED = 3
EXIT_DUE = 10
EXIT_LOCKED = RetrainLocked.exit_code  # 75
DEFAULT_MODEL = "preference"

app = typer.Typer(
    help="Retraining: triggers against the champion; retrain -> challenger -> gates.",
    no_args_is_help=True,
)

ModelArgument = Annotated[
    str,
    typer.Argument(
        help="Registered model: preference | youtube-lstm-views | youtube-lstm-likes | "
        "youtube-lstm-comments."
    ),
]
OverridesArgument = Annotated[
    list[str] | None,
    typer.Argument(
        help="Config overrides, e.g. data=files data.path=ratings.json", show_default=False
    ),
]

STATUS_STYLE = {"fired": "bold red", "quiet": "green", "not judged": "yellow", "off": "dim"}
STATUS_TEXT = {"fired": "YES", "quiet": "no", "not judged": "not judged", "off": "off"}


def _console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, soft_wrap=True, highlight=False)


def split_arguments(model: str, overrides: list[str] | None) -> tuple[str, list[str]]:
    """`viralab retrain check data=files ...`: a first argument with `=` is an override (model
    names never hold one), and the model is the default."""
    overrides = list(overrides or [])
    if "=" in model:
        return DEFAULT_MODEL, [model, *overrides]
    return model, overrides


def compose_for(model: str, overrides: list[str]) -> DictConfig:
    """The current config for `model`: a forecaster gets `model=lstm` (its task and data
    shape) unless the overrides choose a model."""
    # artifact downloads would draw tqdm bars on stderr between our lines
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    overrides = expand_override_args(overrides)
    refuse_secret_overrides(overrides)  # secrets come from the environment
    check_group_choices(overrides)
    try:
        cfg = compose(overrides)
        family = RetrainSettings.from_config(cfg.get("retrain")).for_model(model).family
        if family == "forecast" and not any(o.startswith("model=") for o in overrides):
            cfg = compose(["model=lstm", *overrides])
    except ViralabError:
        raise
    except Exception as exc:  # Hydra's override/compose errors: one line
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot compose the config: {detail}") from None
    return cfg


def print_check(result: CheckResult, advise: bool = True) -> None:
    """The triggers as a table (trigger, figure, threshold, fired?), then one line each of
    what the figure is."""
    out = _console()
    out.print(
        f"{result.model} v{result.champion.version} (champion, run {result.run.run_id}); "
        f"new = {result.basis}",
        markup=False,
    )
    table = Table("trigger", "figure", "threshold", "fired?", box=None, pad_edge=False)
    for t in result.triggers:
        style = STATUS_STYLE.get(t.status, "")
        table.add_row(
            t.name,
            t.figure_display(),
            t.threshold_text,
            f"[{style}]{STATUS_TEXT.get(t.status, t.status)}[/{style}]",
        )
    out.print(table)
    for t in result.triggers:
        if t.status != "off":
            out.print(f"  {t.name}: {t.figure_text}", markup=False)
    if result.drift is not None and result.drift.drifting:
        top = result.drift.drifting[: result.drift.settings.top_n]
        out.print(
            "  drifting features, PSI (shift p): "
            + ", ".join(f"{f.feature} {f.psi:.3f} (p={f.p_value:.1g})" for f in top),
            markup=False,
        )
    if result.due:
        names = ", ".join(t.name for t in result.fired)
        hint = f": viralab retrain run {result.model}" if advise else ""
        out.print(f"retrain advised ({names}){hint}", markup=False)
    elif result.already_judged:
        out.print(f"nothing to do: {result.already_judged}", markup=False)
    elif not result.cannot_judge:
        out.print("nothing to do: no trigger fired", markup=False)


def refuse_unjudged(result: CheckResult) -> None:
    """Raise (exit 2 with the reason) when no trigger fired because the champion could not be
    scored: that is not "nothing to do"."""
    if result.due or not result.cannot_judge:
        return
    reason = "; ".join(result.cannot_judge)
    raise ViralabError(f"cannot judge {result.model} v{result.champion.version}: {reason}")


@app.command()
@user_errors_exit
def check(
    model: ModelArgument = DEFAULT_MODEL,
    overrides: OverridesArgument = None,
    manual: Annotated[
        bool, typer.Option("--manual", help="Fire the manual trigger (exit 10 regardless).")
    ] = False,
    log_run: Annotated[
        bool,
        typer.Option("--log", help="Log a retrain-check run (triggers, drift report) to MLflow."),
    ] = False,
) -> None:
    """Judge MODEL's retrain triggers against its champion; exit 10 when retraining is advised."""
    model, overrides = split_arguments(model, overrides)
    cfg = compose_for(model, overrides)
    result = run_check(cfg, model, manual=manual)
    run_id = (
        log_check_run(result, RetrainSettings.from_config(cfg.get("retrain"))) if log_run else None
    )
    print_check(result)
    if run_id:
        _console().print(f"logged retrain-check run {run_id}", markup=False)
    refuse_unjudged(result)
    raise typer.Exit(EXIT_DUE if result.due else 0)


def print_outcome(outcome: RetrainOutcome) -> None:
    out = _console()
    if outcome.status == SKIPPED:
        if not outcome.check.already_judged and not outcome.check.cannot_judge:
            out.print("nothing to do: no trigger fired (--force retrains anyway)", markup=False)
        return
    model, version = outcome.check.model, outcome.version
    out.print(
        f"retrain run {outcome.run_id}: {model} version {version} challenges "
        f"{outcome.check.challenges}",
        markup=False,
    )
    for label, report in (
        ("challenger", outcome.challenger_gates),
        ("champion", outcome.champion_gates),
    ):
        if report is None:
            continue
        out.print(f"gates -> {label}:", markup=False)
        for r in report.results:
            style = "green" if r.passed else "red"
            out.print(f"  [{style}]{'PASS' if r.passed else 'FAIL'}[/{style}] ", end="")
            out.print(f"{r.gate}: {r.detail}", markup=False)
        for note in report.notes:
            out.print(f"  note: {note}", markup=False)
    if outcome.comparison is not None:
        out.print(f"comparison {outcome.comparison.line()}", markup=False)
        out.print(f"  note: {outcome.comparison.note}", markup=False)
    for note in outcome.notes:
        out.print(f"note: {note}", markup=False)
    if outcome.status == REFUSED:
        out.print(f"{model} version {version} was refused as challenger by the gates", markup=False)
    elif outcome.status == CHAMPION:
        out.print(f"{model} version {version} is now the champion (auto_promote)", markup=False)
    elif outcome.auto_promote:
        out.print(
            f"{model} version {version} stays challenger: the gates refused it as champion",
            markup=False,
        )
    else:
        out.print(
            f"{model} version {version} is the challenger; promote it with: "
            f"viralab registry promote {model} {version} --to champion",
            markup=False,
        )


@app.command("run")
@user_errors_exit
def run_retrain(
    model: ModelArgument = DEFAULT_MODEL,
    overrides: OverridesArgument = None,
    force: Annotated[
        bool, typer.Option("--force", help="Retrain even if no trigger fired (manual trigger).")
    ] = False,
    auto_promote: Annotated[
        bool | None,
        typer.Option(
            "--auto-promote/--no-auto-promote",
            help="Promote a challenger that passes the gates. Default: retrain.auto_promote.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Retrain MODEL when a trigger fired: champion's config, current data -> challenger."""
    model, overrides = split_arguments(model, overrides)
    cfg = compose_for(model, overrides)
    outcome = retrain(cfg, model, overrides=overrides, force=force, auto_promote=auto_promote)
    print_check(outcome.check, advise=False)
    print_outcome(outcome)
    refuse_unjudged(outcome.check)
    raise typer.Exit(EXIT_REFUSED if outcome.status == REFUSED else 0)
