"""The forecasters' peers (issue 16): what a practitioner tries before an LSTM.

Every peer answers the same question as the LSTM: given a video's raw counts up to an origin
(``history``: (n, T, 3) levels, oldest first, NaN before the video's segment starts) and the
origin's timestamp, the target count at ``o + H`` for each horizon H. The same class is used
in training (``viralab.forecast_peers``) and in the logged pyfunc, so both compute alike.

- :class:`NaivePeer`: one naive baseline, or ``method: best`` = per horizon the naive
  baseline with the lowest validation MAE (chosen on validation origins, never test ones);
- :class:`StatsPeer`: statsforecast's AutoETS or AutoTheta fitted per video at each origin on
  the last ``history`` counts (local models: the fit *is* the forecast, nothing is stored);
- :class:`BoostingPeer`: one global scikit-learn ``HistGradientBoostingRegressor`` per
  horizon (absolute-error loss: the median, what MAE rewards) on scale-free features: recent
  rates over 1-240 minutes divided by the last hour's rate, the other counts' trends, the
  time of day. Its target is the next H minutes' mean rate relative to the last hour's, so a
  video bigger than any seen in training is still inside the trees' range (trees cannot
  extrapolate a level or an age past the chronological split).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from viralab.errors import ConfigError
from viralab.models.naive_horizons import NAIVE, naive_forecasts, rate

#: a per-minute rate below which a count is "not moving" (one count an hour)
_FLOOR = 1.0 / 60.0
DAY = 1440  # minutes


class Peer:
    """Common interface: ``fit`` on fit (and validation) origins, ``predict`` counts."""

    name = "peer"
    kind = "peer"
    lookback = 240  # rows of history the peer reads
    any_horizon = True  # False: forecasts only the fitted horizons (others interpolated)

    def __init__(self) -> None:
        self.k = 0
        self.horizons: tuple[int, ...] = (1,)
        self.window = 20

    def fit(
        self,
        k: int,
        horizons: Sequence[int],
        window: int,
        fit: tuple[np.ndarray, np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        seed: int = 42,
    ) -> Peer:
        """Learn from (history, origin times, future target counts (n, n_h)) of each part."""
        self.k, self.horizons, self.window = int(k), tuple(int(h) for h in horizons), int(window)
        return self

    def predict(
        self, history: np.ndarray, times: np.ndarray, horizons: Sequence[int] | None = None
    ) -> np.ndarray:
        raise NotImplementedError

    def predict_steps(self, history: np.ndarray, times: np.ndarray, steps: int) -> np.ndarray:
        """Counts for every step 1..steps (n, steps): direct, or interpolated between the
        fitted horizons (linearly in the count, from the last count at step 0; beyond the
        longest horizon at its mean rate)."""
        wanted = np.arange(1, steps + 1)
        if self.any_horizon:
            return self.predict(history, times, wanted)
        fitted = np.asarray(self.horizons, dtype="float64")
        points = self.predict(history, times, self.horizons)
        last = history[:, -1, self.k]
        out = np.empty((len(history), steps))
        for i in range(len(history)):
            xs = np.concatenate([[0.0], fitted])
            ys = np.concatenate([[last[i]], points[i]])
            out[i] = np.interp(wanted, xs, ys)
            beyond = wanted > fitted[-1]
            out[i, beyond] = points[i, -1] + (points[i, -1] - last[i]) / fitted[-1] * (
                wanted[beyond] - fitted[-1]
            )
        return np.maximum.accumulate(np.maximum(out, last[:, None]), axis=1)

    def config(self) -> dict[str, Any]:
        """What rebuilds this peer (JSON), beside any fitted estimator."""
        return {
            "kind": self.kind,
            "name": self.name,
            "k": self.k,
            "horizons": list(self.horizons),
            "window": self.window,
        }


class NaivePeer(Peer):
    """A naive baseline as a model: ``method`` one of NAIVE, or ``best`` per horizon."""

    kind = "naive"

    def __init__(self, method: str = "best", name: str = "naive", lookback: int = 60) -> None:
        super().__init__()
        if method != "best" and method not in NAIVE:
            raise ConfigError(f"model.method must be best or one of {NAIVE}, got {method!r}")
        self.method, self.name, self.lookback = method, name, int(lookback)
        self.chosen: dict[int, str] = {}

    def fit(self, k, horizons, window, fit, val=None, seed=42) -> NaivePeer:
        super().fit(k, horizons, window, fit, val, seed)
        if self.method != "best":
            self.chosen = {h: self.method for h in self.horizons}
            return self
        history, _, future = val if val is not None and len(val[0]) else fit
        guesses = naive_forecasts(history[:, :, self.k], self.horizons, self.window)
        for j, h in enumerate(self.horizons):
            err = {
                n: np.nanmean(np.abs(g[:, j] - future[:, j]))
                if np.any(~np.isnan(future[:, j]))
                else np.inf
                for n, g in guesses.items()
            }
            self.chosen[h] = min(err, key=lambda n: err[n])
        return self

    def predict(self, history, times, horizons=None) -> np.ndarray:
        horizons = self.horizons if horizons is None else tuple(int(h) for h in horizons)
        guesses = naive_forecasts(history[:, :, self.k], horizons, self.window)
        longest = max(self.chosen, default=None)
        cols = []
        for j, h in enumerate(horizons):
            method = self.chosen.get(h) or (self.chosen[longest] if longest else "persistence")
            if self.method != "best":
                method = self.method
            cols.append(guesses[method][:, j])
        return np.column_stack(cols)

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "method": self.method,
            "lookback": self.lookback,
            "chosen": {str(h): m for h, m in self.chosen.items()},
        }


class StatsPeer(Peer):
    """statsforecast AutoETS / AutoTheta per video and origin, on the last ``history`` counts."""

    kind = "stats"

    def __init__(self, model: str = "ets", name: str | None = None, history: int = 120) -> None:
        super().__init__()
        if model not in ("ets", "theta"):
            raise ConfigError(f"model.model must be ets or theta, got {model!r}")
        self.model, self.name, self.lookback = model, name or model, int(history)

    def _estimator(self) -> Any:
        from statsforecast.models import AutoETS, AutoTheta

        return AutoETS(season_length=1) if self.model == "ets" else AutoTheta(season_length=1)

    def predict(self, history, times, horizons=None) -> np.ndarray:
        from statsforecast import StatsForecast

        horizons = self.horizons if horizons is None else tuple(int(h) for h in horizons)
        series = history[:, -self.lookback :, self.k]
        last = series[:, -1]
        fallback = naive_forecasts(series, horizons, self.window)["mean_increment"]
        out = fallback.copy()
        lengths = np.sum(~np.isnan(series), axis=1)
        usable = np.flatnonzero(lengths >= 10)
        if len(usable):
            frames = [
                pd.DataFrame(
                    {"unique_id": i, "ds": np.arange(lengths[i]), "y": series[i, -lengths[i] :]}
                )
                for i in usable
            ]
            fc = StatsForecast(models=[self._estimator()], freq=1, n_jobs=1).forecast(
                df=pd.concat(frames, ignore_index=True), h=int(max(horizons))
            )
            values = fc.iloc[:, -1].to_numpy(dtype="float64").reshape(len(usable), -1)
            ids = fc["unique_id"].to_numpy().reshape(len(usable), -1)[:, 0]
            cols = np.asarray(horizons) - 1
            paths = np.maximum.accumulate(values, axis=1)[:, cols]
            out[ids.astype(int)] = paths
        out = np.where(np.isfinite(out), out, fallback)
        return np.maximum(out, last[:, None])

    def config(self) -> dict[str, Any]:
        return {**super().config(), "model": self.model, "history": self.lookback}


def _one_thread() -> Any:
    """One OpenMP thread for the trees: on a busy shared machine OpenMP's spinning workers
    made a 5k-row fit minutes slow; one thread is fast enough at this size."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def _hour_angle(times: np.ndarray) -> np.ndarray:
    ts = pd.to_datetime(pd.Series(np.asarray(times)), utc=True)
    return ((ts.dt.hour + ts.dt.minute / 60.0) / 24.0 * 2 * np.pi).to_numpy(dtype="float64")


class BoostingPeer(Peer):
    """Global HistGradientBoostingRegressor per horizon on scale-free rate features."""

    kind = "boosting"
    any_horizon = False
    WINDOWS = (1, 5, 15, 30, 120, 240)

    def __init__(
        self,
        name: str = "boosting",
        max_iter: int = 200,
        learning_rate: float = 0.05,
        max_leaf_nodes: int = 15,
        min_samples_leaf: int = 50,
        l2_regularization: float = 1.0,
        loss: str = "absolute_error",
        lookback: int = 240,
        daily: bool = True,
    ) -> None:
        super().__init__()
        self.daily = bool(daily)
        self.name = name
        self.lookback = max(int(lookback), DAY + 61) if self.daily else int(lookback)
        self.params = {
            "max_iter": int(max_iter),
            "learning_rate": float(learning_rate),
            "max_leaf_nodes": int(max_leaf_nodes),
            "min_samples_leaf": int(min_samples_leaf),
            "l2_regularization": float(l2_regularization),
            "loss": str(loss),
        }
        self.models: list[Any] = []

    def features(self, history: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Scale-free features per origin (see the module docstring)."""
        k = self.k
        base = np.maximum(rate(history[:, :, k], 60), 0.0) + _FLOOR
        cols = [rate(history[:, :, k], w) / base for w in self.WINDOWS]
        cols.append(np.log1p(base))
        for j in range(history.shape[2]):
            if j == k:
                continue
            other = np.maximum(rate(history[:, :, j], 60), 0.0) + _FLOOR
            cols.append(rate(history[:, :, j], 15) / other)
            cols.append(np.maximum(rate(history[:, :, j], 240), 0.0) / other)
            cols.append(np.log(other) - np.log(base))
        angle = _hour_angle(times)
        cols += [np.sin(angle), np.cos(angle)]
        return np.column_stack(cols)

    def day_before(self, history: np.ndarray, h: int) -> np.ndarray:
        """The same minutes a day earlier, relative to the last hour's rate: how fast the count
        moved over the next ``h`` minutes then and over the hour before (NaN when the
        history is shorter than a day; the trees treat NaN as "unknown")."""
        y = history[:, :, self.k]
        T = y.shape[1]
        n = len(y)
        base = np.maximum(rate(y, 60), 0.0) + _FLOOR
        if not self.daily or T < DAY + 61 or h > DAY:
            return np.full((n, 3), np.nan)
        then = y[:, T - 1 - DAY]
        ahead = (y[:, T - 1 - DAY + h] - then) / h
        before = (then - y[:, T - 1 - DAY - 60]) / 60.0
        return np.column_stack([ahead / base, before / base, (ahead + _FLOOR) / (before + _FLOOR)])

    def fit(self, k, horizons, window, fit, val=None, seed=42) -> BoostingPeer:
        super().fit(k, horizons, window, fit, val, seed)
        history, times, future = fit
        X = self.features(history, times)
        base = np.maximum(rate(history[:, :, k], 60), 0.0) + _FLOOR
        last = history[:, -1, k]
        self.models = []
        if np.isnan(self.day_before(history, self.horizons[0])).all():
            self.daily = False  # no origin has a day of history: the trees would get no column
        with _one_thread():
            self._fit_each(history, X, base, last, future, seed)
        return self

    def _fit_each(
        self,
        history: np.ndarray,
        X: np.ndarray,
        base: np.ndarray,
        last: np.ndarray,
        future: np.ndarray,
        seed: int,
    ) -> None:
        from sklearn.ensemble import HistGradientBoostingRegressor

        self.columns_by_horizon = []
        for j, h in enumerate(self.horizons):
            known = ~np.isnan(future[:, j])
            z = ((future[known, j] - last[known]) / h) / base[known]
            model = HistGradientBoostingRegressor(random_state=seed, **self.params)
            Xh = (np.hstack([X, self.day_before(history, h)]) if self.daily else X)[known]
            # a column no known origin has (e.g. the day before, when the history is shorter)
            # cannot be binned: each horizon keeps the columns it has seen
            columns = ~np.isnan(Xh).all(axis=0)
            self.columns_by_horizon.append(columns)
            self.models.append(model.fit(Xh[:, columns], z))

    def predict(self, history, times, horizons=None) -> np.ndarray:
        horizons = self.horizons if horizons is None else tuple(int(h) for h in horizons)
        if len(history) == 0:
            return np.empty((0, len(horizons)))
        X = self.features(history, times)
        base = np.maximum(rate(history[:, :, self.k], 60), 0.0) + _FLOOR
        last = history[:, -1, self.k]
        index = {h: j for j, h in enumerate(self.horizons)}
        cols = []
        for h in horizons:
            if h not in index:  # not fitted: interpolate between the fitted horizons
                cols.append(self.predict_steps(history, times, h)[:, -1])
                continue
            with _one_thread():
                Xh = np.hstack([X, self.day_before(history, h)]) if self.daily else X
                columns = getattr(self, "columns_by_horizon", None)
                if columns is not None:
                    Xh = Xh[:, columns[index[h]]]
                z = np.maximum(self.models[index[h]].predict(Xh), 0.0)
            cols.append(last + h * z * base)
        return np.maximum(np.column_stack(cols), last[:, None])

    def config(self) -> dict[str, Any]:
        return {
            **super().config(),
            "params": self.params,
            "lookback": self.lookback,
            "daily": self.daily,
            # per horizon, which feature columns its trees were fitted on
            "columns": [c.astype(bool).tolist() for c in getattr(self, "columns_by_horizon", [])],
        }


def from_config(config: dict[str, Any], models: list[Any] | None = None) -> Peer:
    """Rebuild a fitted peer from :meth:`Peer.config` (and the boosting models).

    ``config`` was saved with a logged model, not composed: a peer saved by an older version
    may lack a key, hence the defaults here (unlike the settings of a run being trained).
    """
    kind = config["kind"]
    if kind == "naive":
        peer: Peer = NaivePeer(config["method"], config["name"], config.get("lookback", 60))
        peer.chosen = {int(h): m for h, m in config.get("chosen", {}).items()}
    elif kind == "stats":
        peer = StatsPeer(config["model"], config["name"], config["history"])
    elif kind == "boosting":
        peer = BoostingPeer(
            config["name"],
            lookback=config["lookback"],
            daily=config.get("daily", False),
            **config["params"],
        )
        peer.models = list(models or [])
        if config.get("columns"):
            peer.columns_by_horizon = [np.asarray(c, dtype=bool) for c in config["columns"]]
    else:
        raise ConfigError(f"unknown forecaster kind {kind!r}")
    peer.k, peer.window = int(config["k"]), int(config["window"])
    peer.horizons = tuple(int(h) for h in config["horizons"])
    return peer


__all__ = ["BoostingPeer", "NaivePeer", "Peer", "StatsPeer", "from_config"]
