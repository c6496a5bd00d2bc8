"""The registered stats forecaster: raw recent rows of a video in, next count(s) out.

An MLflow pyfunc around the network (saved in MLflow's Keras flavor, native ``.keras``), the
scaler fitted on training rows (joblib) and the preprocessing settings (JSON), so that
``models:/youtube-lstm-views@champion`` takes what ``video_stats_processed`` holds and answers
in original units (DESIGN principle 2: the logged model is the whole model). A peer forecaster
(``models.peers``: naive, AutoETS/AutoTheta, gradient boosting) replaces the network and
scaler by its JSON config and, for gradient boosting, its fitted trees (joblib).

The wrapper is logged as *code* (MLflow models-from-code: ``python_model`` is this file's
path and the last line calls ``mlflow.models.set_model``), not as a cloudpickle. What is still
unpickled on load: the scaler and the boosting trees (joblib). Trust boundary: whoever can
write a model's artifacts can run code in whatever loads it; load models only from a tracking
server whose artifact store only training jobs can write.

**Multi-horizon (the documented way):** ``params={"horizons": [1, 15, 60, 240]}`` returns one
row per video and horizon: ``video_id``, ``timestamp`` (origin + H), ``horizon``, ``target``,
``prediction`` and the 80 % interval ``lower_80``/``upper_80`` (split conformal, calibrated on
the validation part per horizon with the scale named by ``interval_scale`` in the settings:
``families.forecast.evaluate.scale``, read from the newest 61 rows as in training; NaN for a
horizon the model was not calibrated at). Direct forecasts: one network call per video whatever the
horizons. Pass at least 61 rows (peers: 241) for the same history the run was judged with.

Input: rows of one video (several videos are forecast one by one), the spec's columns
``timestamp``, ``video_id`` (optional), ``view_count``, ``like_count``, ``comment_count``;
growth-rate columns may be present but are recomputed, exactly as in training. At least
``sequence_length`` rows after cleaning (the same messy-row rules as training); pass one more
row than that for exact first increments, else the oldest step's increment and growth rate are
0, as at the start of a series. A gap longer than ``max_gap_steps`` starts a new segment: only
the rows after the last such gap are used.

Output (``params={"horizon": H}``, the next-step contract): one row per forecast step:
``video_id``, ``timestamp`` (the forecast minute), ``step``, ``target``, ``prediction`` (the
count). The LSTM rolls forward H steps, feeding each forecast back as the newest row; the two
counts this model does not forecast move on by their mean increment over the window (the
mean-increment baseline). Peers answer each step directly (gradient boosting interpolates
between its horizons). Cost is capped: H x videos <= ``MAX_ROLLED_STEPS`` per request, and H
<= ``MAX_HORIZON``; beyond that the request is refused with a line saying what to do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import joblib
import mlflow.models
import mlflow.pyfunc
import numpy as np
import pandas as pd

from viralab.errors import DataError
from viralab.features.sequence import COUNT_COLUMNS, Windows
from viralab.features.sequence_chain import SequenceChain
from viralab.models.baselines import mean_increment_forecast
from viralab.models.forecast_eval import intervals, scale
from viralab.models.lstm import predict_scaled
from viralab.models.peers import from_config
from viralab.serve import prediction_log as plog  # by module: tests replace its functions
from viralab.serve.forecast_signature import model_signature  # noqa: F401  (importable here)
from viralab.serve.served_identity import IdentityResolver

NETWORK_ARTIFACT = "network"
SCALER_ARTIFACT = "scaler"
PREPROCESSING_ARTIFACT = "preprocessing"
PEER_ARTIFACT = "peer"
OUTPUT_COLUMNS = ["video_id", "timestamp", "step", "target", "prediction"]
HORIZON_COLUMNS = [
    "video_id",
    "timestamp",
    "horizon",
    "target",
    "prediction",
    "lower_80",
    "upper_80",
]
MAX_HORIZON = 1_440  # one day of minutes (was a week: a request could hold a worker for minutes)
MAX_ROLLED_STEPS = 2_880  # network steps per request for params={"horizon": H}: H x videos


class ForecastModel(mlflow.pyfunc.PythonModel):
    """pyfunc: recent raw stats rows -> the next count(s) of one target."""

    def __init__(
        self,
        network: Any = None,
        scaler: Any = None,
        settings: dict | None = None,
        peer: Any = None,
    ):
        self.network = network
        self.scaler = scaler
        self.settings = settings or {}
        self.peer = peer
        self._identity = None

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self._identity = None
        if plog.get_prediction_log() is not None:  # which version, found off the load path
            self._identity = IdentityResolver(context.artifacts, context.model_config or {})
        with open(context.artifacts[PREPROCESSING_ARTIFACT], encoding="utf-8") as f:
            self.settings = json.load(f)
        if self.settings.get("kind", "lstm") != "lstm":
            path = context.artifacts.get(PEER_ARTIFACT)
            self.peer = from_config(self.settings["peer"], joblib.load(path) if path else None)
            return
        # lazy: Keras (TensorFlow) loads only for a network, never for a peer
        import mlflow.keras

        # inference only: no optimizer state to restore
        self.network = mlflow.keras.load_model(
            context.artifacts[NETWORK_ARTIFACT], load_model_kwargs={"compile": False}
        )
        self.scaler = joblib.load(context.artifacts[SCALER_ARTIFACT])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        started = time.perf_counter()
        result = self._predict(model_input, params)
        self._log(model_input, result, (time.perf_counter() - started) * 1000.0)
        return result

    def _log(self, model_input: Any, result: pd.DataFrame, latency_ms: float) -> None:
        """Record the forecast rows in the prediction log (buffered: no database work here)."""
        identity = getattr(self, "_identity", None)
        # only a loaded model logs (`load_context` found its identity while the log was on):
        # a wrapper built in code is training's (signature inference), not serving
        prediction_log = None if identity is None else plog.active_log()
        if prediction_log is None:
            return
        served = identity.get()
        plog.record_forecast(
            prediction_log,
            model=served.model,
            version=served.version,
            marker=served.marker,
            rows=model_input,
            result=result,
            latency_ms=latency_ms,
        )

    def _predict(self, model_input: pd.DataFrame, params: dict[str, Any] | None) -> pd.DataFrame:
        params = params or {}
        frame = pd.DataFrame(model_input).copy()
        if "video_id" not in frame.columns:
            frame["video_id"] = "video"
        videos = frame.groupby(frame["video_id"].astype(str), sort=False)
        horizons = params.get("horizons")
        if horizons is not None and len(horizons) > 0:
            wanted = _check_horizons(horizons)
            frames = [self._direct(rows, wanted) for _, rows in videos]
            return pd.concat(frames, ignore_index=True)[HORIZON_COLUMNS]
        horizon = params.get("horizon")
        horizon = 1 if horizon is None else int(horizon)
        if not 1 <= horizon <= MAX_HORIZON:
            raise DataError(f"horizon must be between 1 and {MAX_HORIZON}, got {horizon}")
        if horizon * videos.ngroups > MAX_ROLLED_STEPS:
            raise DataError(
                f"horizon {horizon} x {videos.ngroups} video(s) = {horizon * videos.ngroups} "
                f"forecast steps, over the cap of {MAX_ROLLED_STEPS} per request; ask for "
                'direct forecasts instead: params={"horizons": [1, 15, 60, 240]}'
            )
        if self.peer is not None:
            frames = [_peer_steps(self.peer, self.settings, rows, horizon) for _, rows in videos]
        else:
            frames = [
                forecast_series(self.network, self.scaler, self.settings, rows, horizon)
                for _, rows in videos
            ]
        return pd.concat(frames, ignore_index=True)[OUTPUT_COLUMNS]

    @property
    def chain(self) -> SequenceChain:
        """The preprocessing chain this model was trained with (from its saved settings)."""
        return SequenceChain.from_saved(self.settings)

    @property
    def target_index(self) -> int:
        """Which count column (`COUNT_COLUMNS`) this model forecasts."""
        return COUNT_COLUMNS.index(self.settings["target_column"])

    def windows_after(self, rows: pd.DataFrame, cutoff: pd.Timestamp) -> Windows:
        """Every window of ``rows`` (raw stats, any videos) whose target row is after
        ``cutoff``, its inputs from whatever rows precede it: cleaned, scaled and cut by this
        model's chain, as training cut its test windows.

        Raises:
            DataError: a peer (it forecasts from raw counts, not windows), or no usable rows.
        """
        self._need_network()
        chain = self.chain
        clean, _ = chain.clean(rows)
        scaled = chain.scale(chain.inputs(clean), self.scaler)
        parts = pd.Series(np.where(clean["timestamp"] > cutoff, "test", "fit"), index=clean.index)
        return chain.windows(clean, scaled, parts)["test"]

    def next_step_counts(self, windows: Windows) -> np.ndarray:
        """The network's next-step forecasts (H = 1) of ``windows`` (cut by `windows_after`)
        in counts of the target, rounded as the model rounds: batched, not `predict`'s one
        network call per video and step."""
        self._need_network()
        outputs = predict_scaled(self.network, windows.X, n_outputs=1)
        return self.chain.next_step_counts(
            outputs, windows, self.scaler, self.target_index, int(self.settings["input_index"])
        )

    def _need_network(self) -> None:
        if self.network is None:
            raise DataError("this forecaster is a peer: it has no network to score windows with")

    def _direct(self, rows: pd.DataFrame, horizons: tuple[int, ...]) -> pd.DataFrame:
        return forecast_horizons(
            self.settings, rows, horizons, network=self.network, scaler=self.scaler, peer=self.peer
        )


def _check_horizons(horizons: Sequence[Any]) -> tuple[int, ...]:
    try:
        out = tuple(sorted({int(h) for h in horizons}))
    except (TypeError, ValueError):
        raise DataError(f"horizons must be whole minutes, got {list(horizons)!r}") from None
    if out[0] < 1 or out[-1] > MAX_HORIZON:
        raise DataError(f"horizons must be between 1 and {MAX_HORIZON}, got {list(out)}")
    return out


def _history(segment: pd.DataFrame, length: int) -> np.ndarray:
    """(1, length, 3) raw counts of the newest rows, NaN-padded in front."""
    values = segment[list(COUNT_COLUMNS)].to_numpy(dtype="float64")[-length:]
    out = np.full((1, length, len(COUNT_COLUMNS)), np.nan)
    out[0, length - len(values) :] = values
    return out


def _usable_segment(rows: pd.DataFrame, settings: dict[str, Any]) -> tuple[str, pd.DataFrame]:
    L = int(settings["sequence_length"])
    video_id = str(rows["video_id"].iloc[0]) if len(rows) else "video"
    try:
        segment = _last_segment(rows, settings)
    except DataError:
        segment = rows.iloc[:0]
    if len(segment) < L:
        raise DataError(
            f"video {video_id}: need at least {L} consecutive rows (sequence_length) after "
            f"cleaning, got {len(rows)} row(s)"
        )
    return video_id, segment


def _peer_steps(
    peer: Any, settings: dict[str, Any], rows: pd.DataFrame, steps: int
) -> pd.DataFrame:
    """A peer's forecast of every step 1..steps (the next-step contract's output)."""
    video_id, segment = _usable_segment(rows, settings)
    history = _history(segment, max(int(peer.lookback), int(settings["sequence_length"])))
    last_ts = segment["timestamp"].iloc[-1]
    counts = peer.predict_steps(history, np.array([last_ts]), steps)[0]
    chain = SequenceChain.from_saved(settings)
    counts = chain.round(counts)
    step = pd.Timedelta(pd.tseries.frequencies.to_offset(chain.frequency))
    return pd.DataFrame(
        {
            "video_id": video_id,
            "timestamp": [last_ts + step * h for h in range(1, steps + 1)],
            "step": np.arange(1, steps + 1),
            "target": settings["target"],
            "prediction": counts.astype("float64"),
        }
    )


def forecast_horizons(
    settings: dict[str, Any],
    rows: pd.DataFrame,
    horizons: Sequence[int],
    network: Any = None,
    scaler: Any = None,
    peer: Any = None,
) -> pd.DataFrame:
    """Direct forecasts of one video at each horizon, with 80 % intervals.

    Raises:
        DataError: too few usable rows, or a horizon the network has no output for.
    """
    chain = SequenceChain.from_saved(settings)
    video_id, segment = _usable_segment(rows, settings)
    k = COUNT_COLUMNS.index(settings["target_column"])
    last_ts = segment["timestamp"].iloc[-1]
    horizons = tuple(int(h) for h in horizons)
    if peer is not None:
        history = _history(segment, max(int(peer.lookback), 61))
        point = peer.predict(history, np.array([last_ts]), horizons)
    else:
        trained = [int(h) for h in settings.get("horizons", [1])]
        missing = [h for h in horizons if h not in trained]
        if missing:
            raise DataError(
                f"this network forecasts horizons {trained} directly; {missing} not among "
                'them (params={"horizon": H} rolls forward step by step instead)'
            )
        history = _history(segment, max(chain.sequence_length, 61))
        X, levels = chain.recent_window(segment[["timestamp", *COUNT_COLUMNS]], scaler)
        out = np.asarray(network(X, training=False)).reshape(1, -1)
        out = out[:, [trained.index(h) for h in horizons]]
        point = chain.direct_counts(
            out, levels[None, :, k], horizons, scaler, int(settings["input_index"])
        )
    point = chain.round(point)
    calibrated = settings.get("interval_quantiles", {})
    q = [calibrated.get(str(h), [np.nan, np.nan]) for h in horizons]
    last = history[0, -1, k]
    # the scale the quantiles were calibrated with; models from before issue 16's fix stored
    # none and were calibrated on the plain-rate scale
    method = settings.get("interval_scale", "rate")
    lower, upper = intervals(point, scale(history[:, :, k], horizons, method), q, np.array([last]))
    step = pd.Timedelta(pd.tseries.frequencies.to_offset(chain.frequency))
    return pd.DataFrame(
        {
            "video_id": video_id,
            "timestamp": [last_ts + step * h for h in horizons],
            "horizon": list(horizons),
            "target": settings["target"],
            "prediction": point[0],
            "lower_80": np.where(np.isnan(lower[0]), np.nan, np.minimum(lower[0], point[0])),
            "upper_80": np.where(np.isnan(upper[0]), np.nan, np.maximum(upper[0], point[0])),
        }
    )


def _last_segment(rows: pd.DataFrame, settings: dict[str, Any]) -> pd.DataFrame:
    return SequenceChain.from_saved(settings).last_segment(rows)


def forecast_series(
    network: Any, scaler: Any, settings: dict[str, Any], rows: pd.DataFrame, horizon: int = 1
) -> pd.DataFrame:
    """Forecast ``horizon`` steps of one video's target count from its raw recent rows.

    Raises:
        DataError: fewer than ``sequence_length`` usable rows, or missing columns.
    """
    chain = SequenceChain.from_saved(settings)
    L = chain.sequence_length
    video_id, segment = _usable_segment(rows, settings)
    history = segment[["timestamp", *COUNT_COLUMNS]].tail(L + 1).reset_index(drop=True)
    step = pd.Timedelta(pd.tseries.frequencies.to_offset(chain.frequency))
    k = COUNT_COLUMNS.index(settings["target_column"])
    out = []
    for h in range(1, horizon + 1):
        X, levels = chain.recent_window(history, scaler)
        # column 0: the next step (a multi-horizon network has one column per horizon)
        scaled = np.asarray(network(X, training=False)).reshape(-1)[:1]
        nxt = mean_increment_forecast(levels.T)  # the covariates' naive next values
        nxt = np.maximum(nxt, levels[-1])
        nxt[k] = chain.counts(scaled, levels[None, :, k], scaler, int(settings["input_index"]))[0]
        ts = history["timestamp"].iloc[-1] + step
        value = float(chain.round(nxt[k]))
        out.append(
            {
                "video_id": video_id,
                "timestamp": ts,
                "step": h,
                "target": settings["target"],
                "prediction": value,
            }
        )
        new_row = pd.DataFrame(
            {"timestamp": [ts], **{c: [nxt[i]] for i, c in enumerate(COUNT_COLUMNS)}}
        )
        history = pd.concat([history, new_row], ignore_index=True).tail(L + 1)
    return pd.DataFrame(out, columns=OUTPUT_COLUMNS)


# models-from-code: `mlflow.pyfunc.log_model(python_model=<this file>)` runs this file on load
mlflow.models.set_model(ForecastModel())
