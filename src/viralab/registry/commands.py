"""`viralab registry ...`: promote, rollback, sync.

Thin wrappers: compose the config, point MLflow at the configured store, call promotion/sync,
print the outcome. A `ViralabError` becomes `error: <one line>` on stderr and exit code 2; a
promotion refused by a gate exits 3 so scripts can tell "refused" from "broken".
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from viralab.config import compose
from viralab.entrypoint import user_errors_exit
from viralab.errors import ConfigError, ViralabError
from viralab.registry import gate_set_commands
from viralab.registry.client import get_client, require_store
from viralab.registry.markers import TARGETS, RegistrySettings
from viralab.registry.promotion import Outcome, PromotionRefused
from viralab.registry.promotion import promote as do_promote
from viralab.registry.promotion import rollback as do_rollback
from viralab.registry.sync import SyncResult, describe_target, sync_registry
from viralab.tracking import configure_tracking

EXIT_ERROR = 2
EXIT_REFUSED = PromotionRefused.exit_code  # 3

app = typer.Typer(
    help="Model Registry: promotion with gates, rollback, sync to model_versions.",
    no_args_is_help=True,
)

ModeOption = Annotated[
    str | None,
    typer.Option(
        "--mode",
        help="Active marker: alias (champion/challenger) or stage (Production/Staging). "
        "Default (also for an empty value): registry.mode from conf/registry/.",
        show_default=False,
    ),
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Promote even if a gate fails (needs --reason).")
]
ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Why; recorded as a version tag.")
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Check the gates and report; change nothing.")
]


def _console(stderr: bool = False) -> Console:
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
    section = OmegaConf.to_container(cfg.registry, resolve=True)
    settings = RegistrySettings.from_config(section)  # type: ignore[arg-type]
    require_store()
    return settings


def _print_report(outcome_or_refusal: Outcome | PromotionRefused, stderr: bool = False) -> None:
    report = outcome_or_refusal.report
    out = _console(stderr)
    for result in report.results:
        style = "green" if result.passed else "red"
        out.print(f"  [{style}]{'PASS' if result.passed else 'FAIL'}[/{style}] ", end="")
        out.print(f"{result.gate}: {result.detail}", markup=False)
    for note in report.notes:
        out.print(f"  note: {note}", markup=False)


def _print_outcome(outcome: Outcome, settings: RegistrySettings) -> None:
    out = _console()
    what = f"{outcome.model} version {outcome.version}"
    if not outcome.changed:
        out.print(f"{what} already holds {settings.describe(outcome.target)}", markup=False)
        return
    verb = "rollback" if outcome.kind == "rollback" else "promotion"
    out.print(f"gates for {what} -> {outcome.target} ({verb}):", markup=False)
    _print_report(outcome)
    if outcome.forced:
        failed = len(outcome.report.failures)
        out.print(
            f"[yellow]FORCED[/yellow] past {failed} failed gate(s); reason recorded: "
            f"{outcome.tags.get('viralab.force_reason', '')}",
        )
    previous = f"; previous: version {outcome.previous}" if outcome.previous else ""
    if outcome.dry_run:
        out.print(f"dry run: {what} would become the {outcome.target}{previous}", markup=False)
        return
    by = outcome.tags.get("viralab.promoted_by", "?")
    at = outcome.tags.get("viralab.promoted_at", "?")
    out.print(
        f"{what} is now the {outcome.target} ({settings.describe(outcome.target)}{previous}) "
        f"by {by} at {at}",
        markup=False,
    )


@app.command()
@user_errors_exit
def promote(
    model: Annotated[str, typer.Argument(help="Registered model name, e.g. preference.")],
    version: Annotated[str, typer.Argument(help="Version number, or an alias it holds.")],
    to: Annotated[
        str, typer.Option("--to", help=f"Target marker: {' | '.join(TARGETS)}.", show_default=False)
    ],
    force: ForceOption = False,
    reason: ReasonOption = None,
    mode: ModeOption = None,
    dry_run: DryRunOption = False,
) -> None:
    """Check the gates, then make VERSION of MODEL the champion or the challenger."""
    settings = load_settings(mode)
    try:
        outcome = do_promote(
            get_client(), settings, model, version, to, force=force, reason=reason, dry_run=dry_run
        )
    except PromotionRefused as exc:
        typer.echo(f"gates for {model} version {version} -> {to}:", err=True)
        _print_report(exc, stderr=True)
        raise
    _print_outcome(outcome, settings)


@app.command()
@user_errors_exit
def rollback(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    force: ForceOption = False,
    reason: ReasonOption = None,
    mode: ModeOption = None,
    dry_run: DryRunOption = False,
) -> None:
    """Give champion back to the version that held it before the current one."""
    settings = load_settings(mode)
    try:
        outcome = do_rollback(
            get_client(), settings, model, force=force, reason=reason, dry_run=dry_run
        )
    except PromotionRefused as exc:
        typer.echo(f"gates for rolling {model} back:", err=True)
        _print_report(exc, stderr=True)
        raise
    _print_outcome(outcome, settings)


@user_errors_exit
def sync(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Mirror database (default: $VIRALAB_DATABASE_URL, else data/viralab.db).",
            show_default=False,
        ),
    ] = None,
    watch: Annotated[
        float | None,
        typer.Option(
            "--watch",
            metavar="SECONDS",
            min=0.1,
            help="Keep syncing every SECONDS until Ctrl-C.",
            show_default=False,
        ),
    ] = None,
    mode: ModeOption = None,
    prune: Annotated[
        bool,
        typer.Option(
            "--prune",
            help="Empty the mirror when the registry has no models (refused without it).",
        ),
    ] = False,
) -> None:
    """Make the model_versions table mirror the Model Registry (idempotent, one transaction)."""
    out = _console()
    settings = load_settings(mode)
    out.print(f"mirror: {describe_target(database_url)}", markup=False)
    if watch is None:
        _print_sync(sync_registry(settings, database_url, prune=prune))
        return
    try:
        while True:
            stamp = datetime.now(UTC).strftime("%H:%M:%S")
            try:
                result = sync_registry(settings, database_url, prune=prune)
                out.print(f"[{stamp}] ", end="", markup=False)
                _print_sync(result, table=False)
            except ViralabError as exc:  # keep watching: the next round may succeed
                typer.echo(f"[{stamp}] error: {exc}", err=True)
            time.sleep(watch)
    except KeyboardInterrupt:
        out.print("stopped")


def _print_sync(result: SyncResult, table: bool = True) -> None:
    out = _console()
    out.print(result.summary(), markup=False)
    if table and result.changed and result.active:
        grid = Table("model", "active version", box=None, pad_edge=False)
        for model, version in sorted(result.active.items()):
            grid.add_row(model, "-" if version is None else str(version))
        out.print(grid)


app.command("sync")(sync)
app.add_typer(gate_set_commands.app, name="gate-set")

# `python -m viralab.registry.sync`: the same command as a standalone program.
sync_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
sync_app.command()(sync)
