"""Every MLflow connection detail in one place: store URI, experiments, the run we log into.

Training code computes and returns results; this package is the edge that talks to MLflow
(STYLE: "tracking at the edges"). By role: `store` (where runs live), `held` (a run's params,
metrics and tags, held or sent early), `artifacts` (a run's files, uploaded together), `runs`
(opening runs, config and commit), `tags` (the `viralab.*` vocabulary), `writer` (the
child process that makes a run's background requests). The names below are
re-exported so `from viralab.tracking import X` keeps working.
"""

from viralab.tracking.artifacts import (
    UPLOAD_THREADS,
    ArtifactBatch,
    artifact_batch,
    upload_artifacts,
)
from viralab.tracking.held import (
    ASYNC_BUFFER_ENV,
    EARLY_WRITES_ENV,
    PARAMS_PER_BATCH,
    RunWrites,
    async_logging,
    discard_held_tag,
    early_writes,
    early_writes_of,
    flush_held,
    held_writes,
    hold_writes,
    log_metrics,
    log_params,
    send_early,
    send_params_early,
    set_tags,
    write_held,
)
from viralab.tracking.runs import (
    PARAMS_PER_CALL,
    SUPPRESS_URL_ENV,
    create_run,
    create_run_in_background,
    end_run_later,
    git_commit,
    log_config,
    no_run_links,
    offer_active_run,
    open_created_run,
    settle_ended_runs,
    tracked_run,
)
from viralab.tracking.store import (
    DEFAULT_TRACKING_URI,
    PLATFORM_MODULES,
    SQLITE_PRAGMAS,
    configure_tracking,
    ensure_experiment,
    resolve_tracking_uri,
    skip_absent_platform_modules,
    tune_sqlite,
)
from viralab.tracking.writer import BACKGROUND_THREADS, background_pool
from viralab.tracking.writer import start as start_writer

__all__ = [
    "ASYNC_BUFFER_ENV",
    "BACKGROUND_THREADS",
    "DEFAULT_TRACKING_URI",
    "EARLY_WRITES_ENV",
    "PARAMS_PER_BATCH",
    "PARAMS_PER_CALL",
    "PLATFORM_MODULES",
    "SQLITE_PRAGMAS",
    "SUPPRESS_URL_ENV",
    "UPLOAD_THREADS",
    "ArtifactBatch",
    "RunWrites",
    "artifact_batch",
    "async_logging",
    "background_pool",
    "configure_tracking",
    "create_run",
    "create_run_in_background",
    "discard_held_tag",
    "early_writes",
    "early_writes_of",
    "end_run_later",
    "ensure_experiment",
    "flush_held",
    "git_commit",
    "held_writes",
    "hold_writes",
    "log_config",
    "log_metrics",
    "log_params",
    "no_run_links",
    "offer_active_run",
    "open_created_run",
    "resolve_tracking_uri",
    "send_early",
    "send_params_early",
    "set_tags",
    "settle_ended_runs",
    "skip_absent_platform_modules",
    "start_writer",
    "tracked_run",
    "tune_sqlite",
    "upload_artifacts",
    "write_held",
]
