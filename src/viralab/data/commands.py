"""`viralab data ...`: load rows into the application database, export training data.

    viralab data load --sample                        # bundled sample -> data/viralab.db
    viralab data load --ratings export.json --stats stats.csv --report rejected.csv
    viralab data export --source postgres             # exports/training_data_<date>.json

The database is `--database-url`, else `$VIRALAB_DATABASE_URL`, else the embedded SQLite file
`data/viralab.db`; it is only ever printed with its password masked. Problems the user can fix
(dead database, missing file, malformed JSON, missing columns, no rows) print one
`error: ...` line on stderr and exit 2 (`viralab.entrypoint.user_errors_exit`, as every
entry point does), never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from viralab.config import redact_url
from viralab.data.database import app_database_url, normalize_url
from viralab.data.export import export_training_data
from viralab.data.files import existing_file, read_rating_rows, read_stats_frame
from viralab.data.loading import LoadReport, load_into_database
from viralab.data.sample import generate_ratings, generate_stats
from viralab.data.sources import SOURCES
from viralab.data.validation import check_stats_columns
from viralab.entrypoint import user_errors_exit
from viralab.errors import ConfigError
from viralab.redaction import register_secret

app = typer.Typer(
    help="Application data: load into the database, export training data.",
    no_args_is_help=True,
)

MAX_REJECTIONS_SHOWN = 10


def _progress_bar():  # -> rich.progress.Progress
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console(stderr=True)
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


@app.command("load")
@user_errors_exit
def load_command(
    sample: Annotated[
        bool, typer.Option("--sample", help="Load the bundled sample ratings and stats.")
    ] = False,
    ratings: Annotated[
        Path | None,
        typer.Option(help="Ratings file: the spec's JSON export, JSON Lines, CSV or parquet."),
    ] = None,
    stats: Annotated[
        Path | None,
        typer.Option(help="video_stats_processed rows: CSV, parquet, JSON or JSON Lines."),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="Target database [default: $VIRALAB_DATABASE_URL, else data/viralab.db]."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = 1000,
    report: Annotated[
        Path | None,
        typer.Option(help="Write the load report here: .json (counts + rejections) or .csv."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the bundled sample.")] = 42,
) -> None:
    """Load ratings (with their analyses) and stats into the database, idempotently.

    Rows are checked first: a bad row is set aside with its reason (see --report) and the good
    rows still load. Re-loading the same rows changes nothing and says so.
    """
    if not (sample or ratings or stats):
        raise ConfigError("nothing to load: pass --sample, --ratings FILE and/or --stats FILE")
    # (source name, rating records or None, stats frame or None), loaded in this order
    inputs: list[tuple[str, list[Any] | None, pd.DataFrame | None]] = []
    if sample:
        inputs.append(("sample", generate_ratings(seed=seed), generate_stats(seed=seed)))
    if ratings:
        inputs.append((str(ratings), read_rating_rows(existing_file(ratings)), None))
    if stats:
        frame = read_stats_frame(existing_file(stats))
        check_stats_columns(frame, str(stats))
        inputs.append((str(stats), None, frame))
    register_secret(database_url)  # masked by value too, in any message that quotes it
    url = database_url or app_database_url()
    shown = redact_url(normalize_url(url))
    typer.echo(f"Loading {' + '.join(name for name, _, _ in inputs)} into {shown}", err=True)

    total = sum(len(r or ()) + (0 if f is None else len(f)) for _, r, f in inputs)
    result = LoadReport()
    with _progress_bar() as bar:
        task = bar.add_task("loading", total=total)
        for name, rows, frame in inputs:
            load_into_database(
                url,
                ratings=rows,
                ratings_source=name,
                stats=frame,
                stats_source=name,
                batch_size=batch_size,
                progress=lambda n: bar.advance(task, n),
                report=result,
            )
    for line in result.summary_lines():
        typer.echo(line)
    if report:
        result.write(report)
        typer.echo(f"Report written to {report}", err=True)
    if result.rejected_rows:
        _warn_rejections(result, report)


def _warn_rejections(result: Any, report: Path | None) -> None:
    typer.echo(f"warning: {result.rejected_rows} row(s) rejected", err=True)
    if report:
        return
    for r in result.rejections[:MAX_REJECTIONS_SHOWN]:
        rid = f" ({r.id})" if r.id else ""
        typer.echo(f"  {r.source} row {r.row}{rid} {r.field}: {r.reason}", err=True)
    more = len(result.rejections) - MAX_REJECTIONS_SHOWN
    if more > 0:
        typer.echo(f"  ... and {more} more; pass --report FILE for the full list", err=True)


@app.command("export")
@user_errors_exit
def export_command(
    out_dir: Annotated[Path, typer.Option(help="Folder of the export file.")] = Path("exports"),
    source: Annotated[
        str,
        typer.Option(
            help="Where the ratings come from: postgres (the app database), files, sample."
        ),
    ] = "postgres",
    path: Annotated[Path | None, typer.Option(help="--source files: the ratings file.")] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="--source postgres: the database [default: $VIRALAB_DATABASE_URL, "
            "else data/viralab.db]."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="--source sample: its seed.")] = 42,
    n_videos: Annotated[int, typer.Option(help="--source sample: usable ratings.")] = 700,
    rater_type: Annotated[str, typer.Option(help="Whose ratings train the model.")] = "owner",
    min_feature_count: Annotated[
        int, typer.Option(help="Keep analyses with at least this many features.")
    ] = 100,
    version_key: Annotated[
        str, typer.Option(help="Top-level key that marks a v3 analysis.")
    ] = "comedyStyle",
) -> None:
    """Write exports/training_data_<YYYY-MM-DD>.json (spec 000 §2) from any source."""
    register_secret(database_url)  # masked by value too, in any message that quotes it
    if source not in SOURCES:
        raise ConfigError(f"unknown source {source!r}; valid: {', '.join(SOURCES)}")
    data_cfg: dict[str, Any] = {"source": source}
    if source == "files":
        if path is None:
            raise ConfigError("--source files needs --path FILE")
        data_cfg["path"] = str(path)
    elif source == "postgres":
        data_cfg["url"] = database_url
    else:
        data_cfg.update(seed=seed, n_videos=n_videos)
    written, report = export_training_data(
        data_cfg,
        out_dir,
        rater_type=rater_type,
        min_feature_count=min_feature_count,
        version_key=version_key,
    )
    typer.echo(report.summary(), err=True)
    typer.echo(f"Exported {report.kept} v3 ratings to {written}")
