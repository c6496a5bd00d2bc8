"""`viralab`: the admin commands. Each concern registers its own sub-app here."""

from __future__ import annotations

import typer

from viralab.data.commands import app as data_app
from viralab.registry.commands import app as registry_app

app = typer.Typer(
    name="viralab",
    help="viralab admin commands: data, registry, training milestones, prediction.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")
app.add_typer(registry_app, name="registry")


if __name__ == "__main__":  # pragma: no cover
    app()
