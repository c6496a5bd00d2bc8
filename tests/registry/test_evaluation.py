"""The champion comparison on the frozen gate set: the old in-sample bias is gone.

Tiny pyfunc models with the real contracts (tests/registry/fakes.py) in a throwaway store.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from tests.registry.fakes import LinearRater, NearestRater, TrendForecaster
from tests.registry.kit import RegistryKit
from viralab.families.preference.prepare import LABEL
from viralab.features.tabular import ANALYSIS_COLUMN
from viralab.promotion import evaluation
from viralab.promotion.evaluation import compare_on_champion_eval, compare_with_champion
from viralab.promotion.promote import PromotionRefused, promote
from viralab.registry.gate_set import choose_ratings, choose_stretch, freeze_gate_set
from viralab.registry.gates import ComparisonSettings, GateSetSettings
from viralab.registry.markers import RegistrySettings, mark
from viralab.tracking.tags import GATE_SET_DIGEST

SETTINGS = ComparisonSettings(tolerance=0.02)


def ratings_frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, n)
    y = 0.6 * x + 0.2 + rng.normal(0, 0.05, n)
    return pd.DataFrame(
        {
            "rating_id": [f"rt_{i:04d}" for i in range(n)],
            ANALYSIS_COLUMN: [json.dumps({"x": float(v)}) for v in x],
            LABEL: y,
            "x": x,
        }
    )


def register(kit: RegistryKit, name: str, model, *, held_out: str | None, eval_set=None):
    with mlflow.start_run(experiment_id=kit.experiment_id):
        if held_out is not None:
            mlflow.set_tag(GATE_SET_DIGEST, held_out)
        if eval_set is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "test_set.parquet"
                eval_set.to_parquet(path)
                mlflow.log_artifact(str(path), artifact_path="eval")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=model,
            registered_model_name=name,
            pip_requirements=["mlflow"],  # no inference: it reloads the model in a subprocess
        )
    return kit.client.get_model_version(name, str(info.registered_model_version))


@pytest.fixture
def scenario(kit: RegistryKit, monkeypatch: pytest.MonkeyPatch):
    """Issue 13's scenario: an honest champion, and a challenger that memorised its rows."""
    data = ratings_frame()
    gate, _ = freeze_gate_set(
        "preference",
        "ratings",
        choose_ratings(data["rating_id"], 0.2, seed=13),
        GateSetSettings(),
        by="ann",
        reason="first registration",
    )
    on_gate = data["rating_id"].isin(gate.members)
    rest = data[~on_gate].sample(frac=1.0, random_state=1)
    train, test = rest.iloc[:128], rest.iloc[128:]  # the champion's own split of the rest
    slope, intercept = np.polyfit(train["x"], train[LABEL], 1)
    champion_eval = test[[ANALYSIS_COLUMN]].assign(__label__=test[LABEL].to_numpy())
    champion = register(
        kit,
        "preference",
        LinearRater(slope, intercept),
        held_out=gate.digest,
        eval_set=champion_eval,
    )
    # a retrained challenger that saw every non-gate row, the champion's test rows included
    memoriser = register(
        kit, "preference", NearestRater(rest["x"], rest[LABEL]), held_out=gate.digest
    )
    monkeypatch.setattr(evaluation, "load_gate_rows", lambda g, data_cfg=None: data[on_gate])
    return {"gate": gate, "data": data, "champion": champion, "memoriser": memoriser}


def test_memoriser_won_on_the_champions_eval_set_and_loses_on_the_gate_set(scenario):
    client = MlflowClient()
    champion, memoriser = scenario["champion"], scenario["memoriser"]
    old, _ = compare_on_champion_eval(client, memoriser, champion, SETTINGS)
    assert old.passed and "MAE 0 <=" in old.detail  # the old bias: in-sample, error 0

    result, notes = compare_with_champion(client, memoriser, champion, SETTINGS)
    assert not result.passed, result.detail
    assert result.n == 40 and result.metric == "MAE"
    assert result.figure > 0 and result.interval[0] > result.threshold  # clearly worse
    assert f"gate set {scenario['gate'].digest}" in result.detail
    assert notes == []


def test_a_candidate_trained_on_the_gate_rows_is_refused(kit, scenario):
    data = scenario["data"]
    cheat = register(kit, "preference", NearestRater(data["x"], data[LABEL]), held_out=None)
    result, _ = compare_with_champion(MlflowClient(), cheat, scenario["champion"], SETTINGS)
    assert result.figure < 0  # it "wins": error 0 on rows it memorised...
    assert not result.passed  # ...but it never held them out
    assert "was trained without holding out gate set" in result.detail
    assert "its run holds out none" in result.detail


def test_promotion_of_the_memoriser_is_refused(scenario, settings: RegistrySettings, user):
    client = MlflowClient()
    mark(client, settings, scenario["champion"], "champion")
    with pytest.raises(PromotionRefused, match="not worse than champion"):
        promote(client, settings, "preference", scenario["memoriser"].version, "champion")


def test_a_retrain_that_is_as_good_passes(kit, scenario):
    champion = MlflowClient().get_model_version("preference", scenario["champion"].version)
    line = mlflow.pyfunc.load_model(f"models:/preference/{champion.version}").unwrap_python_model()
    nudged = LinearRater(line.slope * 1.002, line.intercept)  # the line moved a hair
    gate = scenario["gate"]
    retrain = register(kit, "preference", nudged, held_out=gate.digest)
    result, _ = compare_with_champion(MlflowClient(), retrain, champion, SETTINGS)
    assert result.passed, result.detail
    assert abs(result.figure) < result.threshold


def test_without_a_gate_set_the_old_comparison_runs_and_says_so(kit: RegistryKit):
    champion = kit.model_version("preference", {"mae": 0.1})
    candidate = kit.model_version("preference", {"mae": 0.1})
    result, notes = compare_with_champion(MlflowClient(), candidate, champion, SETTINGS)
    assert result.passed and "eval/test_set.parquet" in result.detail
    assert "no gate set frozen for preference" in notes[0]


def stats(minutes: int = 120) -> pd.DataFrame:
    """A quiet video (~5 views a minute) and a popular one (~5,000)."""
    rng = np.random.default_rng(3)
    start = pd.Timestamp("2026-01-01", tz="UTC")
    frames = []
    for video, rate in (("quiet", 5), ("popular", 5000)):
        views = np.cumsum(rng.poisson(rate, minutes))
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": pd.date_range(start, periods=minutes, freq="1min"),
                    "video_id": video,
                    "view_count": views,
                    "like_count": views // 10,
                    "comment_count": views // 100,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize(
    ("champion_factor", "candidate_factor", "passes"), [(1.0, 0.0, False), (0.0, 1.0, True)]
)
def test_forecasters_compare_in_mase_on_the_gate_stretch(
    kit: RegistryKit, monkeypatch, champion_factor, candidate_factor, passes
):
    frame = stats()
    gate, _ = freeze_gate_set(
        "youtube-lstm-views",
        "stretch",
        choose_stretch(frame, 0.2),
        GateSetSettings(),
        by="ann",
        reason="t",
    )
    monkeypatch.setattr(evaluation, "load_gate_rows", lambda g, data_cfg=None: frame)
    name = "youtube-lstm-views"
    champion = register(kit, name, TrendForecaster(champion_factor), held_out=gate.digest)
    candidate = register(kit, name, TrendForecaster(candidate_factor), held_out=gate.digest)
    result, _ = compare_with_champion(MlflowClient(), candidate, champion, SETTINGS)
    assert result.metric == "MASE" and result.n == 48  # 24 final minutes of each video
    assert result.passed is passes, result.detail
    persistence = result.reference if champion_factor == 0.0 else result.reference + result.figure
    assert persistence == pytest.approx(1.0)  # persistence's MASE is 1 by definition
    # both videos count alike: the popular one's raw counts would swamp an MAE
    assert abs(result.figure) < 1.0

    fewer = ComparisonSettings(tolerance=0.02, gate_set=GateSetSettings(max_origins=10))
    result, _ = compare_with_champion(MlflowClient(), candidate, champion, fewer)
    assert result.n == 10
