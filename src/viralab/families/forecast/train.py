"""`train(cfg)`: the stats forecasters' one load -> clean -> split -> scale -> window -> fit ->
evaluate -> log -> register path (spec 002).

It is what `python -m viralab.train model=lstm target=views` and `mlflow run . -P model=lstm`
reach. `target=all` opens one parent run (`LSTM_all_<timestamp>`) with the data and config,
and one child run per target (`LSTM_views_<timestamp>`, ...), each with its own registered
model `youtube-lstm-<target>`; a single target logs into one run. A peer family (`conf/model/`
with a ``_target_``) takes the same path with `peer.fit_peer_target` in place of
`fit.fit_target`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from omegaconf import DictConfig

from viralab.families.forecast.fit import fit_target
from viralab.families.forecast.log import log_data, log_summary, log_target
from viralab.families.forecast.peer import fit_peer_target
from viralab.families.forecast.prepare import prepare, resolve_targets
from viralab.families.registration import RegistrationHook
from viralab.models import lstm
from viralab.tracking import log_config, tracked_run
from viralab.tracking.log import experiment_name
from viralab.tracking.tags import BEATS_NAIVE, FAMILY, MODEL, TARGET, TARGETS, TASK


def run_name_for(cfg: DictConfig, target: str, stamp: str) -> str:
    """`LSTM_<target>_<timestamp>`; a peer's runs start with its model name instead."""
    template = str(cfg.task.run_name_template)
    name = template.format(target=target, timestamp=stamp)
    if cfg.model.get("_target_") is not None and name.startswith("LSTM_"):
        name = f"{cfg.model.name}_{name[len('LSTM_') :]}"
    return name


def train_forecast(
    cfg: DictConfig, on_registered: RegistrationHook | None = None
) -> dict[str, float]:
    """Train the configured target(s); returns the metrics (`<target>.<metric>` for `all`).
    `on_registered`: called with each version registered (see `families.registration`).

    Raises:
        ConfigError: an unknown target or setting.
        DataError: no video long enough for one window.
    """
    targets = resolve_targets(cfg.get("target", "all"))
    is_peer = cfg.model.get("_target_") is not None  # conf/model/<peer>.yaml
    fit_one = fit_peer_target if is_peer else fit_target
    if not is_peer:
        lstm.configure_threads(cfg.model.threads)
    stamp = datetime.now(UTC).strftime("%Y%m%d_%H%M%S")
    experiment = str(cfg.task.experiment)
    # FAMILY is the canonical family tag (the preference family writes it too); TASK stays for
    # the runs and views that already select forecasters by it (forecast compare)
    tags = {FAMILY: "forecast", TASK: "forecast", MODEL: str(cfg.model.name)}
    data = prepare(cfg)
    name = cfg.get("run_name") or run_name_for(cfg, cfg.get("target", "all"), stamp)

    if len(targets) == 1:
        with tracked_run(experiment=experiment, run_name=name, tags=tags):
            log_config(cfg)
            log_data(data)
            return log_target(cfg, data, fit_one(cfg, data, targets[0]), on_registered)

    summary: dict[str, float] = {}
    with tracked_run(
        experiment=experiment, run_name=name, tags={**tags, TARGETS: ",".join(targets)}
    ) as parent:
        # children sit beside their parent, even when `mlflow run` chose its experiment
        experiment = experiment_name(parent.info.experiment_id)
        log_config(cfg)
        log_data(data)
        beats = {}
        for target in targets:
            child = run_name_for(cfg, target, stamp)
            with tracked_run(
                experiment=experiment,
                run_name=child,
                nested=True,
                tags={**tags, TARGET: target},
            ):
                result = fit_one(cfg, data, target)
                metrics = log_target(cfg, data, result, on_registered)
            beats[target] = result.tags[BEATS_NAIVE]
            summary.update(
                {f"{target}.{k}": v for k, v in metrics.items() if not k.startswith("importance.")}
            )
        log_summary(
            {k: v for k, v in summary.items() if k.split(".", 1)[1] in _SUMMARY_METRICS}, beats
        )
    return summary


_SUMMARY_METRICS = (
    "mae",
    "mae_scaled",
    "best_baseline_mae",
    "mase",
    "relative_mae",
    "epochs_trained",
    "training_time",
    "seconds_per_epoch",
    "mae_h60",
    "mase_h60",
    "relative_mae_h60",
    "coverage80_h60",
)


#: the interface name the issue asks every family to expose
train = train_forecast


__all__ = ["run_name_for", "train", "train_forecast"]
