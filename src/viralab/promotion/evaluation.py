"""The "not worse than the champion" gate, judged on the model's frozen gate set.

Both versions predict the same held-out rows, which no training saw (registry/gate_set.py):
the preference model is judged by MAE on the gate ratings, a forecaster by MASE (its MAE over
the persistence forecast's MAE on the same rolling origins inside each video's gate stretch,
through the registered pyfunc with `horizon=1`), so counts of popular and quiet videos weigh
alike. The difference gets a paired bootstrap interval (registry/comparison.py).

A model with no gate set yet falls back to the champion run's `eval/test_set.parquet` (biased
towards a retrained candidate, which saw most of those rows), then to the logged metric; the
gate's notes say so.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from viralab.config import compose
from viralab.data.sources import extract_records, load_stats
from viralab.errors import DataError, ViralabError
from viralab.families.preference.prepare import LABEL, records_frame
from viralab.features.documents import ANALYSIS_COLUMN
from viralab.features.sequence import COUNT_COLUMNS, clean_stats
from viralab.registry.client import load_pyfunc, registry_errors, run_data
from viralab.registry.comparison import GATE, judge_comparison, paired_bootstrap
from viralab.registry.gate_set import GateSet, current_gate_set, in_stretch
from viralab.registry.gates import ComparisonSettings, GateResult, compare_mae
from viralab.serve.prediction_log import suppressed
from viralab.serve.pyfunc_output import predictions, saved_settings
from viralab.tracking.tags import GATE_SET_DIGEST, NO_GATE_SET

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion


def mae_on(model_uri: str, features: pd.DataFrame, labels: np.ndarray) -> float:
    """Mean absolute error of the model at `model_uri` on one evaluation frame."""
    model = load_pyfunc(model_uri)
    with suppressed():  # judging a version is not serving it: keep it out of the prediction log
        pred = predictions(model.predict(features))
    if len(pred) != len(labels):
        raise ValueError(f"model returned {len(pred)} predictions for {len(labels)} rows")
    return float(np.mean(np.abs(pred - labels)))


def load_eval_set(
    client: MlflowClient, run_id: str, settings: ComparisonSettings
) -> pd.DataFrame | None:
    """The run's evaluation frame, or None when the run never logged one."""
    artifact = settings.eval_artifact
    parent = artifact.rsplit("/", 1)[0] if "/" in artifact else None
    with registry_errors(f"listing artifacts of run {run_id}"):
        listed = {f.path for f in client.list_artifacts(run_id, parent)}
    if artifact not in listed:
        return None
    with (
        registry_errors(f"downloading {artifact} of run {run_id}"),
        tempfile.TemporaryDirectory(prefix="viralab-eval-") as tmp,
    ):
        local = client.download_artifacts(run_id, artifact, tmp)
        return pd.read_parquet(Path(local))


def compare_with_champion(
    client: MlflowClient,
    candidate: ModelVersion,
    champion: ModelVersion,
    settings: ComparisonSettings,
    *,
    data_cfg: Any = None,
) -> tuple[GateResult, list[str]]:
    """Judge `candidate` against `champion`; returns the verdict and notes for the report.

    On the model's gate set when it has one (rows from `data_cfg`, default the project
    config's `data`); otherwise on the champion's eval artifact.
    """
    model = candidate.name
    gate = None
    if settings.gate_set.enabled:
        try:
            gate = current_gate_set(model, settings.gate_set)
        except ViralabError as exc:
            return GateResult(GATE, False, f"cannot read the gate set: {exc}"), []
    if gate is None:
        result, notes = compare_on_champion_eval(client, candidate, champion, settings)
        note = (
            f"no gate set frozen for {model} (`viralab registry gate-set freeze {model}`): "
            "compared on the champion's own evaluation data, which favours a candidate trained "
            "on a fresh split"
        )
        return result, [note, *notes]
    try:
        rows = load_gate_rows(gate, data_cfg)
    except ViralabError as exc:
        return GateResult(GATE, False, f"cannot load gate set {gate.digest}: {exc}"), []
    return compare_on_gate_set(client, candidate, champion, settings, gate, rows)


def compare_on_champion_eval(
    client: MlflowClient,
    candidate: ModelVersion,
    champion: ModelVersion,
    settings: ComparisonSettings,
) -> tuple[GateResult, list[str]]:
    """The comparison before gate sets: the champion run's eval set, else logged metrics."""
    notes: list[str] = []
    cand_name = f"version {candidate.version}"
    champ_name = f"champion version {champion.version}"
    frame = load_eval_set(client, champion.run_id, settings) if champion.run_id else None
    if frame is not None and settings.label_column in frame.columns:
        labelled = frame[frame[settings.label_column].notna()]
        labels = labelled[settings.label_column].to_numpy(dtype=float)
        features = labelled.drop(columns=[settings.label_column]).reset_index(drop=True)
        basis = f"the champion's {settings.eval_artifact} (n={len(labels)})"
        try:
            champ_mae = mae_on(f"models:/{champion.name}/{champion.version}", features, labels)
            cand_mae = mae_on(f"models:/{candidate.name}/{candidate.version}", features, labels)
        except Exception as exc:  # a model that cannot load or predict fails the gate
            detail = f"could not evaluate on {basis}: {type(exc).__name__}: {exc}"
            return GateResult(GATE, False, detail.splitlines()[0][:500]), notes
        return compare_mae(
            cand_mae,
            champ_mae,
            settings.tolerance,
            candidate=cand_name,
            champion=champ_name,
            basis=basis,
        ), notes
    reason = (
        f"champion run has no {settings.eval_artifact}"
        if frame is None
        else f"{settings.eval_artifact} has no {settings.label_column!r} column"
    )
    metric = settings.fallback_metric
    notes.append(f"{reason}: compared the runs' logged {metric} instead")
    cand_run = run_data(client, candidate.run_id)
    champ_run = run_data(client, champion.run_id)
    cand_value = cand_run.metrics.get(metric) if cand_run else None
    champ_value = champ_run.metrics.get(metric) if champ_run else None
    if cand_value is None or champ_value is None:
        missing = cand_name if cand_value is None else champ_name
        return GateResult(GATE, False, f"{reason}, and {missing} logged no {metric}"), notes
    return compare_mae(
        cand_value,
        champ_value,
        settings.tolerance,
        candidate=cand_name,
        champion=champ_name,
        basis=f"logged {metric} ({reason})",
    ), notes


# ------------------------------------------------------------------------------------------
# On the frozen gate set
# ------------------------------------------------------------------------------------------


def load_gate_rows(gate: GateSet, data_cfg: Any = None) -> pd.DataFrame:
    """The gate set's rows from the configured data source (`data:` of the project config).

    Ratings: one row per gate rating still present (analysis, label). Stretches: every stats
    row (the history before an origin is part of the input).
    """
    if data_cfg is None:
        data_cfg = compose().data
    if gate.kind == "ratings":
        records, _ = extract_records(data_cfg)
        members = set(gate.members)
        return records_frame([r for r in records if str(r.get("id")) in members])

    return load_stats(data_cfg)


@dataclass
class GateScores:
    """Per-row absolute errors of several versions on the same gate rows."""

    metric: str  # MAE | MASE
    errors: dict[str, np.ndarray]  # model URI -> errors
    scale: np.ndarray | None  # persistence errors (MASE); None for MAE
    n: int

    def figure(self, uri: str) -> float:
        denom = float(self.scale.sum()) if self.scale is not None else float(self.n)
        return float(self.errors[uri].sum() / denom) if denom else float("nan")


def score_gate_set(
    model_uris: Sequence[str], gate: GateSet, rows: pd.DataFrame, settings: ComparisonSettings
) -> GateScores:
    """Predict the gate rows with each model; the same rows (or origins) for all of them.

    Raises:
        DataError: no gate rows, or no origin with enough history in the stretch.
    """
    models = {uri: load_pyfunc(uri) for uri in model_uris}
    if gate.kind == "ratings":
        return _score_ratings(models, rows)
    return _score_stretch(models, gate, rows, settings)


def _score_ratings(models: dict[str, Any], rows: pd.DataFrame) -> GateScores:

    if rows.empty:
        raise DataError("none of the gate ratings is in the data any more")
    labels = rows[LABEL].to_numpy(dtype=float)
    features = rows[[ANALYSIS_COLUMN]].reset_index(drop=True)
    errors = {}
    for uri, model in models.items():
        with suppressed():  # gate scoring is not serving: kept out of the prediction log
            pred = predictions(model.predict(features))
        if len(pred) != len(labels):
            raise DataError(f"{uri} returned {len(pred)} predictions for {len(labels)} rows")
        errors[uri] = np.abs(pred - labels)
    return GateScores("MAE", errors, None, len(labels))


def _forecast_settings(model: Any) -> dict[str, Any]:
    settings = saved_settings(model)
    if not settings or "target_column" not in settings:
        raise DataError("the forecaster carries no preprocessing settings (target_column)")
    return settings


def gate_origins(
    clean: pd.DataFrame, gate: GateSet, history: int, max_origins: int, seed: int
) -> np.ndarray:
    """Rows inside the gate stretch with `history` earlier rows in their segment (seeded
    subsample of at most `max_origins`, in time order)."""
    position = clean.groupby("segment", sort=False).cumcount().to_numpy()
    eligible = np.flatnonzero(in_stretch(clean, [gate]) & (position >= history))
    if len(eligible) > max_origins:
        rng = np.random.default_rng(seed)
        eligible = np.sort(rng.choice(eligible, size=max_origins, replace=False))
    return eligible


def _score_stretch(
    models: dict[str, Any], gate: GateSet, stats: pd.DataFrame, settings: ComparisonSettings
) -> GateScores:
    per_model = {uri: _forecast_settings(m) for uri, m in models.items()}
    first = next(iter(per_model.values()))
    history = max(int(s["sequence_length"]) for s in per_model.values()) + 1
    clean, _ = clean_stats(
        stats,
        sequence_length=int(first["sequence_length"]),
        frequency=str(first.get("frequency", "1min")),
        max_gap_steps=int(first.get("max_gap_steps", 5)),
    )
    clean = clean.reset_index(drop=True)
    origins = gate_origins(
        clean, gate, history, settings.gate_set.max_origins, settings.gate_set.seed
    )
    if len(origins) == 0:
        raise DataError(f"no origin in gate stretch {gate.digest} has {history} rows of history")
    target = str(first["target_column"])
    actual = clean[target].to_numpy(dtype=float)[origins]
    previous = clean[target].to_numpy(dtype=float)[origins - 1]
    columns = ["timestamp", *COUNT_COLUMNS]
    keys = [f"origin-{i:05d}" for i in range(len(origins))]
    windows = zip(origins, keys, strict=True)
    batch = pd.concat(
        [clean.iloc[o - history : o][columns].assign(video_id=k) for o, k in windows],
        ignore_index=True,
    )
    batch = batch.assign(**{c: batch[c].round().astype("int64") for c in COUNT_COLUMNS})
    errors = {}
    for uri, model in models.items():
        with suppressed():  # gate scoring is not serving: kept out of the prediction log
            out = model.predict(batch, params={"horizon": 1})
        first_step = out[out["step"] == 1] if "step" in out.columns else out
        pred = first_step.set_index(first_step["video_id"].astype(str))["prediction"]
        errors[uri] = np.abs(pred.reindex(keys).to_numpy(dtype=float) - actual)
        if not np.isfinite(errors[uri]).all():
            raise DataError(f"{uri} gave no forecast for some gate origins")
    return GateScores("MASE", errors, np.abs(actual - previous), len(origins))


def compare_on_gate_set(
    client: MlflowClient,
    candidate: ModelVersion,
    champion: ModelVersion,
    settings: ComparisonSettings,
    gate: GateSet,
    rows: pd.DataFrame,
) -> tuple[GateResult, list[str]]:
    """Both versions on the gate rows; the candidate must also have been trained without
    them (its run's gate-set digest tag), or its figure would be partly in-sample again."""
    notes: list[str] = []
    cand_uri = f"models:/{candidate.name}/{candidate.version}"
    champ_uri = f"models:/{champion.name}/{champion.version}"
    basis = f"gate set {gate.digest}"
    if gate.kind == "ratings" and len(rows) < gate.size:
        missing = gate.size - len(rows)
        notes.append(f"{missing} of {gate.size} gate ratings are no longer in the data")
    try:
        scores = score_gate_set([cand_uri, champ_uri], gate, rows, settings)
        comparison = paired_bootstrap(
            scores.errors[cand_uri],
            scores.errors[champ_uri],
            scale=scores.scale,
            metric=scores.metric,
            confidence=settings.confidence,
            resamples=settings.resamples,
            seed=settings.seed,
        )
    except Exception as exc:  # a model that cannot load or predict fails the gate
        detail = f"could not evaluate on {basis}: {type(exc).__name__}: {exc}"
        return GateResult(GATE, False, detail.splitlines()[0][:500]), notes
    result = judge_comparison(
        comparison,
        settings.tolerance,
        candidate=f"version {candidate.version}",
        champion=f"champion version {champion.version}",
        basis=basis,
    )
    run = run_data(client, candidate.run_id)
    held = (run.tags if run else {}).get(GATE_SET_DIGEST) or NO_GATE_SET
    if held != gate.digest:
        result = replace(
            result,
            passed=False,
            detail=f"version {candidate.version} was trained without holding out {basis} "
            f"(its run holds out {held}); retrain it. {result.detail}",
        )
    return result, notes
