"""Retrain runs an earlier, killed retrain left RUNNING, closed once the lock is ours again.

Holding a model's retrain lock (`viralab.monitor.lock`) proves no other retrain of it is
alive, so whatever of its runs is still RUNNING was interrupted; closing them keeps the
retraining experiment from showing half-done work as in progress.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from viralab.registry.client import registry_errors
from viralab.tracking.tags import RETRAIN_ABANDONED, RETRAIN_KIND, RETRAIN_MODEL, RETRAIN_OUTCOME

if TYPE_CHECKING:
    from mlflow import MlflowClient

log = logging.getLogger(__name__)


def close_orphans(client: MlflowClient, experiment: str, model: str) -> list[str]:
    """Retrain runs of `model` still RUNNING while we hold its lock were killed mid-way: mark
    them KILLED (outcome `killed`), and tag a version one of them registered but never
    finished with `viralab.retrain.abandoned`, so nothing looks half-done. Returns their ids."""
    with registry_errors(f"looking for interrupted retrains of {model}"):
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            return []
        runs = client.search_runs(
            [exp.experiment_id],
            filter_string=(
                f"tags.`{RETRAIN_MODEL}` = '{model}' and attributes.status = 'RUNNING' "
                f"and tags.`{RETRAIN_KIND}` = 'retrain'"
            ),
        )
        closed = []
        for run in runs:
            run_id = run.info.run_id
            children = client.search_runs(
                [exp.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'"
            )
            for child in children:
                if child.info.status == "RUNNING":
                    client.set_terminated(child.info.run_id, "KILLED")
                for found in client.search_model_versions(f"run_id = '{child.info.run_id}'"):
                    if found.name != model:
                        continue
                    v = client.get_model_version(model, str(found.version))  # search: no aliases
                    if not v.aliases:
                        client.set_model_version_tag(
                            model, str(v.version), RETRAIN_ABANDONED, run_id
                        )
            client.set_tag(run_id, RETRAIN_OUTCOME, "killed")
            client.set_terminated(run_id, "KILLED")
            closed.append(run_id)
            log.warning("Closed retrain run %s of %s as KILLED (interrupted)", run_id, model)
    return closed


__all__ = ["close_orphans"]
