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
#: Artifact: the resolved, redacted config (written by `log_config` and on a sweep's parent
#: run; read by `viralab retrain`).
CONFIG_ARTIFACT = "config.yaml"

# --- Both families (preference, forecast): run tags and model version tags ------------------
#: Run tag and model version tag: the model's name (written by training; read by
#: forecast_compare).
MODEL = "viralab.model"
#: Model version tag: the run name that registered it (written by training).
RUN_NAME = "viralab.run_name"
#: Run tag, THE family tag (canonical): the family that trained the run, `preference` or
#: `forecast` (the names of `viralab.training.FAMILIES`). Every training run writes it
#: (families.preference.run, families.forecast.train: the `target=all` parent and its
#: children alike).
FAMILY = "viralab.family"
#: Run tag: what a run is for: `forecast` (forecast training, beside FAMILY) or
#: `forecast_compare`. Not the family tag: it stays for the runs logged before forecast
#: training wrote FAMILY, which `forecast compare` still selects by it.
TASK = "viralab.task"

# --- Preference family (written by families.preference) -------------------------------------
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
#: Retraining basis (read by viralab.monitor.triggers): the newest `rated_at` among the
#: ratings the run saw (ISO-8601, UTC; later ones are "new"), and how many usable ratings it
#: saw (training and test part together).
DATA_MAX_RATED_AT = "viralab.data.max_rated_at"
DATA_N_RATINGS = "viralab.data.n_ratings"

# --- Forecast family (written by families.forecast) -----------------------------------------
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
#: Retraining basis (read by viralab.monitor.triggers): the newest stats row the run trained
#: on (ISO-8601 UTC), on the run that logged the data (`target=all` parent or single target).
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
#: Parent run tag: the invocation whose trials it holds (trials: INVOCATION_ATTR), so a
#: later sweep can tell a dead parent from a live one.
SWEEP_INVOCATION = "viralab.sweep.invocation"
#: A dataset or file logged once on the parent run, pointed to from each trial.
DATASET_DIGEST = "viralab.dataset.digest"
DATASET_NAME = "viralab.dataset.name"
DATASET_RUN_ID = "viralab.dataset.run_id"
FEATURE_METADATA_RUN_ID = "viralab.feature_metadata.run_id"
FEATURE_METADATA_PATH = "viralab.feature_metadata.path"
CORRELATIONS_RUN_ID = "viralab.correlations.run_id"
CORRELATIONS_PATH = "viralab.correlations.path"
#: Optuna user attributes (study and trials; read back by the sweep itself). Study: METRIC_ATTR
#: and SWEEP (what a resumed sweep must agree with). Trials: the invocation that ran it; FAILED
#: when it failed in its own process (a trial failed as stale, its worker dead, has no such mark).
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

# --- Gate sets: training writes them, the comparison and the version page read them --------
#: Run tag: the digest of the gate set the run's training held out (NO_GATE_SET when none was).
GATE_SET_DIGEST = "viralab.gate_set.digest"
#: Value of GATE_SET_DIGEST for a run trained without any gate set held out.
NO_GATE_SET = "none"
#: Run tag: how many rows (ratings, or stats rows) the run's training held out for it.
GATE_SET_HELD_BACK = "viralab.gate_set.held_back"
#: Run metric with the same count, so runs can be compared on it.
METRIC_GATE_HELD_BACK = "gate_set_held_back"
#: `mlflow.log_input` context of the gate set's dataset on a candidate run.
GATE_CONTEXT = "gate"
#: Version tag prefix: `viralab.gate.<gate key>` = pass | fail.
GATE_PREFIX = "viralab.gate."
#: Version tag: the gate-set digest the version's evidence was computed on.
EVIDENCE_GATE_SET = "viralab.evidence.gate_set"

# --- Artifact names and metrics: written by one module, read by another ---------------------
#: (CONFIG_ARTIFACT is at the top, METRIC_GATE_HELD_BACK with the gate sets.)
#: Run metric: the test MAE of either family (written by the families' fit; read by the
#: monitor's degradation triggers and by the registry's gates and fallback comparison).
METRIC_MAE = "mae"
#: Forecast run metric: the best naive baseline's test MAE (read by the registry's
#: beats-baseline gate).
METRIC_BEST_BASELINE_MAE = "best_baseline_mae"
#: Forecast run metric prefixes, `<prefix><horizon>` (written by models.forecast_eval; read
#: by the family's threshold judge and by `forecast compare`).
METRIC_MAE_H_PREFIX = "mae_h"
METRIC_MASE_H_PREFIX = "mase_h"
METRIC_RELATIVE_MAE_H_PREFIX = "relative_mae_h"
METRIC_COVERAGE80_H_PREFIX = "coverage80_h"
#: Preference run artifact: the test part's rows (written by families.preference.log; read by
#: the monitor's challenger check and, as `registry.gates`' default `eval_artifact`, by the
#: registry's fallback comparison).
TEST_SET_ARTIFACT = "eval/test_set.parquet"
#: Preference run artifact: the model's feature weights (read by the registry sync).
FEATURE_WEIGHTS_ARTIFACT = "feature_weights.json"
#: Preference run artifact: the training rows' binned feature distribution (written by
#: families.preference.log; read by the monitor's `feature_drift` trigger).
DRIFT_REFERENCE_ARTIFACT = "drift/reference.json"
#: Forecast run metric: the stats rows before cleaning (written as `clean.<count>` by
#: families.forecast.log; read by the monitor's forecast triggers as a fallback basis).
METRIC_CLEAN_ROWS_IN = "clean.rows_in"

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
ALERTS_RAISED = "viralab.alerts"
