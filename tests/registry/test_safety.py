"""What protects the registry and the mirror: compare-and-set promotions whose event row and
marker move commit together, a sync that refuses to wipe the mirror from an empty registry,
and registry commands that refuse a tracking store that does not exist."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, select
from typer.testing import CliRunner

from tests.registry.kit import GOOD_PREFERENCE, RegistryKit
from tests.support.services import copy_sqlite
from viralab.promotion import events as events_module
from viralab.promotion.commands import EXIT_ERROR, app
from viralab.promotion.events import read_events
from viralab.promotion.promote import promote
from viralab.registry.client import RegistryError
from viralab.registry.mirror import mirror_engine, model_versions
from viralab.registry.sync import sync_registry

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def aliases(kit: RegistryKit) -> dict[str, int]:
    return {k: int(v) for k, v in kit.client.get_registered_model("preference").aliases.items()}


def mirror(url: str) -> dict[int, bool]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            c = model_versions.c
            result = conn.execute(select(c.registry_version, c.is_active))
            return {int(v): bool(a) for v, a in result}
    finally:
        engine.dispose()


def champion_and_challenger(kit: RegistryKit, settings) -> None:
    kit.quick_version("preference", GOOD_PREFERENCE)
    kit.quick_version("preference", {**GOOD_PREFERENCE, "mae": 0.10})
    promote(kit.client, settings, "preference", 1, "champion")
    promote(kit.client, settings, "preference", 2, "challenger")


def test_promotion_is_mirrored_at_once(kit, settings, app_db):
    champion_and_challenger(kit, settings)
    promote(kit.client, settings, "preference", 2, "champion")
    assert mirror(app_db) == {1: False, 2: True}  # no separate sync was run


def test_a_failed_move_leaves_no_event(kit, settings, monkeypatch):
    champion_and_challenger(kit, settings)

    def broken_mark(*_args, **_kwargs):
        raise RegistryError("MLflow store failed while marking")

    monkeypatch.setattr("viralab.promotion.promote.mark", broken_mark)
    with pytest.raises(RegistryError, match="failed while marking"):
        promote(kit.client, settings, "preference", 2, "champion")
    assert len(read_events("preference")) == 2  # the two setup moves only
    assert aliases(kit) == {"champion": 1, "challenger": 2}


@pytest.mark.parametrize("failure", ["sync", "commit"])
def test_a_failure_after_the_move_puts_the_marker_back(kit, settings, app_db, monkeypatch, failure):
    champion_and_challenger(kit, settings)
    if failure == "sync":

        def broken_sync(*_args, **_kwargs):
            raise RegistryError("mirror sync failed")

        monkeypatch.setattr(events_module, "sync_in", broken_sync)
    else:

        def engine_that_cannot_commit(url=None):
            engine = mirror_engine(url)

            @event.listens_for(engine, "commit")
            def _refuse(_conn) -> None:
                raise RuntimeError("disk full at commit")

            return engine

        monkeypatch.setattr(events_module, "mirror_engine", engine_that_cannot_commit)
    with pytest.raises((RegistryError, RuntimeError)):
        promote(kit.client, settings, "preference", 2, "champion")
    monkeypatch.setattr(events_module, "mirror_engine", mirror_engine)  # readable again
    assert aliases(kit) == {"champion": 1, "challenger": 2}
    assert [e["to_version"] for e in read_events("preference")] == [1, 2]
    assert mirror(app_db) == {1: True, 2: False}


def test_compare_and_set_refuses_a_marker_that_moved(kit, settings, monkeypatch):
    champion_and_challenger(kit, settings)
    kit.quick_version("preference", {**GOOD_PREFERENCE, "mae": 0.09})
    real_check = events_module._holder_version
    calls = {"n": 0}

    def someone_else_moves_it_first(client, settings_, model, marker):
        if calls["n"] == 0:  # between the gate check and the locked re-read
            kit.client.set_registered_model_alias("preference", "champion", "3")
        calls["n"] += 1
        return real_check(client, settings_, model, marker)

    monkeypatch.setattr(events_module, "_holder_version", someone_else_moves_it_first)
    with pytest.raises(events_module.MarkerMoved, match="moved from version 1 to version 3"):
        promote(kit.client, settings, "preference", 2, "champion")
    assert aliases(kit)["champion"] == 3
    assert len(read_events("preference")) == 2


@pytest.mark.slow
def test_two_concurrent_cli_promotions(kit, settings, fast_store, app_db):
    """Two `viralab registry promote` processes at once: one champion, and every event row
    chains from the holder the previous one left (a refused one says the marker moved)."""
    kit.quick_version("preference", GOOD_PREFERENCE)
    kit.quick_version("preference", {**GOOD_PREFERENCE, "mae": 0.10})
    kit.quick_version("preference", {**GOOD_PREFERENCE, "mae": 0.10})
    promote(kit.client, settings, "preference", 1, "champion")
    viralab = Path(sys.executable).with_name("viralab")
    env = {**os.environ, "MLFLOW_TRACKING_URI": fast_store, "VIRALAB_DATABASE_URL": app_db}
    procs = {
        version: subprocess.Popen(
            [str(viralab), "registry", "promote", "preference", version, "--to", "champion"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for version in ("2", "3")
    }
    results = {v: (p.wait(timeout=300), p.stderr.read()) for v, p in procs.items()}
    succeeded = [v for v, (code, _) in results.items() if code == 0]
    for _version, (code, stderr) in results.items():
        if code != 0:
            assert code == EXIT_ERROR and "moved from version 1 to version" in stderr, stderr
    assert succeeded, results
    history = read_events("preference", "champion")
    assert len(history) == 1 + len(succeeded)
    for before, after in itertools.pairwise(history):
        assert after["from_version"] == before["to_version"]
    champion = aliases(kit)["champion"]
    assert history[-1]["to_version"] == champion and str(champion) in succeeded
    assert [v for v, active in mirror(app_db).items() if active] == [champion]


def test_sync_against_an_empty_registry_refuses_and_deletes_nothing(
    kit, settings, app_db, tmp_path, mlflow_template, monkeypatch
):
    champion_and_challenger(kit, settings)
    assert mirror(app_db) == {1: True, 2: False}
    empty = tmp_path / "elsewhere" / "mlflow.db"  # e.g. cron started in another directory
    empty.parent.mkdir()
    copy_sqlite(mlflow_template, empty)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{empty}")
    refused = runner.invoke(app, ["sync"])
    assert refused.exit_code == EXIT_ERROR
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: the registry at sqlite:///{empty} has 0 models")
    assert "the mirror holds 2 row(s)" in line and "--prune" in line
    assert mirror(app_db) == {1: True, 2: False}
    pruned = runner.invoke(app, ["sync", "--prune"])
    assert pruned.exit_code == 0, pruned.output
    assert "deleted 2" in pruned.stdout and mirror(app_db) == {}


def test_registry_commands_refuse_a_store_that_does_not_exist(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{missing}")
    for args in (["sync"], ["promote", "preference", "1", "--to", "champion"], ["rollback", "x"]):
        result = runner.invoke(app, args)
        assert result.exit_code == EXIT_ERROR
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"error: no MLflow store at sqlite:///{missing}")
        assert "MLFLOW_TRACKING_URI" in line
    assert not missing.exists()  # no empty store was created


@pytest.mark.slow
def test_stage_mode_sync_entry_takes_mode_from_config(kit, stage_settings, fast_store, tmp_path):
    """`mlflow run . -e sync` passes `--mode ''` unless -P mode=... is given: the mode then
    comes from the project config (stage here), and the active rows stay active."""
    mlproject = (ROOT / "MLproject").read_text()
    assert 'mode: {type: string, default: ""}' in mlproject
    assert "python -m viralab.registry.sync --mode {mode}" in mlproject
    kit.quick_version("preference", GOOD_PREFERENCE)
    kit.quick_version("preference", GOOD_PREFERENCE)
    kit.client.transition_model_version_stage("preference", "2", "Production")
    url = f"sqlite:///{tmp_path}/stage.db"
    assert sync_registry(stage_settings, url).active == {"preference": 2}
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "src" / "viralab" / "conf", conf)
    registry_yaml = conf / "registry" / "default.yaml"
    text = registry_yaml.read_text().replace("\nmode: alias\n", "\nmode: stage\n")
    assert "\nmode: stage\n" in text
    registry_yaml.write_text(text)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": fast_store,
        "VIRALAB_DATABASE_URL": url,
        "VIRALAB_CONFIG_DIR": str(conf),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "viralab.registry.sync", "--mode", ""],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "no changes" in proc.stdout
    assert mirror(url) == {1: False, 2: True}
