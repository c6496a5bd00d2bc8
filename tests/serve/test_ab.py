"""A/B in the in-process serving path: a deterministic share of videos sees the challenger,
each video always the same version, and every answer is logged with its version and marker."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from sqlalchemy import select

from viralab.data.database import make_engine
from viralab.errors import ConfigError
from viralab.registry.markers import AbSettings, RegistrySettings
from viralab.serve import ab
from viralab.serve import predict as serving
from viralab.serve.prediction_log import PredictionLog, set_prediction_log
from viralab.serve.prediction_table import predictions


class _Scorer:
    """Stands in for a preference model: predicts its own version number / 10."""

    def __init__(self, version: int) -> None:
        self.version = version

    def score(self, documents, with_factors: bool = True) -> pd.DataFrame:
        n = len(documents)
        value = self.version / 10
        return pd.DataFrame(
            {
                "prediction": [value] * n,
                "score": [value * 10] * n,
                "confidence": [0.5] * n,
                "top_factors": ["[]"] * n,
            }
        )


def _pyfunc(version: int) -> SimpleNamespace:
    scorer = _Scorer(version)
    return SimpleNamespace(unwrap_python_model=lambda: scorer)


@pytest.fixture
def two_versions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Champion v1, challenger v2 (no registry: the lookups are replaced), a log on SQLite."""
    champion, rival = SimpleNamespace(version="1"), SimpleNamespace(version="2")
    monkeypatch.setattr(serving, "load_model", lambda name, ref=None, **kw: (_pyfunc(1), champion))
    monkeypatch.setattr(serving, "load_version", lambda name, version: _pyfunc(int(version)))
    monkeypatch.setattr(serving, "challenger", lambda name, reg: rival)
    url = f"sqlite:///{tmp_path}/app.db"
    log = PredictionLog(url, flush_interval=0.01)
    set_prediction_log(log)
    yield log, url
    log.close(2)
    set_prediction_log(None)


def _settings(share: float) -> RegistrySettings:
    return RegistrySettings(ab=AbSettings(share=share))


def test_half_share_splits_1000_videos_45_to_55_percent_each_always_one_version(
    two_versions,
) -> None:
    log, url = two_versions
    ids = [f"video-{i}" for i in range(1000)]
    first = serving.score_documents(
        ["{}"] * len(ids), video_ids=ids, settings=_settings(0.5), with_factors=False
    )
    version_of = dict(zip(ids, (first["prediction"] * 10).round().astype(int), strict=True))
    share = sum(v == 2 for v in version_of.values()) / len(ids)
    assert 0.45 <= share <= 0.55, share
    # the same videos again, in another order and in small requests: the same versions
    shuffled = ids[:]
    random.Random(5).shuffle(shuffled)
    for start in range(0, 1000, 97):
        chunk = shuffled[start : start + 97]
        again = serving.score_documents(
            ["{}"] * len(chunk), video_ids=chunk, settings=_settings(0.5), with_factors=False
        )
        got = (again["prediction"] * 10).round().astype(int).tolist()
        assert got == [version_of[v] for v in chunk]
    log.flush(10)
    with make_engine(url).connect() as conn:
        rows = pd.DataFrame(conn.execute(select(predictions)).mappings().all())
    assert len(rows) == 2000
    per_video = rows.groupby("video_id")["version"].nunique()
    assert (per_video == 1).all()  # each video: one version, in every request
    assert set(zip(rows["version"], rows["marker"], strict=True)) == {
        (1, "champion"),
        (2, "challenger"),
    }
    for _, row in rows.iterrows():
        assert row["version"] == version_of[row["video_id"]]
        assert row["prediction"] == pytest.approx(row["version"] / 10)


def test_requests_without_the_key_and_explicit_refs_go_to_the_champion(two_versions) -> None:
    no_key = serving.score_documents(["{}"] * 50, settings=_settings(1.0), with_factors=False)
    assert (no_key["prediction"] == 0.1).all()
    single = serving.predict_virality_score("{}", settings=_settings(1.0))
    assert single["score"] == pytest.approx(1.0)
    keyed = serving.predict_virality_score("{}", video_id="v1", settings=_settings(1.0))
    assert keyed["score"] == pytest.approx(2.0)  # share 1: every keyed video -> challenger
    off = serving.score_documents(
        ["{}"] * 20, video_ids=[f"v{i}" for i in range(20)], settings=_settings(0.0)
    )
    assert (off["prediction"] == 0.1).all()


def test_no_challenger_means_all_champion(two_versions, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serving, "challenger", lambda name, reg: None)
    out = serving.score_documents(
        ["{}"] * 100, video_ids=[str(i) for i in range(100)], settings=_settings(0.5)
    )
    assert (out["prediction"] == 0.1).all()


def test_the_split_is_a_pure_function_of_model_and_key() -> None:
    assert ab.bucket("preference", "abc") == ab.bucket("preference", "abc")
    assert 0.0 <= ab.bucket("preference", "abc") < 1.0
    assert ab.to_challenger("preference", None, 1.0) is False
    assert ab.to_challenger("preference", "x", 0.0) is False
    # a wider share only moves videos to the challenger, never back
    ids = [str(i) for i in range(2000)]
    at_10 = {i for i in ids if ab.to_challenger("preference", i, 0.1)}
    at_30 = {i for i in ids if ab.to_challenger("preference", i, 0.3)}
    assert at_10 <= at_30 and 0.07 < len(at_10) / 2000 < 0.13


@pytest.mark.parametrize(
    "section", [{"share": 1.5}, {"share": -0.1}, {"share": "lots"}, {"key": "user"}]
)
def test_bad_ab_settings_are_refused(section: dict) -> None:
    with pytest.raises(ConfigError, match=r"registry\.ab"):
        RegistrySettings.from_config({"ab": section})


def test_the_project_config_has_ab_off() -> None:
    from omegaconf import OmegaConf

    from viralab.config import compose

    reg = RegistrySettings.from_config(OmegaConf.to_container(compose().registry, resolve=True))
    assert reg.ab == AbSettings(share=0.0, key="video_id") and not reg.ab.enabled


def test_a_challenger_that_cannot_load_leaves_its_share_to_the_champion(
    two_versions, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def unreachable(name: str, version: str):
        raise ConnectionError("artifact store unreachable")

    monkeypatch.setattr(serving, "load_version", unreachable)
    ids = [f"v{i}" for i in range(200)]
    for _ in range(2):
        out = serving.score_documents(["{}"] * 200, video_ids=ids, settings=_settings(0.5))
        assert (out["prediction"] == 0.1).all()
    assert caplog.text.count("A/B: cannot load preference version 2") == 1
