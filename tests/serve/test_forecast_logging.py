"""Forecasts in the prediction log: one row per forecast minute, from the pyfunc (as `mlflow
models serve` runs it) or from `viralab.serve.predict.forecast` (once, with its marker), and
judged by the stats row of that minute when it arrives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert, select

from tests.serve.test_forecast_model import ConstantNetwork, rows, scaler_for, settings
from viralab.data.database import make_engine
from viralab.data.schema import create_schema, video_stats_processed
from viralab.monitor.live import live_report
from viralab.serve import predict as serving
from viralab.serve.forecast_model import ForecastModel
from viralab.serve.prediction_log import PredictionLog, set_prediction_log
from viralab.serve.prediction_table import predictions
from viralab.serve.served_identity import ServedIdentity

MODEL = "youtube-lstm-views"


class _Known:
    def __init__(self, identity: ServedIdentity) -> None:
        self.identity = identity

    def get(self) -> ServedIdentity:
        return self.identity


@pytest.fixture
def log_db(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/app.db"
    log = PredictionLog(url, flush_interval=0.01)
    set_prediction_log(log)
    yield log, url
    log.close(2)
    set_prediction_log(None)


def _served_model(frame: pd.DataFrame) -> ForecastModel:
    model = ForecastModel(ConstantNetwork(0.0), scaler_for(frame), settings())
    model._identity = _Known(ServedIdentity(MODEL, 4, "champion"))
    return model


def _logged(url: str) -> list[dict]:
    with make_engine(url).connect() as conn:
        return [dict(r) for r in conn.execute(select(predictions)).mappings().all()]


def test_the_served_pyfunc_logs_one_row_per_forecast_minute(log_db) -> None:
    log, url = log_db
    recent = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=11)
    frame = rows(n=12, start=recent.isoformat())
    out = _served_model(frame).predict(None, frame, params={"horizon": 3})
    log.flush(5)
    logged = _logged(url)
    assert len(logged) == 3
    assert {(r["model"], r["version"], r["marker"], r["video_id"]) for r in logged} == {
        (MODEL, 4, "champion", "a")
    }
    assert [r["prediction"] for r in logged] == pytest.approx(out["prediction"].tolist())
    # the stats of those minutes arrive: the forecast is judged against them
    engine = make_engine(url)
    create_schema(engine)
    truth = out["prediction"].to_numpy() + np.array([3.0, -5.0, 10.0])
    with engine.begin() as conn:
        for stamp, value in zip(out["timestamp"], truth, strict=True):
            conn.execute(
                insert(video_stats_processed).values(
                    timestamp=pd.Timestamp(stamp).to_pydatetime(), video_id="a",
                    view_count=int(value), like_count=0, comment_count=0,
                )
            )  # fmt: skip
    report = live_report(engine, MODEL, None)
    (fig,) = report.figures
    errors = abs(out["prediction"].to_numpy() - truth.astype(int))
    assert fig.n == 3 and fig.mae == pytest.approx(errors.mean())


def test_forecast_logs_once_with_its_marker(log_db, monkeypatch: pytest.MonkeyPatch) -> None:
    log, url = log_db
    frame = rows(n=12)
    model = _served_model(frame)
    pyfunc = SimpleNamespace(predict=lambda data, params=None: model.predict(None, data, params))
    monkeypatch.setattr(
        serving, "load_model", lambda name, ref=None, **kw: (pyfunc, SimpleNamespace(version="7"))
    )
    serving.forecast(frame, target="views", horizon=2, ref="7")
    log.flush(5)
    logged = _logged(url)
    assert len(logged) == 2  # the pyfunc inside did not log a second time
    assert {(r["model"], r["version"], r["marker"]) for r in logged} == {(MODEL, 7, "explicit")}
    assert all(r["target_at"] is not None for r in logged)
