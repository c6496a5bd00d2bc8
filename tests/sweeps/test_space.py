"""Search spaces are config: every space composes, bad spaces fail before trial 1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from tests.support.services import free_port
from viralab.config import compose, config_dir, group_options
from viralab.errors import ConfigError
from viralab.sweeps.plan import compose_app, plan_sweep, training_overrides
from viralab.sweeps.runner import run_sweep
from viralab.sweeps.space import hydra_value, parse_space
from viralab.sweeps.study import resolve_storage

PROJECT = Path(__file__).resolve().parents[2]


def _plan(*overrides: str):
    overrides = list(overrides)
    cfg, choices = compose_app(overrides)
    return plan_sweep(cfg, choices, overrides)


@pytest.mark.parametrize("name", group_options("sweep"))
def test_every_sweep_space_composes_with_a_sampled_point(name: str) -> None:
    plan = _plan(f"sweep={name}")
    assert plan.space.params
    assert plan.base_cfg.model.name == OmegaConf.select(plan.cfg, "model.name")
    point = plan.space.first_point()
    trial_cfg = compose([*plan.base_overrides, *plan.space.overrides(point), "register=false"])
    for key, value in plan.space.key_values(point).items():
        assert OmegaConf.select(trial_cfg, key) == value
    assert trial_cfg.register is False


def test_training_config_still_composes_without_a_sweep() -> None:
    cfg = compose()
    assert "sweep" not in cfg
    assert "n_trials" not in cfg


def test_lstm_space_is_spec_002_exactly() -> None:
    params = OmegaConf.load(config_dir() / "sweep" / "lstm.yaml").sweep.params
    space = {name: list(p.choices) for name, p in params.items()}
    assert space == {
        "sequence_length": [10, 15, 20, 25, 30],
        "lstm_units": [25, 50, 75, 100],
        "dropout_rate": [0.1, 0.2, 0.3],
        "learning_rate": [0.0001, 0.001, 0.01],
        "batch_size": [16, 32, 64],
        "dense_units": [10, 25, 50],
    }
    assert all(p.type == "categorical" for p in params.values())


def test_sweep_picks_the_model_and_training_overrides_reach_the_trials() -> None:
    plan = _plan("sweep=random_forest", "n_trials=7", "data.n_videos=300", "seed=3")
    assert plan.base_cfg.model.name == "random_forest"
    assert plan.base_cfg.data.n_videos == 300
    assert plan.n_trials == 7
    assert "model=random_forest" in plan.base_overrides
    assert "data.n_videos=300" in plan.base_overrides
    assert not any(o.startswith(("n_trials", "sweep")) for o in plan.base_overrides)
    assert plan.cfg.sweep.sampler.seed == 3  # the sampler follows the global seed


def test_study_name_is_read_in_the_trials_config() -> None:
    assert _plan("sweep=lstm").study_name == "lstm-views"  # the space's target=views
    assert _plan("sweep=lstm", "target=likes").study_name == "lstm-likes"
    assert _plan("sweep=ridge", "sweep.study_name=mine").study_name == "mine"


def test_app_overrides_are_not_passed_to_trials() -> None:
    given = ["sweep=ridge", "n_trials=5", "workers=2", "sweep.storage=x", "sweep/pruner=none",
             "hydra.run.dir=/tmp/x", "data.n_videos=9", "+model.tol=0.01"]  # fmt: skip
    assert training_overrides(given) == ["data.n_videos=9", "+model.tol=0.01"]


@pytest.mark.parametrize(
    "value", ["auto", "min-max", "1.0", "true", "null", "it's", "a b", None, True, 3, 0.1, 1e-05]
)
def test_sampled_values_survive_hydra_override_parsing(value) -> None:
    parsed = OverridesParser.create().parse_override(f"k={hydra_value(value)}").value()
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"key": "model.alpha", "type": "normal"}, r"type 'normal' is not a distribution"),
        ({"key": "model.alpha", "type": "float", "low": 1}, r"needs both `low` and `high`"),
        ({"key": "model.alpha", "type": "float", "low": 2.0, "high": 1.0}, r"low .* above high"),
        ({"key": "model.alpha", "type": "float", "low": 0.0, "high": 1.0, "log": True},
         r"log scale needs low > 0"),
        ({"key": "model.alpha", "type": "float", "low": "1e-4", "high": 1.0},
         r"must be a number.*YAML 1.1 reads 1e-4 as text"),
        ({"key": "model.alpha", "type": "categorical", "choices": []}, r"non-empty list"),
        ({"key": "model.alpha", "type": "categorical", "choices": [[1, 2]]}, r"only str, int"),
        ({"key": "model.alpha", "type": "int", "low": 1, "high": 5, "lo": 2},
         r"unknown field\(s\) lo"),
        ({"key": "model.n", "type": "int", "low": 1.5, "high": 5}, r"whole number"),
        ({"type": "float", "low": 0.1, "high": 1.0}, r"key must name the Hydra key"),
        ("model.alpha", r"must be a mapping"),
    ],
)  # fmt: skip
def test_invalid_parameters_are_named_in_one_message(spec, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        parse_space({"p": spec})
    assert "sweep.params.p" in str(err.value)


def test_two_parameters_on_one_key_are_rejected() -> None:
    spec = {"type": "categorical", "choices": [1, 2], "key": "model.alpha"}
    with pytest.raises(ConfigError, match=r"both set model.alpha"):
        parse_space({"a": spec, "b": spec})


def test_key_that_matches_no_config_entry_fails_before_any_trial(mlflow_isolation) -> None:
    with pytest.raises(ConfigError) as err:
        run_sweep(["sweep=ridge", "sweep.params.alpha.key=model.alphaa"])
    message = str(err.value)
    assert "sweep.params.alpha.key 'model.alphaa' matches no config entry (model=ridge)" in message
    assert "alpha" in message.split("model has:")[1]  # says what the node does offer
    assert mlflow.MlflowClient().search_experiments(filter_string="name = 'preference'") == []


def test_swept_key_fixed_on_the_command_line_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"model.alpha is both swept .* '~sweep.params.alpha'"):
        _plan("sweep=ridge", "model.alpha=0.5")
    plan = _plan("sweep=ridge", "model.alpha=0.5", "~sweep.params.alpha")  # fixing it is fine
    assert "model.alpha" not in plan.space.keys


def test_unknown_sweep_is_named_with_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown sweep 'nope'; valid choices: .*ridge"):
        run_sweep(["sweep=nope"])


def test_n_jobs_above_one_points_to_workers() -> None:
    with pytest.raises(ConfigError, match=r"use workers=N"):
        _plan("sweep=ridge", "n_jobs=2")


def test_grid_sampler_needs_a_discrete_space() -> None:
    with pytest.raises(ConfigError, match=r"sweep.params.alpha: the grid sampler needs"):
        _plan("sweep=ridge", "sweep/sampler=grid")


def test_a_new_space_is_a_yaml_file_and_a_broken_one_fails_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "conf"
    shutil.copytree(config_dir(), conf)
    (conf / "sweep" / "mine.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n  - override /model: random_forest\n"
        "sweep:\n  study_name: mine\n  metric: cv_mae\n  n_trials: 3\n"
        "  params:\n    leaves: {key: model.min_samples_leaf, type: int, low: 1, high: 4}\n"
    )
    (conf / "sweep" / "broken.yaml").write_text(
        "# @package _global_\n"
        "sweep:\n  study_name: broken\n  metric: cv_mae\n  n_trials: 3\n"
        "  params:\n    alpha: {key: model.alpha, type: loguniform, low: 0.1, high: 1.0}\n"
    )
    (conf / "sweep" / "stray.yaml").write_text(
        "# @package _global_\n"
        "task:\n  multi_output: false\n"  # a training key outside sweep.overrides
        "sweep:\n  study_name: stray\n  metric: cv_mae\n  n_trials: 3\n"
        "  params:\n    alpha: {key: model.alpha, type: float, low: 0.1, high: 1.0}\n"
    )
    monkeypatch.setenv("VIRALAB_CONFIG_DIR", str(conf))
    with pytest.raises(ConfigError, match=r"task.multi_output is False in the sweep config but"):
        _plan("sweep=stray")
    plan = _plan("sweep=mine")
    assert plan.base_cfg.model.name == "random_forest"
    assert plan.space.keys == ["model.min_samples_leaf"]
    with pytest.raises(ConfigError, match=r"sweep.params.alpha.type 'loguniform' is not a"):
        _plan("sweep=broken")


def test_unreachable_storage_fails_before_any_trial_with_the_password_masked(
    mlflow_isolation,
) -> None:
    url = f"postgresql://viralab:hunter2@127.0.0.1:{free_port()}/optuna"
    with pytest.raises(ConfigError) as err:
        run_sweep(["sweep=ridge", f"sweep.storage={url}"])
    message = str(err.value)
    assert message.startswith("cannot open the Optuna storage postgresql+psycopg2://viralab:***@")
    assert "hunter2" not in message
    runs = mlflow.search_runs(search_all_experiments=True)
    assert len(runs) == 0


def test_storage_defaults_beside_a_sqlite_tracking_store_and_normalises_postgres(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VIRALAB_OPTUNA_STORAGE", raising=False)
    assert resolve_storage(None, f"sqlite:///{tmp_path}/mlflow.db") == (
        f"sqlite:///{tmp_path}/optuna.db"
    )
    monkeypatch.chdir(tmp_path)
    assert resolve_storage(None, "http://mlflow:5000") == f"sqlite:///{tmp_path}/mlruns/optuna.db"
    monkeypatch.setenv("VIRALAB_OPTUNA_STORAGE", "postgresql://u:p@db/optuna")
    assert resolve_storage(None) == "postgresql+psycopg2://u:p@db/optuna"
    assert resolve_storage("sqlite:///x.db") == f"sqlite:///{tmp_path}/x.db"  # config wins


def _cli(
    *args: str, cwd: Path = PROJECT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "viralab.sweep", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.slow
def test_cli_unknown_sweep_is_one_line_and_exit_2() -> None:
    res = _cli("sweep=nope", "n_trials=3")
    assert res.returncode == 2
    last = res.stderr.strip().splitlines()[-1]
    valid = "gradient_boosting, lstm, random_forest, ridge"
    assert last == f"error: unknown sweep 'nope'; valid choices: {valid}"


@pytest.mark.slow
def test_cli_unreachable_storage_is_one_line_with_the_password_masked() -> None:
    url = f"postgresql://viralab:hunter2@127.0.0.1:{free_port()}/optuna"
    # given through the environment: a password on the command line is refused (issue 14)
    res = _cli("sweep=ridge", env={"VIRALAB_OPTUNA_STORAGE": url})
    assert res.returncode == 2, res.stderr[-2000:]
    assert "error: cannot open the Optuna storage postgresql+psycopg2://viralab:***@" in res.stderr
    assert "hunter2" not in res.stderr + res.stdout
    assert "trial" not in res.stdout
