"""`viralab`: the admin commands. Each concern registers its own sub-app here."""

from __future__ import annotations

import typer

from viralab.data.commands import app as data_app
from viralab.entrypoint import install_guards, refuse_secret_overrides, user_errors_exit
from viralab.monitor.commands import app as retrain_app
from viralab.monitor.forecast_compare import app as forecasts_app
from viralab.monitor.live_commands import app as monitor_app
from viralab.promotion.commands import app as registry_app
from viralab.serve.commands import forecast, predict
from viralab.service_limits import cli_limits_callback
from viralab.sweeps.cli import app as sweep_app

app = typer.Typer(
    name="viralab",
    help="viralab admin commands: data, registry, training milestones, prediction.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")
app.add_typer(registry_app, name="registry")
app.add_typer(retrain_app, name="retrain")
app.add_typer(monitor_app, name="monitor")
app.add_typer(sweep_app, name="sweep")
app.add_typer(forecasts_app, name="forecasts")


@app.callback()
def _every_command(ctx: typer.Context) -> None:
    """Every command: redacted logs, warnings and tracebacks; fail fast on dead services."""
    install_guards()
    cli_limits_callback(ctx)


app.command()(predict)
app.command()(forecast)


@app.command()
@user_errors_exit
def milestone(
    overrides: list[str] = typer.Argument(
        None, help="Config overrides choosing the data, e.g. data=files data.path=export.json"
    ),
) -> None:
    """Where the usable ratings stand on the spec's milestones (100/200/300/500), what next."""
    # imported here: keeps `viralab --help` fast
    from viralab.families.preference.milestones import data_status

    refuse_secret_overrides(overrides or [])  # secrets come from the environment
    for line in data_status(overrides or []):
        typer.echo(line)


if __name__ == "__main__":  # pragma: no cover
    app()
