"""Schemas of the `task` group (`conf/task/*.yaml`): what is predicted and how it is judged."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ForecastThresholds:
    """The scale-free verdict at `horizon` (tag `viralab.meets_spec_thresholds`)."""

    horizon: int = 60
    mase_max: float = 1.0
    relative_mae_max: float = 0.8


@dataclass
class CrossValidation:
    """Spec 002's expanding-window time-series cross-validation."""

    enabled: bool = False
    n_splits: int = 5


@dataclass
class PermutationImportance:
    enabled: bool = True
    repeats: int = 3


@dataclass
class TrainingAlerts:
    """Spec 002 "Training Monitoring" thresholds (run tags `viralab.alert.*`)."""

    max_duration_s: float = 300.0
    no_improvement_epochs: int = 20
    val_train_ratio: float = 2.0
    max_ram_percent: float = 80.0


@dataclass
class ForecastTask:
    """`conf/task/forecast.yaml`: the stats forecasters (spec 002)."""

    family: str = "forecast"
    experiment: str = "YouTube LSTM Models"
    registered_model_prefix: str = "youtube-lstm-"
    run_name_template: str = "LSTM_{target}_{timestamp}"
    predict: str = "residual"
    round_forecasts: bool = True
    test_fraction: float = 0.2
    validation_fraction: float = 0.2
    horizons: list[int] = field(default_factory=lambda: [1, 15, 60, 240])
    origin_stride: int = 5
    thresholds: ForecastThresholds = field(default_factory=ForecastThresholds)
    cross_validation: CrossValidation = field(default_factory=CrossValidation)
    permutation_importance: PermutationImportance = field(default_factory=PermutationImportance)
    plots: bool = True
    max_plot_videos: int = 10
    alerts: TrainingAlerts = field(default_factory=TrainingAlerts)


@dataclass
class Verdict:
    """Spec 000 §6.2 thresholds behind the `viralab.verdict.*` tags."""

    mae_ready: float = 0.15
    mae_acceptable: float = 0.20
    r2_good: float = 0.6
    r2_moderate: float = 0.4


@dataclass
class Milestones:
    """Spec 000 §8: ratings needed before each step."""

    correlation: int = 100
    first_model: int = 200
    retrain: int = 300
    advanced: int = 500


@dataclass
class PreferenceTask:
    """`conf/task/preference.yaml`: the preference model (spec 000)."""

    family: str = "preference"
    experiment: str = "preference"
    registered_model: str = "preference"
    label: str = "overall_score"
    test_size: float = 0.2
    random_state: int = 42
    cv_folds: int = 5
    error_threshold: float = 0.2
    verdict: Verdict = field(default_factory=Verdict)
    multi_output: bool = True
    dimensions: list[str] = field(
        default_factory=lambda: ["hook", "pacing", "payoff", "originality", "rewatchable"]
    )
    milestones: Milestones = field(default_factory=Milestones)
    force_train: bool = False


#: `task.family` (= `conf/task/<family>.yaml`) -> schema.
TASK_SCHEMAS: dict[str, type] = {"forecast": ForecastTask, "preference": PreferenceTask}
