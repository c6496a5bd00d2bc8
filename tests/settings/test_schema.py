"""Every config combination composes against the typed settings (`viralab.settings`), whose
defaults are the packaged YAML's values; a wrong type or an unknown key is one ConfigError."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from viralab.config import compose, config_dir, group_options
from viralab.errors import ConfigError
from viralab.settings import GROUP_SCHEMAS, ROOT_SCHEMAS, SCHEMA_SUFFIX
from viralab.settings.data import DATA_SCHEMAS
from viralab.settings.features import FEATURES_SCHEMAS
from viralab.settings.models import MODEL_SCHEMAS
from viralab.settings.task import TASK_SCHEMAS
from viralab.settings.tracking import TRACKING_SCHEMAS

PACKAGED = config_dir()
#: Free-form maps keyed by registered model name: empty in the schema (a merge adds keys).
MAPS = {("registry", "default"): "gates", ("retrain", "default"): "models"}


@pytest.fixture(autouse=True)
def _packaged_tree_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIRALAB_CONFIG_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./conf


def _packaged(group: str) -> list[str]:
    return sorted(p.stem for p in (PACKAGED / group).glob("*.yaml"))


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=False)


def _yaml_section(group: str, name: str) -> dict[str, Any]:
    raw = _plain(OmegaConf.load(PACKAGED / group / f"{name}.yaml"))
    raw.pop("defaults", None)
    return raw[group] if group == "model" else raw  # model files are `@package _global_`


def test_every_config_file_has_a_schema_and_names_it_first() -> None:
    for group, schemas in GROUP_SCHEMAS.items():
        assert set(_packaged(group)) == set(schemas), group
        for name in schemas:
            defaults = _plain(OmegaConf.load(PACKAGED / group / f"{name}.yaml"))["defaults"]
            assert defaults[0] == f"{name}{SCHEMA_SUFFIX}", f"{group}/{name}.yaml"
    for name in ROOT_SCHEMAS:
        app = _plain(OmegaConf.load(PACKAGED / f"{name}_app.yaml"))
        assert app["defaults"][0] == f"{name}{SCHEMA_SUFFIX}"


@pytest.mark.parametrize(
    ("group", "name"),
    [(group, name) for group, schemas in GROUP_SCHEMAS.items() for name in schemas],
)
def test_schema_defaults_equal_the_yaml_values(group: str, name: str) -> None:
    schema = _plain(OmegaConf.structured(GROUP_SCHEMAS[group][name]))
    yaml = _yaml_section(group, name)
    mapped = MAPS.get((group, name))
    if mapped:
        assert schema.pop(mapped) == {}
        assert isinstance(yaml.pop(mapped), dict)
    assert schema == yaml


def test_the_sweep_schema_defaults_equal_the_app_values() -> None:
    schema = _plain(OmegaConf.structured(ROOT_SCHEMAS["sweep"][0]))
    app = _plain(OmegaConf.load(PACKAGED / "sweep_app.yaml"))["sweep"]
    assert {k: schema[k] for k in app} == app
    # the rest is what each space sets, and the sampler and pruner groups
    assert set(schema) - set(app) == {
        "metric", "direction", "n_trials", "params", "sampler", "pruner"
    }  # fmt: skip


TRAINING = list(itertools.product(_packaged("model"), _packaged("data"), _packaged("tracking")))


@pytest.mark.parametrize(("model", "data", "tracking"), TRAINING)
def test_every_training_combination_composes_typed(model: str, data: str, tracking: str) -> None:
    cfg = compose([f"model={model}", f"data={data}", f"tracking={tracking}"])
    family = cfg.task.family
    features = "sequence" if family == "forecast" else "tabular"
    expected = {
        "model": MODEL_SCHEMAS[model],
        "data": DATA_SCHEMAS[data],
        "tracking": TRACKING_SCHEMAS[tracking],
        "task": TASK_SCHEMAS[family],
        "features": FEATURES_SCHEMAS[features],
        "registry": GROUP_SCHEMAS["registry"]["default"],
        "retrain": GROUP_SCHEMAS["retrain"]["default"],
    }
    for group, schema in expected.items():
        assert OmegaConf.get_type(cfg[group]) is schema, group
    if data != "files":  # data.path is required (???) there
        OmegaConf.to_container(cfg, resolve=True)  # interpolations fit their fields' types


@pytest.mark.parametrize("task", _packaged("task"))
def test_each_task_composes_with_its_features(task: str) -> None:
    features = "sequence" if task == "forecast" else "tabular"
    cfg = compose([f"task={task}", f"features={features}"])
    assert OmegaConf.get_type(cfg.task) is TASK_SCHEMAS[task]
    assert OmegaConf.get_type(cfg.features) is FEATURES_SCHEMAS[features]


SWEEPS = list(
    itertools.product(_packaged("sweep"), _packaged("sweep/sampler"), _packaged("sweep/pruner"))
)


@pytest.mark.parametrize(("sweep", "sampler", "pruner"), SWEEPS)
def test_every_sweep_combination_composes_typed(sweep: str, sampler: str, pruner: str) -> None:
    cfg = compose(
        [f"sweep={sweep}", f"sweep/sampler={sampler}", f"sweep/pruner={pruner}"], "sweep_app"
    )
    assert OmegaConf.get_type(cfg.sweep) is ROOT_SCHEMAS["sweep"][0]
    assert OmegaConf.get_type(cfg.sweep.sampler) is GROUP_SCHEMAS["sweep/sampler"][sampler]
    assert OmegaConf.get_type(cfg.sweep.pruner) is GROUP_SCHEMAS["sweep/pruner"][pruner]
    space = _plain(OmegaConf.load(PACKAGED / "sweep" / f"{sweep}.yaml"))["sweep"]
    assert _plain(cfg.sweep.params) == space["params"]
    assert cfg.sweep.metric == space["metric"]
    assert cfg.sweep.heartbeat_interval == 30  # the app's own values survive the space


def test_all_group_options_are_packaged_files() -> None:
    assert set(group_options("model")) == set(MODEL_SCHEMAS)


def test_a_wrong_type_names_the_key_and_the_override() -> None:
    with pytest.raises(ConfigError, match=r"^model\.alpha: .*could not be converted.*") as err:
        compose(["model.alpha=abc"])
    assert "model.alpha=abc" in str(err.value)
    assert "\n" not in str(err.value)


def test_an_unknown_key_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^model\.alphaa: Key 'alphaa' not in 'RidgeModel'"):
        compose(["model.alphaa=1"])


def _project_model(tmp_path: Path, name: str, text: str) -> None:
    folder = tmp_path / "conf" / "model"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(text)


def test_an_unknown_key_in_a_yaml_names_the_key_and_the_file(tmp_path: Path) -> None:
    ridge = (PACKAGED / "model" / "ridge.yaml").read_text()
    _project_model(tmp_path, "ridge", ridge.replace("alpha: 1.0", "alphaa: 1.0"))
    with pytest.raises(ConfigError, match=r"^model\.alphaa: .*\(in model/ridge\.yaml\)$"):
        compose()


def test_a_project_file_without_the_schema_is_still_typed(tmp_path: Path) -> None:
    # an older copy of lstm.yaml: no schema in its defaults, no `loss` or `unroll`
    _project_model(
        tmp_path,
        "lstm",
        "# @package _global_\ndefaults:\n  - override /task: forecast\n"
        "  - override /features: sequence\nmodel:\n  name: lstm\n  epochs: 3\n",
    )
    cfg = compose(["model=lstm"])
    assert OmegaConf.get_type(cfg.model) is MODEL_SCHEMAS["lstm"]
    assert (cfg.model.epochs, cfg.model.loss, cfg.model.unroll) == (3, "mae", True)

    _project_model(tmp_path, "lstm", "# @package _global_\nmodel:\n  name: lstm\n  epochs: x\n")
    with pytest.raises(ConfigError, match=r"^model\.epochs: .*\(in model/lstm\.yaml\)$"):
        compose(["model=lstm"])


def test_the_lstm_reads_the_yaml_loss_and_unroll() -> None:
    model = compose(["model=lstm"]).model
    assert (model.loss, model.unroll) == ("mae", True)  # the code's old defaults: mse, false
