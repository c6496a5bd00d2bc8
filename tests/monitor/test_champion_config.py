"""Retrain reads the champion's config.yaml as data: schema, allowlisted `_target_`, no
instantiate keys or interpolations; a foreign `_target_` is refused before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient
from omegaconf import OmegaConf
from typer.testing import CliRunner

from tests.monitor.test_triggers import (  # noqa: F401  (fixtures)
    champion,
    champion_store,
    ratings_overrides,
    registry_settings,
)
from viralab.cli import app
from viralab.config import compose, config_dir, to_safe_container
from viralab.monitor.champion_config import UntrustedConfig, parse_champion_config
from viralab.monitor.commands import EXIT_ERROR
from viralab.monitor.retrain import allowed_targets, training_config

FOREIGN = ["os.system", "subprocess.Popen", "builtins.eval"]


def logged_yaml(overrides: list[str]) -> str:
    return OmegaConf.to_yaml(OmegaConf.create(to_safe_container(compose(overrides))))


def with_model(text: str, **model: object) -> str:
    data = OmegaConf.to_container(OmegaConf.create(text))
    data["model"].update(model)
    return OmegaConf.to_yaml(OmegaConf.create(data))


@pytest.mark.parametrize("name", sorted(p.stem for p in (config_dir() / "model").glob("*.yaml")))
def test_every_project_model_is_allowed_and_its_logged_config_parses(name: str) -> None:
    cfg = compose([f"model={name}"])
    target = cfg.model.get("_target_")
    assert target is None or target in allowed_targets(cfg)
    parsed = parse_champion_config(logged_yaml([f"model={name}"]), allowed_targets(cfg))
    assert parsed["model"]["name"] == name


@pytest.mark.parametrize("target", FOREIGN)
def test_a_foreign_target_is_refused_with_the_reason(target: str) -> None:
    text = with_model(logged_yaml(["model=ridge"]), _target_=target, _args_=["true"])
    with pytest.raises(UntrustedConfig, match="refused") as caught:
        training_config([], text, model="preference", run_name="r")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        ({"inner": {"_target_": "os.system"}}, r"model\.inner\._target_"),
        ({"_partial_": True}, r"model\._partial_"),
        ({"alpha": "${oc.env:VIRALAB_DATABASE_URL}"}, "interpolation at model.alpha"),
        ({"name": 3}, "schema: model.name"),
    ],
)
def test_instantiate_keys_interpolations_and_bad_types_are_refused(
    edit: dict[str, object], match: str
) -> None:
    text = with_model(logged_yaml(["model=ridge"]), **edit)
    with pytest.raises(UntrustedConfig, match=match):
        training_config([], text, model="preference", run_name="r")


def test_python_yaml_tags_and_non_mappings_are_refused() -> None:
    allowed = ["sklearn.linear_model.Ridge"]
    with pytest.raises(UntrustedConfig, match="not plain YAML data"):
        parse_champion_config("model: !!python/object/apply:os.system ['true']\n", allowed)
    with pytest.raises(UntrustedConfig, match="not a mapping"):
        parse_champion_config("- 1\n- 2\n", allowed)
    with pytest.raises(UntrustedConfig, match="schema: task"):
        parse_champion_config("model: {name: ridge}\n", allowed)


@pytest.mark.slow
@pytest.mark.usefixtures("champion")
def test_retrain_of_a_champion_with_a_foreign_target_runs_nothing(tmp_path: Path) -> None:
    """A version whose run's config.yaml says `_target_: os.system` becomes champion (as
    anyone who can write artifacts and promote could arrange): retrain refuses, exit 2."""
    from viralab.promotion.promote import promote
    from viralab.registry.client import get_client

    client = MlflowClient()
    v1 = client.get_model_version("preference", "1")
    marker = tmp_path / "pwned"
    logged = Path(client.download_artifacts(v1.run_id, "config.yaml", str(tmp_path)))
    evil = with_model(
        logged.read_text(encoding="utf-8"),
        _target_="os.system",
        _args_=[f"touch {marker}"],
    )
    exp = client.get_run(v1.run_id).info.experiment_id
    run = client.create_run(exp, run_name="evil")
    client.log_text(run.info.run_id, evil, "config.yaml")
    client.set_terminated(run.info.run_id)
    client.create_model_version("preference", v1.source, run_id=run.info.run_id)
    overrides = ratings_overrides(tmp_path, [])
    promote(get_client(), registry_settings(compose(overrides)), "preference", "2", "champion",
            force=True, reason="test: a tampered champion")  # fmt: skip

    result = CliRunner().invoke(app, ["retrain", "run", "preference", "--force", *overrides])
    assert result.exit_code == EXIT_ERROR, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "os.system" in errors[0] and "allowed_targets" in errors[0]
    assert not marker.exists()
    assert sorted(int(v.version) for v in client.search_model_versions("name = 'preference'")) == [
        1,
        2,
    ]
    assert not client.search_runs([exp], filter_string="tags.mlflow.runName LIKE '%retrain%'")


def test_every_project_model_target_is_allowed_for_retraining() -> None:
    """A model the project can train must also be retrainable: its `_target_` is allowlisted."""
    import glob

    import yaml

    from viralab.config import config_dir

    allowed = set(
        yaml.safe_load((config_dir() / "retrain" / "default.yaml").read_text())["allowed_targets"]
    )
    targets = set()
    for path in glob.glob(str(config_dir() / "model" / "*.yaml")):
        text = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        target = (text.get("model") or {}).get("_target_")
        if target:
            targets.add(target)
    assert targets, "no model config names a _target_"
    assert targets <= allowed, f"not allowlisted: {sorted(targets - allowed)}"
