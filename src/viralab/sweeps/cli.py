"""`viralab sweep ...`: run a sweep, list the spaces, show where a study stands.

Mounted by the main CLI (`app.add_typer(sweep_app, name="sweep")`). `run` is the same sweep as
`python -m viralab.sweep` (minus Hydra's output folder and `--cfg` flags).
"""

from __future__ import annotations

import typer
from omegaconf import OmegaConf

from viralab.config import config_file, group_options, redact_url
from viralab.entrypoint import user_errors_exit
from viralab.errors import ConfigError
from viralab.sweeps.space import hydra_value
from viralab.tracking import resolve_tracking_uri
from viralab.tracking.tags import METRIC_ATTR

app = typer.Typer(
    help="Hyperparameter sweeps (Optuna) over the search spaces in conf/sweep/.",
    no_args_is_help=True,
)


@app.command("run")
@user_errors_exit
def run(
    space: str = typer.Argument("ridge", help="search space: conf/sweep/<space>.yaml"),
    overrides: list[str] | None = typer.Argument(
        None, help="Hydra overrides for the sweep and every trial, e.g. data.n_videos=300"
    ),
    n_trials: int | None = typer.Option(None, "--trials", "-n", help="trials to add"),
    workers: int = typer.Option(1, "--workers", "-w", help="worker processes"),
    study: str | None = typer.Option(None, "--study", help="study name (resumes if it exists)"),
    storage: str | None = typer.Option(
        None, "--storage", help="Optuna storage URL (default: $VIRALAB_OPTUNA_STORAGE or mlruns/)"
    ),
) -> None:
    """Run (or resume) a sweep: each trial is one tracked training run."""
    # imported here: the runner loads Optuna, Hydra and the training code, which
    # `viralab --help` and the other commands do not need
    from viralab.sweeps.runner import run_sweep

    args = [f"sweep={space}", f"workers={workers}"]
    if n_trials is not None:
        args.append(f"n_trials={n_trials}")
    if study:
        args.append(f"sweep.study_name={hydra_value(study)}")
    if storage:
        args.append(f"sweep.storage={hydra_value(storage)}")
    run_sweep([*args, *(overrides or [])])


@app.command("list")
def list_spaces() -> None:
    """The search spaces (conf/sweep/*.yaml) with their parameters."""
    for name in group_options("sweep"):
        node = OmegaConf.load(config_file("sweep", f"{name}.yaml")).get("sweep", {})
        params = ", ".join(str(p) for p in (node.get("params") or {}))
        typer.echo(f"{name:<20} {node.get('metric', '?')} ({node.get('direction', '?')}): {params}")


@app.command("status")
@user_errors_exit
def status(
    study: str = typer.Argument(..., help="study name"),
    storage: str | None = typer.Option(None, "--storage", help="Optuna storage URL"),
) -> None:
    """Trials by state and the best trial of a study (e.g. while workers run elsewhere)."""
    import optuna

    # imported here: `sweeps.study` loads Optuna, which `viralab --help` does not need
    from viralab.sweeps.study import open_storage, resolve_storage

    url = resolve_storage(storage, resolve_tracking_uri())
    store = open_storage(url)
    names = {s.study_name: s for s in store.get_all_studies()}
    if study not in names:
        known = ", ".join(sorted(names)) or "none"
        raise ConfigError(f"no study {study!r} in {redact_url(url)}; studies: {known}")
    loaded = optuna.load_study(study_name=study, storage=store)
    trials = loaded.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for t in trials:
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    metric = names[study].user_attrs.get(METRIC_ATTR, "value")
    typer.echo(
        f"study {study!r} in {redact_url(url)}: {len(trials)} trials "
        + ", ".join(f"{n} {s.lower()}" for s, n in sorted(counts.items()))
    )
    if counts.get("COMPLETE"):
        best = loaded.best_trial
        typer.echo(f"best {metric}={best.value:.6g} (trial {best.number}): {best.params}")
