"""`viralab predict` and `viralab forecast`: score documents and roll forecasts from the CLI."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from viralab.data.files import read_json_file
from viralab.errors import DataError, ViralabError
from viralab.serve.limits import RequestLimitError
from viralab.tracking.store import is_mlflow_error


def _analysis_of(item: Any) -> Any:
    """Accept bare analyses, `{"visual_analysis": ...}` or export records."""
    if isinstance(item, dict):
        video = item.get("video")
        if isinstance(video, dict) and "visual_analysis" in video:
            return video["visual_analysis"]
        if "visual_analysis" in item and len(item) <= 3:
            return item["visual_analysis"]
    return item


class VideoLabel(str):
    """A label that is the record's own `video_id` (not made up from the file's name): it
    labels the logged prediction so the video's ratings can judge it, and keys A/B."""


def _label_of(item: Any, fallback: str) -> str:
    if isinstance(item, dict):
        if isinstance(item.get("video_id"), str | int):
            return VideoLabel(item["video_id"])
        if isinstance(item.get("id"), str | int):
            return str(item["id"])
    return fallback


def _from_json_value(value: Any, origin: str) -> Iterator[tuple[str, Any]]:
    items = value if isinstance(value, list) else [value]
    for i, item in enumerate(items):
        yield _label_of(item, f"{origin}#{i}" if len(items) > 1 else origin), _analysis_of(item)


def _jsonl(lines: Any, origin: str) -> Iterator[tuple[str, Any]]:
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{origin}: invalid JSON at line {lineno}, column {exc.colno}: {exc.msg}"
            ) from None
        yield _label_of(item, f"{origin}:{lineno}"), _analysis_of(item)


def iter_documents(source: str) -> Iterator[tuple[str, Any]]:
    """(label, analysis) pairs from a file, a directory of files, or `-` (stdin); JSONL is
    streamed line by line."""
    if source == "-":
        text = sys.stdin.read()
        try:
            yield from _from_json_value(json.loads(text), "stdin")
        except json.JSONDecodeError:
            yield from _jsonl(text.splitlines(), "stdin")
        return
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in {".json", ".jsonl"})
        if not files:
            raise DataError(f"{path}: no .json or .jsonl files")
        for f in files:
            yield from iter_documents(str(f))
        return
    if not path.exists():
        raise DataError(f"file not found: {path}")
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            yield from _jsonl(handle, str(path))
        return
    yield from _from_json_value(read_json_file(path), path.name)


def _batches(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while batch := list(itertools.islice(items, size)):
        yield batch


def predict(
    source: Annotated[str, typer.Argument(help="analysis JSON, a list, JSONL, a folder, or -")],
    model: Annotated[str, typer.Option(help="registered model name")] = "preference",
    version: Annotated[
        str | None, typer.Option(help="version number or alias (default: the active one)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
    batch_size: Annotated[int, typer.Option(help="documents scored per batch")] = 2000,
) -> None:
    """Score analysis documents 0-10 with confidence and top factors (spec 000 §7.2)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from rich.table import Table

    # lazy: the serving stack (~1.4 s of imports) loads only for the commands that score,
    # not for every `viralab` command (cli.py imports this module to register them)
    from viralab.serve.predict import score_documents

    err = Console(stderr=True)
    try:
        rows: list[dict[str, Any]] = []
        with Progress(
            TextColumn("scoring"),
            BarColumn(),
            MofNCompleteColumn(),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        ) as progress:
            task = progress.add_task("score", total=None)
            for batch in _batches(iter_documents(source), batch_size):
                labels = [label for label, _ in batch]
                ids = [str(lab) if isinstance(lab, VideoLabel) else None for lab in labels]
                scored = score_documents(
                    [doc for _, doc in batch],
                    model_name=model,
                    ref=version,
                    video_ids=ids if any(ids) else None,
                )
                for label, rec in zip(labels, scored.to_dict(orient="records"), strict=True):
                    out = {
                        "id": label,
                        "score": round(rec["score"], 4),
                        "confidence": round(rec["confidence"], 4),
                        "top_factors": json.loads(rec["top_factors"]),
                    }
                    if as_json:
                        sys.stdout.write(json.dumps(out) + "\n")
                    else:
                        rows.append(out)
                progress.advance(task, len(batch))
        if not as_json:
            table = Table("id", "score", "confidence", "top factors")
            for r in rows:
                factors = ", ".join(
                    f"{f['feature']} ({f['contribution']:+.3f})" for f in r["top_factors"][:3]
                )
                table.add_row(r["id"], f"{r['score']:.2f}", f"{r['confidence']:.2f}", factors)
            Console().print(table)
    except (ViralabError, RequestLimitError) as exc:
        typer.echo(f"error: {exc.message if isinstance(exc, RequestLimitError) else exc}", err=True)
        raise typer.Exit(2) from None
    except RecursionError:  # json.loads of a document nested ~1,000+ levels deep
        typer.echo(f"error: {source}: a document nests too deeply to read", err=True)
        raise typer.Exit(2) from None


def forecast(
    rows_file: Annotated[Path, typer.Argument(help="one video's recent rows (CSV or parquet)")],
    horizon: Annotated[int, typer.Option(min=1, help="minutes to roll forward")] = 1,
    target: Annotated[str, typer.Option(help="views | likes | comments")] = "views",
    version: Annotated[str | None, typer.Option(help="version number or alias")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Forecast the next `horizon` minutes of one video's count with the active forecaster."""
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    # lazy: as in `predict`, the serving stack loads only when a command uses it
    from viralab.serve.predict import forecast as run_forecast

    try:
        if target not in {"views", "likes", "comments"}:
            raise DataError(f"unknown target {target!r}; valid: views, likes, comments")
        if not rows_file.exists():
            raise DataError(f"file not found: {rows_file}")
        try:
            frame = (
                pd.read_parquet(rows_file)
                if rows_file.suffix in {".parquet", ".pq"}
                else pd.read_csv(rows_file)
            )
        except (ValueError, OSError) as exc:
            raise DataError(f"{rows_file}: cannot read: {exc}") from None
        result = run_forecast(frame, target=target, horizon=horizon, ref=version)
        if as_json:
            typer.echo(result.to_json(orient="records", date_format="iso"))
            return
        table = Table(*[str(c) for c in result.columns])
        for rec in result.itertuples(index=False):
            table.add_row(*[str(v) for v in rec])
        Console().print(table)
    except ViralabError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # a model that rejects the rows: say why, in one line
        if is_mlflow_error(exc) or isinstance(exc, ValueError | KeyError):
            typer.echo(f"error: forecast failed: {str(exc).splitlines()[0]}", err=True)
            raise typer.Exit(2) from None
        raise
