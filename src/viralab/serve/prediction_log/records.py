"""Rows from what the serving paths return: one per scored document, one per forecast row.

Runs on the caller's thread, so it builds columns (lists), not a dict per row, wherever the
log takes columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from xxhash import xxh3_128_hexdigest

from viralab.serve.input_digest import digest, document_digest
from viralab.serve.prediction_log.row_log import RowLog
from viralab.serve.prediction_log.rows import new_request_id, now_utc


def _video_id(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, float) and value != value:  # NaN from a frame column
        return None
    return str(value)


def record_scores(
    prediction_log: RowLog,
    *,
    model: str,
    version: int | str | None,
    marker: str,
    documents: Sequence[Any],
    video_ids: Sequence[Any] | None,
    result: Any,
    latency_ms: float,
    request_id: str | None = None,
) -> int:
    """One row per scored document (`result`: the preference model's output frame). Cheap on
    the caller's thread: the columns as lists and one XXH3 digest per document."""
    n = len(result["prediction"])  # a frame or its columns (a dict of arrays)
    ids = (
        [None] * n
        if video_ids is None
        else [v if type(v) is str and v else _video_id(v) for v in video_ids]
    )
    common = {
        "request_id": request_id or new_request_id(),
        "model": model,
        "version": version,
        "marker": marker,
        "latency_ms": latency_ms,
        "at": now_utc(),
    }
    columns = {
        "video_id": ids,
        "prediction": result["prediction"].tolist(),
        "score": result["score"].tolist(),
        "confidence": result["confidence"].tolist(),
    }
    # here, not on the writer's side: XXH3 costs ~0.2 us a document, less than handing the
    # text over would
    columns["input_digest"] = [
        xxh3_128_hexdigest(d.encode("utf-8")) if type(d) is str else document_digest(d)
        for d in documents
    ]
    return prediction_log.record_columns(common, columns)


def record_forecast(
    prediction_log: RowLog,
    *,
    model: str,
    version: int | str | None,
    marker: str,
    rows: Any,
    result: Any,
    latency_ms: float,
) -> int:
    """One row per forecast row (a step or a horizon of one video)."""
    # lazy: the writer process imports this package and never needs pandas
    import pandas as pd

    try:
        raw = pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes()
        input_digest = digest(raw)
    except (TypeError, ValueError):
        input_digest = ""
    request_id = new_request_id()
    at = now_utc()
    frame = result if isinstance(result, pd.DataFrame) else pd.DataFrame(result)
    videos = frame["video_id"].tolist() if "video_id" in frame else [None] * len(frame)
    stamps = (
        pd.to_datetime(frame["timestamp"], utc=True).tolist()
        if "timestamp" in frame
        else [None] * len(frame)
    )
    values = frame["prediction"].tolist() if "prediction" in frame else [None] * len(frame)
    out = [
        {
            "request_id": request_id,
            "model": model,
            "version": version,
            "marker": marker,
            "input_digest": input_digest,
            "video_id": _video_id(v),
            "prediction": None if p is None else float(p),
            "target_at": None if t is None or pd.isna(t) else t.to_pydatetime(),
            "latency_ms": latency_ms,
            "at": at,
        }
        for v, t, p in zip(videos, stamps, values, strict=False)
    ]
    return prediction_log.record_many(out)
