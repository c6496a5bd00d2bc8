"""`viralab monitor ...`: what served models said, judged by the outcomes that arrived.

    viralab monitor live [MODEL] [--since 7d] [--json]   live MAE per version and marker
    viralab monitor ab   [MODEL] [--since 30d] [--json]  champion vs challenger, a verdict

Both read the prediction log (``predictions``, in ``$VIRALAB_PREDICTION_LOG_URL`` else the
application database) joined to ratings (preference) or stats rows (forecasters); see
`viralab.monitor.live`. Exit 2 with one `error: ...` line for bad input (a `--since` that is
not a duration, an unknown model) or an unreachable database.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from viralab.config import compose
from viralab.data.database import describe_db_error, make_engine
from viralab.entrypoint import user_errors_exit
from viralab.errors import ViralabError
from viralab.monitor.ab_report import ab_report, log_ab_run
from viralab.monitor.live import has_log, live_report, outcomes, parse_since
from viralab.monitor.triggers import RetrainSettings
from viralab.promotion.evidence import write_ab_section
from viralab.redaction import mask_url
from viralab.registry.client import RegistryError, get_client, require_model
from viralab.registry.markers import RegistrySettings, holder
from viralab.serve.prediction_log import prediction_log_url
from viralab.serve.prediction_table import predictions

EXIT_ERROR = 2

app = typer.Typer(
    help="Live monitoring: logged predictions against the outcomes that arrived; A/B.",
    no_args_is_help=True,
)

ModelArgument = Annotated[
    str, typer.Argument(help="Registered model: preference | youtube-lstm-views|likes|comments.")
]
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        help="Prediction log database [default: $VIRALAB_PREDICTION_LOG_URL, else "
        "$VIRALAB_DATABASE_URL, else data/viralab.db]."
    ),
]
RaterOption = Annotated[str, typer.Option(help="Whose ratings are the outcomes (preference).")]
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON object instead of a table.")]


def _console() -> Console:
    return Console(soft_wrap=True, highlight=False)


def _window(since: str | None) -> datetime | None:
    if not since or since.strip().lower() == "all":
        return None
    return datetime.now(UTC) - parse_since(since)


def _check_model(model: str, engine: Any) -> None:
    """Unknown = neither in the registry nor in the log (a model that was served from a
    registry since deleted still has its rows to judge)."""
    from sqlalchemy import func, select

    try:
        require_model(get_client(), model)
        return
    except RegistryError:
        if has_log(engine):
            with engine.connect() as conn:
                query = select(func.count()).where(predictions.c.model == model)
                if conn.execute(query).scalar():
                    return
        raise


def _engine(database_url: str | None) -> tuple[Any, str]:
    url = prediction_log_url(database_url)
    return make_engine(url), mask_url(url) or ""


def _db_errors(exc: Exception, url: str) -> ViralabError:
    from sqlalchemy.exc import SQLAlchemyError

    if isinstance(exc, SQLAlchemyError):
        return describe_db_error(exc, url)
    raise exc


def _interval(low: float | None, high: float | None) -> str:
    return "-" if low is None or high is None else f"[{low:.4f}, {high:.4f}]"


@app.command()
@user_errors_exit
def live(
    model: ModelArgument = "preference",
    since: Annotated[str | None, typer.Option(help="Window: 30m, 12h, 7d, 2w, or all.")] = "7d",
    database_url: DatabaseOption = None,
    rater_type: RaterOption = "owner",
    as_json: JsonOption = False,
) -> None:
    """Live MAE per version and marker: logged predictions judged by later outcomes."""
    start = _window(since)
    engine, shown = _engine(database_url)
    try:
        _check_model(model, engine)
        report = live_report(engine, model, start, database=shown, rater_type=rater_type)
    except Exception as exc:
        raise _db_errors(exc, shown) from None
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
        return
    out = _console()
    when = "all time" if start is None else f"since {start:%Y-%m-%d %H:%M} UTC ({since})"
    out.print(f"{model}: live MAE, {when}, prediction log in {shown}", markup=False)
    table = Table("version", "marker", "n", "videos", "MAE", "95% interval", box=None)
    for f in report.figures:
        table.add_row(
            "-" if f.version is None else str(f.version),
            f.marker,
            str(f.n),
            str(f.n_videos),
            f"{f.mae:.4f}",
            _interval(f.low, f.high),
        )
    if report.figures:
        out.print(table)
    else:
        out.print("no logged prediction has an outcome yet", markup=False)
    c = report.counts
    out.print(
        f"logged: {c.logged} predictions ({c.with_video} with a video id); serving processes "
        f"reporting: {c.processes}, rows written {c.written}, dropped {c.dropped}",
        markup=False,
    )
    if c.dropped:
        out.print(
            f"dropped: {c.dropped} predictions were not logged (database unreachable or "
            "buffer full): the figures above miss them",
            markup=False,
        )


@app.command()
@user_errors_exit
def ab(
    model: ModelArgument = "preference",
    since: Annotated[
        str | None, typer.Option(help="Window: 30m, 12h, 7d, 2w (default: all).")
    ] = None,
    database_url: DatabaseOption = None,
    rater_type: RaterOption = "owner",
    confidence: Annotated[float, typer.Option(min=0.5, max=0.999)] = 0.95,
    min_per_arm: Annotated[
        int, typer.Option(min=2, help="Outcomes per arm before a verdict.")
    ] = 30,
    log_run: Annotated[
        bool,
        typer.Option(
            "--log/--no-log",
            help="Log the report as a run in the retraining experiment and write it into the "
            "challenger's version description.",
        ),
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Champion vs challenger on what each served: MAEs, difference, interval, n, verdict."""

    start = _window(since)
    cfg = compose()
    reg = RegistrySettings.from_config(cfg.registry)
    engine, shown = _engine(database_url)
    try:
        _check_model(model, engine)
        client = get_client()
        champ = holder(client, reg, model, "champion")
        chal = holder(client, reg, model, "challenger")
        joined = outcomes(engine, model, start, rater_type)
    except ViralabError:
        raise
    except Exception as exc:
        raise _db_errors(exc, shown) from None
    finally:
        engine.dispose()
    report = ab_report(
        joined,
        model,
        None if champ is None else int(champ.version),
        None if chal is None else int(chal.version),
        confidence=confidence,
        min_per_arm=min_per_arm,
        since=start,
    )
    run_id = None
    if log_run and chal is not None:
        experiment = RetrainSettings.from_config(cfg.get("retrain")).experiment
        run_id = log_ab_run(report, experiment)
        write_ab_section(client, model, chal.version, report.markdown())
    if as_json:
        typer.echo(json.dumps({**report.as_dict(), "run_id": run_id}))
        return
    out = _console()
    table = Table("arm", "version", "n", "videos", "MAE", f"{confidence:.0%} interval", box=None)
    for label, arm in (("champion", report.champion), ("challenger", report.challenger)):
        table.add_row(
            label,
            "-" if arm.version is None else str(arm.version),
            str(arm.n),
            str(arm.n_videos),
            "-" if arm.mae is None else f"{arm.mae:.4f}",
            _interval(arm.low, arm.high),
        )
    out.print(table)
    out.print(report.line(), markup=False)
    out.print(report.note, markup=False)
    if run_id:
        out.print(
            f"logged run {run_id}; written to {model} version {report.challenger.version}'s "
            "description",
            markup=False,
        )
