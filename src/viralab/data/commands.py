"""`viralab data ...`: load, export."""

import typer

app = typer.Typer(
    help="Application data: load into the database, export training data.", no_args_is_help=True
)
