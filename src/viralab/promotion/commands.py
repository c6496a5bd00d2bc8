"""`viralab registry ...`: promote, rollback, sync.

Thin wrappers: compose the config, point MLflow at the configured store, call promotion/sync,
print the outcome. A `ViralabError` becomes `error: <one line>` on stderr and exit code 2; a
promotion refused by a gate exits 3 so scripts can tell "refused" from "broken".
"""

from __future__ import annotations

from typing import Annotated

import typer

from viralab.entrypoint import user_errors_exit
from viralab.promotion import gate_set_commands
from viralab.promotion.promote import Outcome, PromotionRefused
from viralab.promotion.promote import promote as do_promote
from viralab.promotion.promote import rollback as do_rollback
from viralab.registry.client import get_client
from viralab.registry.command_settings import ModeOption, console, load_settings
from viralab.registry.markers import TARGETS, RegistrySettings
from viralab.registry.sync.command import sync
from viralab.tracking.tags import FORCE_REASON, PROMOTED_AT, PROMOTED_BY

EXIT_ERROR = 2
EXIT_REFUSED = PromotionRefused.exit_code  # 3

app = typer.Typer(
    help="Model Registry: promotion with gates, rollback, sync to model_versions.",
    no_args_is_help=True,
)

ForceOption = Annotated[
    bool, typer.Option("--force", help="Promote even if a gate fails (needs --reason).")
]
ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Why; recorded as a version tag.")
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Check the gates and report; change nothing.")
]


def _print_report(outcome_or_refusal: Outcome | PromotionRefused, stderr: bool = False) -> None:
    report = outcome_or_refusal.report
    out = console(stderr)
    for result in report.results:
        style = "green" if result.passed else "red"
        out.print(f"  [{style}]{'PASS' if result.passed else 'FAIL'}[/{style}] ", end="")
        out.print(f"{result.gate}: {result.detail}", markup=False)
    for note in report.notes:
        out.print(f"  note: {note}", markup=False)


def _print_outcome(outcome: Outcome, settings: RegistrySettings) -> None:
    out = console()
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
            f"{outcome.tags.get(FORCE_REASON, '')}",
        )
    previous = f"; previous: version {outcome.previous}" if outcome.previous else ""
    if outcome.dry_run:
        out.print(f"dry run: {what} would become the {outcome.target}{previous}", markup=False)
        return
    by = outcome.tags.get(PROMOTED_BY, "?")
    at = outcome.tags.get(PROMOTED_AT, "?")
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


app.command("sync")(sync)
app.add_typer(gate_set_commands.app, name="gate-set")
