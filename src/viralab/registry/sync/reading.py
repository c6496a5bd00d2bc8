"""Reading the registry for a sync: every model and version (paged), their runs (batched) and
the one artifact applications read from a run, `feature_weights.json` (downloaded once)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import ViewType

from viralab.registry.client import RunData, load_json_artifact, registry_errors
from viralab.tracking.tags import FEATURE_WEIGHTS_ARTIFACT

RUN_BATCH = 100  # run ids per batched search_runs
DOWNLOAD_WORKERS = 8
MODELS_PAGE = 1000  # the SQL store's maximum for search_registered_models
VERSIONS_PAGE = 10_000


@dataclass(frozen=True)
class RegistryVersion:
    """One model version as the registry describes it, aliases included."""

    model: str
    version: int
    run_id: str | None
    source: str | None
    stage: str | None
    description: str | None
    tags: Mapping[str, str]
    last_updated: int | None
    aliases: tuple[str, ...]


def read_registry(client: MlflowClient) -> tuple[list[str], list[RegistryVersion]]:
    """Every registered model and every version, paging through both searches.

    Aliases come from the registered models: version search results may leave them empty.
    """
    models: dict[str, dict[str, int]] = {}
    with registry_errors("listing registered models"):
        token = None
        while True:
            page = client.search_registered_models(max_results=MODELS_PAGE, page_token=token)
            for rm in page:
                models[rm.name] = {a: int(v) for a, v in (rm.aliases or {}).items()}
            token = page.token
            if not token:
                break
    versions: list[RegistryVersion] = []
    with registry_errors("listing model versions"):
        token = None
        while True:
            page = client.search_model_versions(max_results=VERSIONS_PAGE, page_token=token)
            for mv in page:
                if mv.name not in models:  # e.g. prompts, or a model created since the listing
                    continue
                number = int(mv.version)
                aliases = tuple(sorted(a for a, v in models[mv.name].items() if v == number))
                stage = mv.current_stage if mv.current_stage not in (None, "None") else None
                versions.append(
                    RegistryVersion(
                        mv.name,
                        number,
                        mv.run_id or None,
                        mv.source,
                        stage,
                        mv.description or None,
                        dict(mv.tags or {}),
                        mv.last_updated_timestamp,
                        aliases,
                    )
                )
            token = page.token
            if not token:
                break
    return sorted(models), versions


def fetch_runs(client: MlflowClient, run_ids: Iterable[str]) -> dict[str, RunData]:
    """Metrics and tags of many runs in a few batched searches (one `get_run` each would
    cost a round trip per version); runs the search cannot see are fetched one by one, and
    runs deleted for good are simply absent."""
    wanted = sorted(set(run_ids))
    found: dict[str, RunData] = {}
    if not wanted:
        return found
    with registry_errors("reading the versions' runs"):
        experiments: list[str] = []
        token = None
        while True:
            page = client.search_experiments(view_type=ViewType.ALL, page_token=token)
            experiments += [e.experiment_id for e in page]
            token = page.token
            if not token:
                break
        for start in range(0, len(wanted), RUN_BATCH):
            chunk = wanted[start : start + RUN_BATCH]
            ids = ", ".join(f"'{run_id}'" for run_id in chunk)
            runs = client.search_runs(
                experiments,
                f"attributes.run_id IN ({ids})",
                run_view_type=ViewType.ALL,
                max_results=len(chunk),
            )
            for run in runs:
                found[run.info.run_id] = RunData.from_run(run)
        for run_id in wanted:
            if run_id not in found:
                try:
                    found[run_id] = RunData.from_run(client.get_run(run_id))
                except Exception as exc:
                    if getattr(exc, "error_code", None) != "RESOURCE_DOES_NOT_EXIST":
                        raise
    return found


class FeatureWeights:
    """`feature_weights.json` per run, downloaded at most once per sync.

    `prefetch` reads many runs' files on a few threads: against S3 or a tracking server each
    read is two round trips, and a first sync of a large registry would otherwise wait on
    them one after another.
    """

    def __init__(self, client: MlflowClient, workers: int = DOWNLOAD_WORKERS) -> None:
        self._client = client
        self._workers = workers
        self._cache: dict[str, Any] = {}
        self.downloads = 0

    def _load(self, run: RunData) -> Any | None:
        return load_json_artifact(self._client, run, FEATURE_WEIGHTS_ARTIFACT)

    def prefetch(self, runs: Iterable[RunData]) -> None:
        todo = {r.run_id: r for r in runs if r.run_id not in self._cache}
        if not todo:
            return
        with ThreadPoolExecutor(max_workers=min(self._workers, len(todo))) as pool:
            for run_id, found in zip(todo, pool.map(self._load, todo.values()), strict=True):
                self._cache[run_id] = found
        self.downloads += len(todo)

    def get(self, run: RunData) -> Any | None:
        if run.run_id not in self._cache:
            self.downloads += 1
            self._cache[run.run_id] = self._load(run)
        return self._cache[run.run_id]


__all__ = ["FeatureWeights", "RegistryVersion", "fetch_runs", "read_registry"]
