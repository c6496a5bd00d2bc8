"""The "not worse than the champion" gate, judged on the champion's own evaluation data.

Comparing the MAEs two runs logged compares two different test sets; loading the champion
run's `eval/test_set.parquet` and predicting it with both versions compares like with like.
Runs logged before that artifact existed fall back to the logged metric, and the gate says so.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from viralab.registry.client import registry_errors, run_data
from viralab.registry.gates import ComparisonSettings, GateResult, compare_mae

GATE = "not worse than champion"


def predictions(output: object) -> np.ndarray:
    """A pyfunc's output as a 1-D float array: an array/Series, or the `prediction` column."""
    if isinstance(output, pd.DataFrame):
        if "prediction" in output.columns:
            output = output["prediction"]
        elif output.shape[1] == 1:
            output = output.iloc[:, 0]
        else:
            raise ValueError(
                f"model output has columns {list(output.columns)} but no 'prediction' column"
            )
    values = np.asarray(output, dtype=float)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ValueError(f"model output has shape {values.shape}, expected one value per row")
    return values


def mae_on(model_uri: str, features: pd.DataFrame, labels: np.ndarray) -> float:
    """Mean absolute error of the model at `model_uri` on one evaluation frame."""
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(model_uri)
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
) -> tuple[GateResult, list[str]]:
    """Judge `candidate` against `champion`; returns the verdict and notes for the report."""
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
