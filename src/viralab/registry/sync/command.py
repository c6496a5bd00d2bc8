"""`viralab registry sync` and `python -m viralab.registry.sync`: mirror the Model Registry
into the `model_versions` table, once or every `--watch` seconds. Lives beside the sync it
drives, so the sync never imports the promotion commands above it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from viralab.entrypoint import user_errors_exit
from viralab.errors import ViralabError
from viralab.registry.command_settings import ModeOption, console, load_settings
from viralab.registry.sync import SyncResult, describe_target, sync_registry


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
    out = console()
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
    out = console()
    out.print(result.summary(), markup=False)
    if table and result.changed and result.active:
        grid = Table("model", "active version", box=None, pad_edge=False)
        for model, version in sorted(result.active.items()):
            grid.add_row(model, "-" if version is None else str(version))
        out.print(grid)


# `python -m viralab.registry.sync`: the same command as a program of its own.
sync_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
sync_app.command()(sync)
