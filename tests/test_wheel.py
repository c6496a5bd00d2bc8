"""The built wheel (not the editable install) trains from an empty directory.

The Hydra config tree ships inside the package (`pkg://viralab.conf`), so nothing may come from
the source tree: the wheel is installed into a fresh venv that sees the project venv's
third-party packages through a `.pth` path line (the `.pth` files in that folder, the editable
install's among them, are not processed), and runs with no `PYTHONPATH`, no
`VIRALAB_CONFIG_DIR` and no `MLFLOW_TRACKING_URI` in a folder that holds nothing.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import mlflow
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROJECT = Path(__file__).resolve().parents[1]

#: Variables that would point the run back at the source tree or another store.
_UNSET = ("PYTHONPATH", "VIRALAB_CONFIG_DIR", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI",
          "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID")  # fmt: skip


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 300):
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the built wheel, the project venv's packages behind it."""
    tmp = tmp_path_factory.mktemp("wheel")
    # build from a copy: an in-tree build would leave build/ and *.egg-info in the checkout
    source = tmp / "source"
    shutil.copytree(
        PROJECT / "src",
        source / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(PROJECT / name, source / name)
    dist = tmp / "dist"
    # this venv's setuptools and wheel when it has them (offline, fast); else pip's isolated build
    local = all(importlib.util.find_spec(name) for name in ("setuptools", "wheel"))
    isolation = ["--no-build-isolation"] if local else []
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", *isolation,
         "--quiet", "-w", str(dist), str(source)],
        cwd=tmp,
    )  # fmt: skip
    (wheel,) = dist.glob("viralab-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    python = venv / "bin" / "python"
    purelib = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp
    ).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib) / "project-venv.pth").write_text("\n".join(sorted(ours)) + "\n")
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--quiet", str(wheel)],
        cwd=tmp,
    )  # fmt: skip
    return venv


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    path = tmp_path / "empty"
    path.mkdir()
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _UNSET}
    env.update({"MLFLOW_DISABLE_TELEMETRY": "true", "GIT_PYTHON_REFRESH": "quiet"})
    return env


def test_the_wheel_ships_the_config_tree_and_is_what_imports(
    wheel_venv: Path, empty_dir: Path
) -> None:
    probe = (
        "import importlib.resources, viralab, viralab.config as c; "
        "print(viralab.__file__); "
        "print(importlib.resources.files('viralab.conf').joinpath('config.yaml')); "
        "print(*c.config_layers(), sep=';'); "
        "print(c.compose(['model=ridge']).model.name)"
    )
    out = _run([str(wheel_venv / "bin" / "python"), "-c", probe], empty_dir, _env()).stdout
    module, config_yaml, layers, model = out.strip().splitlines()[-4:]
    venv = wheel_venv.resolve()
    assert Path(module).resolve().is_relative_to(venv), module
    packaged = Path(config_yaml).resolve()
    assert packaged.is_file() and packaged.is_relative_to(venv), config_yaml
    assert [Path(p) for p in layers.split(";")] == [packaged.parent]  # no ./conf, no env folder
    assert model == "ridge"


def test_the_wheel_trains_the_embedded_default_in_an_empty_directory(
    wheel_venv: Path, empty_dir: Path
) -> None:
    python = str(wheel_venv / "bin" / "python")
    proc = _run([python, "-m", "viralab.train", "model=ridge"], empty_dir, _env())
    assert str(PROJECT / "src") not in proc.stdout + proc.stderr
    store = empty_dir / "mlruns" / "mlflow.db"
    assert store.is_file(), sorted(p.name for p in empty_dir.iterdir())
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{store}")
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["model.name"] == "ridge"
    assert run.data.params["data.source"] == "sample"
    assert "mae" in run.data.metrics

    help_text = _run([str(wheel_venv / "bin" / "viralab"), "predict", "--help"], empty_dir, _env())
    assert "Usage" in help_text.stdout
    assert not (empty_dir / "conf").exists()
