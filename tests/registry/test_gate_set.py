"""The frozen gate set: chosen reproducibly, stored in the app database, held out of training,
replaced only on the record."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from typer.testing import CliRunner

from viralab.cli import app
from viralab.data.extraction import ExtractionReport
from viralab.errors import ConfigError
from viralab.features.sequence import clean_stats
from viralab.registry.gate_set import (
    choose_ratings,
    choose_stretch,
    current_gate_set,
    freeze_gate_set,
    gate_digest,
    gate_set_history,
    in_stretch,
    store_url,
)
from viralab.registry.gates import GateSetSettings
from viralab.registry.holdout import (
    applied_gate_set,
    hold_out_gate_ratings,
    hold_out_gate_stretch,
    log_gate_set,
)
from viralab.tracking.tags import GATE_SET_DIGEST


@pytest.fixture
def store(tmp_path: Path) -> GateSetSettings:
    return GateSetSettings(database_url=f"sqlite:///{tmp_path}/app.db", min_members=5)


def cfg_for(store: GateSetSettings, register: bool = True, **task):
    return OmegaConf.create(
        {
            "register": register,
            "target": "views",
            "task": {"registered_model": "preference", **task},
            "registry": {
                "champion_comparison": {
                    "gate_set": {"database_url": store.database_url, "min_members": 5}
                }
            },
        }
    )


def ratings(n: int) -> list[dict]:
    return [{"id": f"rt_{i:04d}", "overall_score": 0.5} for i in range(n)]


def stats(minutes: int = 50, videos: tuple[str, ...] = ("a", "b")) -> pd.DataFrame:
    start = pd.Timestamp("2026-01-01", tz="UTC")
    frames = []
    for k, video in enumerate(videos):
        t = pd.date_range(start, periods=minutes, freq="1min")
        views = np.cumsum(np.full(minutes, 10 * (k + 1)))
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": t,
                    "video_id": video,
                    "view_count": views,
                    "like_count": views // 10,
                    "comment_count": views // 100,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_rating_choice_is_seeded_and_a_fraction():
    ids = [f"r{i}" for i in range(100)]
    picked = choose_ratings(ids, 0.2, seed=13)
    assert len(picked) == 20 and picked == sorted(picked) and set(picked) <= set(ids)
    assert choose_ratings(reversed(ids), 0.2, seed=13) == picked  # order does not matter
    assert choose_ratings(ids, 0.2, seed=14) != picked
    assert gate_digest("ratings", picked) == gate_digest("ratings", list(picked))
    assert gate_digest("ratings", picked) != gate_digest("ratings", picked[1:])


def test_stretch_is_each_videos_final_rows():
    frame = stats(minutes=50)
    stretch = choose_stretch(frame, 0.2)
    assert sorted(stretch) == ["a", "b"]
    start, end = (pd.Timestamp(x) for x in stretch["a"])
    assert end - start == pd.Timedelta(minutes=9)  # 10 of 50 rows
    assert in_stretch(frame, []).sum() == 0


def test_missing_sqlite_store_is_not_created_by_a_read(store: GateSetSettings):
    path = Path(store.database_url.removeprefix("sqlite:///"))
    assert current_gate_set("preference", store) is None
    assert not path.exists()


def test_store_url_prefers_config_then_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("VIRALAB_GATE_SETS_URL", "postgresql://u:p@h/gates")
    assert store_url(GateSetSettings()) == "postgresql+psycopg2://u:p@h/gates"
    assert store_url(GateSetSettings(database_url="sqlite:///x.db")) == "sqlite:///x.db"
    monkeypatch.delenv("VIRALAB_GATE_SETS_URL")
    monkeypatch.delenv("VIRALAB_DATABASE_URL", raising=False)
    assert store_url(GateSetSettings()) == "sqlite:///data/viralab.db"


def test_freeze_once_then_refresh_is_audited(store: GateSetSettings):
    kw = {"model": "preference", "kind": "ratings", "settings": store}
    first, created = freeze_gate_set(members=["a", "b"], by="ann", reason="x", **kw)
    assert created
    again, created = freeze_gate_set("preference", "ratings", ["c"], store, by="bob", reason="y")
    assert not created and again.digest == first.digest  # freezing twice changes nothing
    with pytest.raises(ConfigError, match="needs --reason"):
        freeze_gate_set("preference", "ratings", ["c"], store, by="bob", reason=" ", replace=True)
    new, created = freeze_gate_set(
        "preference", "ratings", ["c", "d"], store, by="bob", reason="data doubled", replace=True
    )
    assert created and new.members == ["c", "d"]
    assert current_gate_set("preference", store).digest == new.digest
    history = gate_set_history("preference", store)
    assert [(g.frozen_by, g.reason) for g in history] == [("ann", "x"), ("bob", "data doubled")]
    assert history[0].replaced_at is not None and history[1].replaced_at is None
    assert current_gate_set("youtube-lstm-views", store) is None  # per model


def test_first_registration_freezes_and_every_training_holds_back(store: GateSetSettings):
    cfg = cfg_for(store)
    report = ExtractionReport(total=50, kept=50)
    kept = hold_out_gate_ratings(cfg, ratings(50), report)
    gate, held = applied_gate_set("preference")
    assert gate.size == 10 and gate.reason == "first registration" and held == 10
    assert len(kept) == 40 and not {r["id"] for r in kept} & set(gate.members)
    assert report.held_back == 10
    assert "10 held back for the gate set" in report.summary()
    assert report.as_metrics()["extract_held_back_gate_set"] == 10.0
    # drawn and held back, stored once the training registers a version (inside its run)
    assert current_gate_set("preference", store) is None
    with mlflow.start_run() as run:
        assert log_gate_set("preference", registered=True, cfg=cfg) == gate
    assert current_gate_set("preference", store).digest == gate.digest
    logged = mlflow.get_run(run.info.run_id)
    assert logged.data.tags[GATE_SET_DIGEST] == gate.digest
    assert logged.data.metrics["gate_set_held_back"] == 10
    (dataset,) = logged.inputs.dataset_inputs
    assert dataset.dataset.digest == gate.digest and dataset.dataset.name == "gate-set-preference"
    assert [t.value for t in dataset.tags if t.key == "mlflow.data.context"] == ["gate"]
    # a later training on more data (a sweep trial: no registration) holds the same ids back
    report = ExtractionReport(total=80, kept=80)
    kept = hold_out_gate_ratings(cfg_for(store, register=False), ratings(80), report)
    assert len(kept) == 70 and report.held_back == 10
    assert current_gate_set("preference", store).digest == gate.digest


def test_a_run_that_registers_nothing_stores_no_gate_set(store: GateSetSettings):
    """A correlation-only run (under the training milestone) holds rows back, fixes nothing."""
    cfg = cfg_for(store)
    hold_out_gate_ratings(cfg, ratings(50), ExtractionReport())
    with mlflow.start_run():
        log_gate_set("preference", registered=False, cfg=cfg)
    assert current_gate_set("preference", store) is None


def test_no_freeze_without_registration_or_with_too_few_ratings(store: GateSetSettings):
    report = ExtractionReport()
    assert len(hold_out_gate_ratings(cfg_for(store, register=False), ratings(50), report)) == 50
    assert len(hold_out_gate_ratings(cfg_for(store), ratings(4), report)) == 4  # < min_members
    assert current_gate_set("preference", store) is None and report.held_back == 0


def test_a_model_registered_before_gate_sets_gets_none_by_accident(kit, store):
    """Its versions saw every row: a set drawn at a later registration would favour them."""
    kit.quick_version("preference", {"mae": 0.1})
    kept = hold_out_gate_ratings(cfg_for(store), ratings(50), ExtractionReport())
    assert len(kept) == 50 and current_gate_set("preference", store) is None


def test_forecast_training_drops_the_stretch_and_no_window_spans_it(store: GateSetSettings):
    frame = stats(minutes=50)
    cfg = cfg_for(store)
    kept = hold_out_gate_stretch(cfg, frame)
    gate, _ = applied_gate_set("youtube-lstm-views")
    assert gate is not None and gate.kind == "stretch"
    with mlflow.start_run():
        log_gate_set("youtube-lstm-views", registered=True, cfg=cfg)
    assert current_gate_set("youtube-lstm-views", store).digest == gate.digest
    assert len(kept) == 80 and not in_stretch(kept, [gate]).any()
    # rows arriving after the freeze train again; the hole where the stretch was splits the
    # series, so no training window reaches across the gate rows
    later = stats(minutes=70)
    kept = hold_out_gate_stretch(cfg_for(store), later)
    assert len(kept) == 120
    clean, _ = clean_stats(kept, sequence_length=3, max_gap_steps=5)
    assert sorted(clean["segment"].unique()) == ["a#0", "a#1", "b#0", "b#1"]


def test_cli_freeze_show_refresh(monkeypatch, tmp_path):
    monkeypatch.setenv("VIRALAB_USER", "reviewer-ann")
    runner = CliRunner()
    out = runner.invoke(app, ["registry", "gate-set", "freeze", "preference"])
    assert out.exit_code == 0, out.output
    assert "froze preference: 140 rating(s)" in out.output and "reviewer-ann" in out.output
    out = runner.invoke(app, ["registry", "gate-set", "freeze", "preference"])
    assert out.exit_code == 0 and "already frozen" in out.output
    out = runner.invoke(app, ["registry", "gate-set", "refresh", "preference"])
    assert out.exit_code == 2 and "error: refresh needs --reason" in out.output
    out = runner.invoke(
        app, ["registry", "gate-set", "refresh", "preference", "--reason", "new raters"]
    )
    assert out.exit_code == 0, out.output
    assert "replaced: preference" in out.output and "refreshed: preference" in out.output
    # nothing registered yet: the new set is stored, and the output says why nothing was scored
    assert "champion not re-scored" in out.output and "not found" in out.output
    out = runner.invoke(app, ["registry", "gate-set", "show", "preference"])
    lines = out.output.strip().splitlines()
    assert lines[0].startswith("[current]") and "(new raters)" in lines[0]
    assert lines[1].startswith("[replaced ") and "(frozen by hand)" in lines[1]
    out = runner.invoke(app, ["registry", "gate-set", "show", "mystery"])
    assert out.exit_code == 2 and "error: unknown model 'mystery'" in out.output


@pytest.mark.integration
def test_gate_sets_on_postgresql(pg_url: str):
    """The same table on a real PostgreSQL: JSONB members, one current set per model."""
    pg = GateSetSettings(database_url=pg_url)
    stretch = choose_stretch(stats(minutes=20), 0.25)
    first, _ = freeze_gate_set("youtube-lstm-views", "stretch", stretch, pg, by="ann", reason="a")
    assert current_gate_set("youtube-lstm-views", pg).members == stretch
    freeze_gate_set(
        "youtube-lstm-views", "stretch", {"a": stretch["a"]}, pg, by="bob", reason="b", replace=True
    )
    history = gate_set_history("youtube-lstm-views", pg)
    assert [g.size for g in history] == [2, 1] and history[0].digest == first.digest
    assert current_gate_set("youtube-lstm-views", pg).frozen_by == "bob"
