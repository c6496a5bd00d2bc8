"""Config composition, override splitting, choice checking and secret redaction."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from viralab.config import (
    REDACTED,
    check_group_choices,
    compose,
    config_dir,
    config_layers,
    config_yaml,
    expand_override_args,
    flatten_params,
    group_options,
    redact,
    redact_text,
    redact_url,
    to_safe_container,
)
from viralab.errors import ConfigError


@pytest.mark.parametrize("model", group_options("model"))
def test_every_model_config_composes(model: str) -> None:
    cfg = compose([f"model={model}"])
    assert cfg.model.name == model
    assert cfg.task.family in {"preference", "forecast"}
    OmegaConf.to_container(cfg, resolve=True)  # no dangling interpolation


@pytest.mark.parametrize("data", group_options("data"))
def test_every_data_config_composes(data: str) -> None:
    cfg = compose([f"data={data}"])
    assert cfg.data.source == data


def test_default_is_ridge_on_the_sample_with_local_tracking() -> None:
    cfg = compose()
    assert cfg.model.name == "ridge"
    assert cfg.data.source == "sample"
    assert cfg.tracking.uri == "sqlite:///mlruns/mlflow.db"
    assert cfg.task.registered_model == "preference"


def test_model_choice_picks_its_task_and_features() -> None:
    cfg = compose(["model=ridge"])
    assert cfg.task.family == "preference"
    assert "min_feature_count" in cfg.features


def test_command_line_overrides_reach_the_model() -> None:
    cfg = compose(["model=ridge", "model.alpha=0.3", "seed=7"])
    assert cfg.model.alpha == 0.3
    assert cfg.seed == 7
    assert cfg.data.seed == 7  # data follows the global seed


def test_config_dir_is_the_project_conf() -> None:
    assert (config_dir() / "config.yaml").is_file()


def _project_with_overrides(tmp_path: Path) -> tuple[Path, Path]:
    """A project `conf/` changing ridge's alpha and adding `model=mine`, and an env folder."""
    ridge = (config_dir() / "model" / "ridge.yaml").read_text()
    project = tmp_path / "project"
    models = project / "conf" / "model"
    models.mkdir(parents=True)
    (models / "ridge.yaml").write_text(ridge.replace("alpha: 1.0", "alpha: 0.25"))
    (models / "mine.yaml").write_text(ridge.replace("name: ridge", "name: mine"))
    env = tmp_path / "env"
    (env / "model").mkdir(parents=True)
    (env / "model" / "ridge.yaml").write_text(ridge.replace("alpha: 1.0", "alpha: 0.5"))
    return project, env


def test_a_project_conf_overrides_packaged_files_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project, env = _project_with_overrides(tmp_path)
    monkeypatch.delenv("VIRALAB_CONFIG_DIR", raising=False)
    monkeypatch.chdir(project)
    assert config_layers() == [(project / "conf").resolve(), config_dir()]
    assert compose(["model=ridge"]).model.alpha == 0.25
    assert compose(["model=mine"]).model.name == "mine"
    assert {"mine", "ridge", "lstm"} <= set(group_options("model"))
    check_group_choices(["model=mine"])
    cfg = compose()  # everything the project does not override comes from the package
    assert cfg.data.source == "sample"
    assert cfg.model.alpha == 0.25

    monkeypatch.setenv("VIRALAB_CONFIG_DIR", str(env))
    assert config_layers() == [env.resolve(), (project / "conf").resolve(), config_dir()]
    assert compose(["model=ridge"]).model.alpha == 0.5  # $VIRALAB_CONFIG_DIR first
    assert compose(["model=mine"]).model.name == "mine"  # ./conf still searched


def test_an_empty_directory_has_the_packaged_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VIRALAB_CONFIG_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert config_layers() == [config_dir()]
    assert config_dir().name == "conf" and config_dir().parent.name == "viralab"
    assert compose().model.name == "ridge"


@pytest.mark.slow
def test_the_entry_points_search_the_project_conf_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`@hydra.main` (train, sweep) sees the same layers as `compose`."""
    project, _ = _project_with_overrides(tmp_path)
    monkeypatch.delenv("VIRALAB_CONFIG_DIR", raising=False)
    for module, args, name, alpha in [
        ("viralab.train", ["model=mine"], "mine", 1.0),  # a choice only the project has
        ("viralab.sweep", ["sweep=ridge"], "ridge", 0.25),  # the project's ridge.yaml
    ]:
        proc = subprocess.run(
            [sys.executable, "-m", module, *args, "--cfg", "job"],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        job = OmegaConf.create(proc.stdout)
        assert (job.model.name, job.model.alpha) == (name, alpha)


def test_overrides_string_from_mlflow_run_is_split() -> None:
    argv = ["model=ridge", "data=sample", "model.alpha=0.3 seed=7", ""]
    assert expand_override_args(argv) == ["model=ridge", "data=sample", "model.alpha=0.3", "seed=7"]


def test_single_override_with_a_space_is_kept_whole() -> None:
    assert expand_override_args(["run_name='my run'"]) == ["run_name='my run'"]


def test_unknown_choice_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown model 'nope'; valid choices: .*ridge"):
        check_group_choices(["model=nope"])
    check_group_choices(["model=ridge", "model.alpha=2", "seed=1"])  # fine


def test_redaction_masks_secret_keys_and_credentialed_urls() -> None:
    container = {
        "data": {"url": "postgresql://alice:s3cr3t@db:5432/app", "source": "postgres"},
        "aws_secret_access_key": "AKIAXYZ",
        "token": "abc",
        "nested": [{"password": "pw"}],
        "alpha": 1.0,
        "keys_seen": 3,
    }
    safe = redact(container)
    text = str(safe)
    assert "s3cr3t" not in text and "AKIAXYZ" not in text and "'abc'" not in text
    assert "pw'" not in text
    assert safe["data"]["url"] == f"postgresql://alice:{REDACTED}@db:5432/app"
    assert safe["alpha"] == 1.0
    assert safe["data"]["source"] == "postgres"


def test_redact_url_and_text() -> None:
    assert redact_url("postgresql://u:p@h/db") == f"postgresql://u:{REDACTED}@h/db"
    assert redact_url("sqlite:///x.db") == "sqlite:///x.db"
    assert "hunter2" not in redact_text("failed: mysql://root:hunter2@10.0.0.1/x")


def test_env_secret_resolved_into_config_is_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIRALAB_DATABASE_URL", "postgresql://bob:topsecret@127.0.0.1/app")
    cfg = compose(["data=postgres"])
    params = flatten_params(to_safe_container(cfg))
    assert "topsecret" not in str(params)
    assert params["data.url"].startswith("postgresql://bob:")


def test_config_yaml_writes_what_omegaconf_writes() -> None:
    """`config_yaml` (libyaml) replaced `OmegaConf.to_yaml` for logged configs: same text,
    also for strings YAML would read as other types, unicode, empty and nested values."""
    container = {
        **to_safe_container(compose(["model=random_forest"])),
        "tricky": {
            "strings": ["true", "no", "On", "1.0", "1e-3", "1_000", "nan", " 2", "null", "~", ""],
            "more": ["0x1F", "2026-12-02", "a: b", "#x", "- y"],
            "unicode": "vidéo — 視頻",
            "multiline": "a\nb",
            "numbers": [0, -1, 1.5, 1e-5, float("inf")],
            "empty": {},
            "none": None,
            "nested": [{"a": [1, {"b": None}]}],
        },
    }
    assert config_yaml(container) == OmegaConf.to_yaml(OmegaConf.create(container))
