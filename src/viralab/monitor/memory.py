"""What a refused retrain saw, so the same data does not trigger it again.

When the registry's gates refuse a retrained challenger, the data it was trained and judged
on has not changed the verdict: retraining tomorrow on the same rows would register the same
refused version again, and again. So the refusal is recorded on the registered model, as the
tag `viralab.retrain.refused` (JSON: the champion it challenged, the refused version, a
digest, count and newest timestamp of the new data, when, why). `check` compares it with the
data it sees now: same champion and same new data -> "already judged on this data", not due
(the manual trigger, `--manual` / `--force`, still retrains). New rows change the digest and
the triggers judge again. The tag lives in the registry, so every machine sees it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from viralab.monitor.trigger_results import CheckResult
from viralab.registry.client import registry_errors
from viralab.tracking.tags import RETRAIN_REFUSED

if TYPE_CHECKING:
    from mlflow import MlflowClient

TIME_COLUMNS = ("rated_at", "timestamp")


def data_digest(frame: pd.DataFrame) -> str:
    """A digest of the new rows (order-independent, every column as text)."""
    if frame.empty:
        return "empty"
    hashed = pd.util.hash_pandas_object(frame.astype(str), index=False).sort_values()
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()[:32]


def newest(frame: pd.DataFrame) -> str | None:
    for column in TIME_COLUMNS:
        if column in frame.columns and not frame.empty:
            stamps = pd.to_datetime(frame[column], utc=True, errors="coerce", format="ISO8601")
            if stamps.notna().any():
                return stamps.max().isoformat()
    return None


@dataclass(frozen=True)
class Refusal:
    """One refused challenger and the data it saw."""

    model: str
    champion_version: str
    version: str
    data_digest: str
    n_new: int
    data_cutoff: str | None
    refused_at: str
    reason: str

    def describe(self) -> str:
        return (
            f"already judged on this data: {self.model} version {self.version} (trained on the "
            f"same {self.n_new} new rows, newest {self.data_cutoff or '-'}) was refused as "
            f"challenger of v{self.champion_version} at {self.refused_at}: {self.reason}"
        )[:900]


def record_refusal(client: MlflowClient, result: CheckResult, version: str, reason: str) -> Refusal:
    """Tag the registered model with the refusal and the data the check saw."""
    refusal = Refusal(
        model=result.model,
        champion_version=str(result.champion.version),
        version=str(version),
        data_digest=data_digest(result.recent),
        n_new=len(result.recent),
        data_cutoff=newest(result.recent),
        refused_at=datetime.now(UTC).isoformat(timespec="seconds"),
        reason=reason[:500],
    )
    with registry_errors(f"recording the refusal on {result.model}"):
        client.set_registered_model_tag(result.model, RETRAIN_REFUSED, json.dumps(asdict(refusal)))
    return refusal


def last_refusal(client: MlflowClient, model: str) -> Refusal | None:
    with registry_errors(f"reading {model}'s tags"):
        tags = client.get_registered_model(model).tags or {}
    raw = tags.get(RETRAIN_REFUSED)
    if not raw:
        return None
    try:
        data: dict[str, Any] = json.loads(raw)
        return Refusal(**data)
    except (TypeError, ValueError):
        return None  # a hand-edited tag: judge as if there were none


def judged_already(client: MlflowClient, result: CheckResult) -> Refusal | None:
    """The recorded refusal, when it challenged the same champion on the same new data."""
    refusal = last_refusal(client, result.model)
    if refusal is None or refusal.champion_version != str(result.champion.version):
        return None
    return refusal if refusal.data_digest == data_digest(result.recent) else None


__all__ = ["Refusal", "data_digest", "judged_already", "record_refusal"]
