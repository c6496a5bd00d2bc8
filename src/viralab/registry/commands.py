"""`viralab registry ...`: promote, rollback, sync."""

import typer

app = typer.Typer(
    help="Model Registry: promotion with gates, rollback, sync to model_versions.",
    no_args_is_help=True,
)
