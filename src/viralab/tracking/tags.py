"""The MLflow vocabulary of viralab: every `viralab.*` tag (run and model version), Optuna
user attribute and artifact name the code writes or reads, in one place.

Why: the same name is written by one module and read by another (training writes a run's
`viralab.data.*` tags, the retrain triggers read them); a typo on either side breaks the link
silently. `tests/tracking/test_tags.py` fails on any `"viralab.` string literal in src that
is not a value here. Each group says who writes and who reads. Names ending in a dot (and the
`_h` ones) are prefixes: the full key is the prefix plus a target, horizon, gate or alert.
"""

from __future__ import annotations

# --- Every run (tracking layer) ------------------------------------------------------------
#: Run tag: the error a run's body raised (written by `tracked_run`, the sweep's trials).
ERROR = "viralab.error"
#: Run tag: the working tree's commit, `-dirty` when changed (written by `log_config`).
GIT_COMMIT = "viralab.git_commit"
#: Artifact: the resolved, redacted config (written by `log_config`; read by `viralab retrain`).
CONFIG_ARTIFACT = "config.yaml"

# --- Both families (preference, forecast): run tags and model version tags ------------------
#: Run tag and model version tag: the model's name (written by training; read by
#: forecast_compare).
MODEL = "viralab.model"
#: Model version tag: the run name that registered it (written by training).
RUN_NAME = "viralab.run_name"
#: Run tag: what a run is for (forecast training, forecast_compare).
TASK = "viralab.task"

# --- Preference family (written by viralab.preference) --------------------------------------
FAMILY = "viralab.family"
MILESTONE = "viralab.milestone"
STAGE = "viralab.stage"
EXTRACTION = "viralab.extraction"
FORCE_TRAIN = "viralab.force_train"
NOTE = "viralab.note"
VERDICT = "viralab.verdict"
VERDICT_MAE = "viralab.verdict.mae"
VERDICT_R2 = "viralab.verdict.r2"
BEATS_BASELINE = "viralab.beats_baseline"
FEATURE_WEIGHTS = "viralab.feature_weights"
#: Retraining basis (read by viralab.monitor.triggers): newest `rated_at`, usable ratings.
DATA_MAX_RATED_AT = "viralab.data.max_rated_at"
DATA_N_RATINGS = "viralab.data.n_ratings"

# --- Forecast family (written by viralab.forecasting / forecast_multi) ----------------------
#: Run tag: the target a run forecasts (read by forecast_compare).
TARGET = "viralab.target"
#: Run tag on the `target=all` parent: its targets, comma-separated.
TARGETS = "viralab.targets"
PREDICT = "viralab.predict"
#: Run tag (read by the registry's gates and the `target=all` parent).
BEATS_NAIVE = "viralab.beats_naive"
#: Prefix: `viralab.beats_naive.<target>` on the `target=all` parent.
BEATS_NAIVE_TARGET_PREFIX = "viralab.beats_naive."
BEST_BASELINE = "viralab.best_baseline"
#: Retraining basis (read by viralab.monitor.triggers): newest row the run saw.
DATA_MAX_TIMESTAMP = "viralab.data.max_timestamp"
#: Threshold tags of the multi-horizon forecast (`..._h<horizon>` prefixes).
MEETS_SPEC_THRESHOLDS = "viralab.meets_spec_thresholds"
BEATS_NAIVE_H_PREFIX = "viralab.beats_naive_h"
RELATIVE_MAE_H_PREFIX = "viralab.relative_mae_h"
COVERAGE80_H_PREFIX = "viralab.coverage80_h"

# --- Sweeps (written by viralab.sweep / viralab.sweeps) -------------------------------------
#: Trial run tag and Optuna study user attribute: the sweep's name.
SWEEP = "viralab.sweep"
#: Prefix: the parent run's sweep settings and notes (`viralab.sweep.<key>`).
SWEEP_PREFIX = "viralab.sweep."
SWEEP_COMMAND = "viralab.sweep.command"
SWEEP_STUDY = "viralab.sweep.study"
SWEEP_SAMPLER = "viralab.sweep.sampler"
SWEEP_PRUNER = "viralab.sweep.pruner"
SWEEP_STORAGE = "viralab.sweep.storage"
SWEEP_METRIC = "viralab.sweep.metric"
SWEEP_DIRECTION = "viralab.sweep.direction"
SWEEP_RESUMED = "viralab.sweep.resumed"
SWEEP_FAMILY = "viralab.sweep.family"
SWEEP_MODEL = "viralab.sweep.model"
SWEEP_BEST_TRIAL = "viralab.sweep.best_trial"
SWEEP_BEST_RUN_ID = "viralab.sweep.best_run_id"
SWEEP_REGISTERED = "viralab.sweep.registered"
#: Parent run tag: the invocation whose trials it holds (read by a later sweep).
SWEEP_INVOCATION = "viralab.sweep.invocation"
#: A dataset or file logged once on the parent run, pointed to from each trial.
DATASET_DIGEST = "viralab.dataset.digest"
DATASET_NAME = "viralab.dataset.name"
DATASET_RUN_ID = "viralab.dataset.run_id"
FEATURE_METADATA_RUN_ID = "viralab.feature_metadata.run_id"
FEATURE_METADATA_PATH = "viralab.feature_metadata.path"
#: Optuna user attributes (study and trials; read back by the sweep itself).
METRIC_ATTR = "viralab.metric"
INVOCATION_ATTR = "viralab.invocation"
FAILED_ATTR = "viralab.failed"
PID_ATTR = "viralab.pid"
WORKER_ATTR = "viralab.worker"

# --- Registry: model version tags (written by promotion, sync; read by the version page) ----
PROMOTED_TO = "viralab.promoted_to"
PROMOTED_BY = "viralab.promoted_by"
PROMOTED_AT = "viralab.promoted_at"
PROMOTION_REASON = "viralab.promotion_reason"
PROMOTION_KIND = "viralab.promotion_kind"
PROMOTION_FORCED = "viralab.promotion_forced"
PROMOTION_FLAGGED = "viralab.promotion_flagged"
FORCE_REASON = "viralab.force_reason"
GATES = "viralab.gates"
ROLLED_BACK_FROM = "viralab.rolled_back_from"
ROLLED_BACK_AT = "viralab.rolled_back_at"
ROLLED_BACK_BY = "viralab.rolled_back_by"
ROLLED_BACK_REASON = "viralab.rolled_back_reason"
VERSION_TAG = "viralab.version_tag"
#: Gate sets (mirrors viralab.registry.vocabulary): run tags from training, version tags.
GATE_SET_DIGEST = "viralab.gate_set.digest"
GATE_SET_HELD_BACK = "viralab.gate_set.held_back"
GATE_PREFIX = "viralab.gate."
EVIDENCE_GATE_SET = "viralab.evidence.gate_set"

# --- Monitor: retrain checks, retrains, A/B reports, training alerts ------------------------
#: Prefix: `viralab.trigger.<name>` = a trigger's status on a check run.
TRIGGER_PREFIX = "viralab.trigger."
TRIGGERS_FIRED = "viralab.triggers_fired"
CHALLENGES = "viralab.challenges"
CHECKED_VERSION = "viralab.checked_version"
RETRAIN_RUN_ID = "viralab.retrain_run_id"
RETRAIN_KIND = "viralab.retrain.kind"
RETRAIN_MODEL = "viralab.retrain.model"
RETRAIN_OUTCOME = "viralab.retrain.outcome"
RETRAIN_REFUSED = "viralab.retrain.refused"
RETRAIN_VERSION = "viralab.retrain.version"
RETRAIN_FORCED = "viralab.retrain.forced"
RETRAIN_ABANDONED = "viralab.retrain.abandoned"
RETRAIN_ALREADY_JUDGED = "viralab.retrain.already_judged"
RETRAIN_AUTO_PROMOTE = "viralab.retrain.auto_promote"
RETRAIN_BASIS = "viralab.retrain.basis"
RETRAIN_CHALLENGER_GATES = "viralab.retrain.challenger_gates"
RETRAIN_CHAMPION_GATES = "viralab.retrain.champion_gates"
RETRAIN_CHAMPION_RUN_ID = "viralab.retrain.champion_run_id"
RETRAIN_CHAMPION_VERSION = "viralab.retrain.champion_version"
RETRAIN_CONFIG_FROM_RUN = "viralab.retrain.config_from_run"
RETRAIN_DATA_DIGEST = "viralab.retrain.data_digest"
RETRAIN_LIVE_MAE_SOURCE = "viralab.retrain.live_mae_source"
RETRAIN_NOTES = "viralab.retrain.notes"
AB_VERDICT = "viralab.ab.verdict"
AB_CHAMPION_VERSION = "viralab.ab.champion_version"
AB_CHALLENGER_VERSION = "viralab.ab.challenger_version"
#: Prefix: `viralab.alert.<name>` per training alert, and the list of them.
ALERT_PREFIX = "viralab.alert."
ALERTS = "viralab.alerts"
