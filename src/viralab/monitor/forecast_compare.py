"""`viralab forecasts compare`: which forecaster family answers each horizon best (issue 16).

Reads the newest finished run of each model and target in the forecasters' experiment (what
`python -m viralab.train model=<m> target=all` logged) and prints one table per target: rows
are the models and the naive baselines, columns the horizons, cells the MAE in original
counts, the MASE and the 80 % interval coverage; the lowest MAE per horizon is bold. The same
tables (Markdown) and a plot of MAE against horizon per target are logged as artifacts of a
`forecast_compare_<timestamp>` run in the same experiment (``--no-log`` skips that).

Runs are comparable when they used the same data and `task.horizons`/`task.origin_stride`
(then they share their test origins); each row says which run it comes from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from viralab.config import compose
from viralab.entrypoint import user_errors_exit
from viralab.errors import DataError
from viralab.tracking import configure_tracking
from viralab.tracking import log as tracking_log
from viralab.tracking.tags import (
    METRIC_COVERAGE80_H_PREFIX,
    METRIC_MAE_H_PREFIX,
    METRIC_MASE_H_PREFIX,
    MODEL,
    TARGET,
    TASK,
)

app = typer.Typer(help="Forecasters side by side.", no_args_is_help=True)

TARGETS = ("views", "likes", "comments")
NAIVE = ("persistence", "drift", "mean_increment", "mean_increment_60")


def table_rows(
    runs: Mapping[str, Mapping[str, float]], horizons: Sequence[int]
) -> list[dict[str, Any]]:
    """One row per model (then per naive baseline): {name, cells: {h: (mae, mase, cov)}, best}.

    ``runs``: model name -> that model's run metrics for one target. The naive rows come from
    the first run that logged them (every run on the same origins logs the same baselines).
    """
    rows: list[dict[str, Any]] = []
    for model, m in runs.items():
        cells = {
            h: (
                m.get(f"{METRIC_MAE_H_PREFIX}{h}", math.nan),
                m.get(f"{METRIC_MASE_H_PREFIX}{h}", math.nan),
                m.get(f"{METRIC_COVERAGE80_H_PREFIX}{h}", math.nan),
            )
            for h in horizons
        }
        rows.append({"name": model, "cells": cells})
    source = next(iter(runs.values()), {})
    for name in NAIVE:
        cells = {}
        for h in horizons:
            mae = source.get(f"baseline_{name}_mae_h{h}", math.nan)
            pers = source.get(f"baseline_persistence_mae_h{h}", math.nan)
            pooled = mae / pers if pers else math.nan  # runs logged before per-video MASE
            cells[h] = (mae, source.get(f"baseline_{name}_mase_h{h}", pooled), math.nan)
        if any(not math.isnan(c[0]) for c in cells.values()):
            rows.append({"name": f"naive {name}", "cells": cells})
    for h in horizons:
        maes = [r["cells"][h][0] for r in rows if not math.isnan(r["cells"][h][0])]
        best = min(maes) if maes else math.nan
        for r in rows:
            r.setdefault("best", set())
            if r["cells"][h][0] == best:
                r["best"].add(h)
    return rows


def _fmt(cell: tuple[float, float, float]) -> str:
    mae, mase, cov = cell
    if math.isnan(mae):
        return "-"
    text = f"{mae:.3g} / {mase:.3f}" if not math.isnan(mase) else f"{mae:.3g}"
    return text + (f" ({cov:.0%})" if not math.isnan(cov) else "")


def markdown(target: str, rows: list[dict[str, Any]], horizons: Sequence[int]) -> str:
    """The table as Markdown (best MAE per horizon in bold)."""
    lines = [
        f"### {target}: MAE (counts) / MASE (80 % coverage)",
        "",
        "| model | " + " | ".join(f"H={h}" for h in horizons) + " |",
        "|---|" + "---|" * len(horizons),
    ]
    for r in rows:
        cells = [
            f"**{_fmt(r['cells'][h])}**" if h in r["best"] else _fmt(r["cells"][h])
            for h in horizons
        ]
        lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def mae_plot(target: str, rows: list[dict[str, Any]], horizons: Sequence[int]) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for r in rows:
        ys = [r["cells"][h][0] for h in horizons]
        style = "--" if r["name"].startswith("naive") else "-"
        ax.plot(horizons, ys, style, marker="o", label=r["name"])
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="horizon (minutes)",
        ylabel="MAE (counts)",
        title=f"{target}: MAE against horizon (test origins)",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def latest_runs(experiment: str) -> dict[str, dict[str, dict[str, float]]]:
    """target -> model -> metrics of the newest finished forecaster run of each."""
    runs = tracking_log.search_runs(
        experiment_names=[experiment],
        # by TASK, not FAMILY: forecaster runs logged before FAMILY was written carry TASK only
        filter_string=f"attributes.status = 'FINISHED' and tags.`{TASK}` = 'forecast'",
        order_by=["attributes.start_time DESC"],
        output_format="list",
    )
    out: dict[str, dict[str, dict[str, float]]] = {}
    for run in runs:
        target = run.data.tags.get(TARGET)
        model = run.data.tags.get(MODEL)
        if (
            not target
            or not model
            or not any(k.startswith(METRIC_MAE_H_PREFIX) for k in run.data.metrics)
        ):
            continue
        out.setdefault(target, {}).setdefault(model, dict(run.data.metrics))
    return out


def horizons_in(runs: Mapping[str, Mapping[str, float]]) -> list[int]:
    return sorted(
        {
            int(k[len(METRIC_MAE_H_PREFIX) :])
            for m in runs.values()
            for k in m
            if k.startswith(METRIC_MAE_H_PREFIX)
        }
    )


@app.command("compare")
@user_errors_exit
def compare(
    overrides: Annotated[
        list[str] | None, typer.Argument(help="config overrides, e.g. tracking=server")
    ] = None,
    log: Annotated[bool, typer.Option("--log/--no-log", help="log the tables as a run")] = True,
) -> None:
    """One table per target: models x horizons, MAE (counts) / MASE (coverage), best bold."""
    from rich.console import Console
    from rich.table import Table

    cfg = compose(["model=lstm", *(overrides or [])])
    configure_tracking(cfg)
    experiment = str(cfg.task.experiment)
    found = latest_runs(experiment)
    if not found:
        raise DataError(
            f"no finished forecaster run with per-horizon metrics in experiment {experiment!r}; "
            "train some first: python -m viralab.train model=<lstm|naive|boosting|ets|theta>"
        )
    console = Console()
    tables: dict[str, tuple[list[dict[str, Any]], list[int]]] = {}
    for target in [t for t in TARGETS if t in found]:
        horizons = horizons_in(found[target])
        rows = table_rows(found[target], horizons)
        tables[target] = (rows, horizons)
        table = Table(title=f"{target}: MAE (counts) / MASE (80 % coverage)")
        table.add_column("model")
        for h in horizons:
            table.add_column(f"H={h}", justify="right")
        for r in rows:
            table.add_row(
                r["name"],
                *[
                    f"[bold]{_fmt(r['cells'][h])}[/bold]" if h in r["best"] else _fmt(r["cells"][h])
                    for h in horizons
                ],
            )
        console.print(table)
    if not log:
        return
    stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
    tracking_log.set_experiment(experiment)
    with tracking_log.start_run(run_name=f"forecast_compare_{stamp}") as run:
        tracking_log.set_tag(TASK, "forecast_compare")
        for target, (rows, horizons) in tables.items():
            tracking_log.log_text(markdown(target, rows, horizons), f"compare/{target}.md")
            tracking_log.log_figure(mae_plot(target, rows, horizons), f"compare/mae_{target}.png")
    console.print(f"logged as run {run.info.run_id} (forecast_compare_{stamp})")


__all__ = ["app", "compare", "latest_runs", "markdown", "table_rows"]
