"""Evidence on the version page: what a reviewer needs to judge a version, where they look.

The MLflow UI renders a version's description as markdown. `write_version_evidence` puts
there the version's metrics, each gate with its figure, threshold and verdict, the comparison
with the current champion on the frozen gate set (both MAEs or MASEs, the difference with its
interval, n), the training data's digest, the gate set's digest and the run; and one version
tag per gate (`viralab.gate.<gate>=pass|fail`) so the registry can be searched by verdict.
Called when a version is registered and after every marker move. The A/B report of
`viralab monitor ab` (`write_ab_section`) is a block of its own at the end of the description,
between HTML comments: it replaces only its previous block, and evidence rewritten later
keeps it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from viralab.config import compose
from viralab.errors import ViralabError
from viralab.promotion.evaluation import compare_with_champion
from viralab.registry.client import mlflow_client, registry_errors, run_data, set_version_tags
from viralab.registry.comparison import GATE
from viralab.registry.gate_set import current_gate_set
from viralab.registry.gates import GateReport, GateResult, check_metrics
from viralab.registry.markers import RegistrySettings, holder
from viralab.tracking import flush_held
from viralab.tracking.tags import EVIDENCE_GATE_SET, GATE_CONTEXT, GATE_PREFIX, GATE_SET_DIGEST

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

log = logging.getLogger(__name__)

#: Metrics shown first when the run logged them (then the ones the gates read).
HEADLINE_METRICS = (
    "mae", "rmse", "r2", "cv_mae", "baseline_mae", "mase", "relative_mae", "mae_scaled",
    "mse_scaled", "best_baseline_mae", "training_video_count", "gate_set_held_back",
)  # fmt: skip
DESCRIPTION_LIMIT = 4900  # MLflow keeps up to 5000 characters of a version description


def evidence_report(
    client: MlflowClient,
    settings: RegistrySettings,
    version: ModelVersion,
    *,
    data_cfg: Any = None,
) -> GateReport:
    """The gates a promotion to champion would check: thresholds, baseline, and the
    comparison with the current champion (when there is one and it is another version).
    `data_cfg`: where the gate rows come from (default: the project config's `data`)."""
    run = run_data(client, version.run_id)
    metrics, tags = (run.metrics, run.tags) if run else ({}, {})
    report = check_metrics(metrics, tags, settings.gate_spec(version.name))
    comparison = settings.champion_comparison
    if not comparison.enabled:
        return report
    champion = holder(client, settings, version.name, "champion")
    if champion is None:
        return report.extend([], ["no current champion: nothing to compare with"])
    if str(champion.version) == str(version.version):
        return report.extend([], [f"version {version.version} is the champion"])
    result, notes = compare_with_champion(client, version, champion, comparison, data_cfg=data_cfg)
    return report.extend([result], notes)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def _gate_rows(report: GateReport) -> list[str]:
    lines = ["| gate | figure | threshold | result |", "|---|---|---|---|"]
    for r in report.results:
        figure = _fmt(r.figure) if r.figure is not None else r.detail.replace("|", "/")
        verdict = "**pass**" if r.passed else "**FAIL**"
        lines.append(f"| {r.gate} | {figure} | {_fmt(r.threshold)} | {verdict} |")
    return lines


def _comparison_lines(result: GateResult | None) -> list[str]:
    if result is None:
        return ["No comparison with a champion (see notes)."]
    if result.interval is None:
        return [f"{'Pass' if result.passed else 'FAIL'}: {result.detail}"]
    low, high = result.interval
    champion = result.reference or 0.0
    metric = result.metric or "error"
    return [
        f"| | {metric} |",
        "|---|---|",
        f"| this version | {_fmt(champion + (result.figure or 0.0))} |",
        f"| champion | {_fmt(champion)} |",
        f"| difference | {result.figure:+.4g} [{low:+.4g}, {high:+.4g}] |",
        f"| allowed (tolerance) | <= {result.threshold:+.4g} |",
        f"| n | {result.n} |",
        "",
        f"{'Pass' if result.passed else '**FAIL**'}: {result.detail}",
    ]


def evidence_markdown(
    version: ModelVersion,
    metrics: Mapping[str, float],
    report: GateReport,
    *,
    data_digest: str | None,
    gate_digest: str | None,
    held_out: str | None,
    run_link: str,
    gated: Sequence[str] = (),
) -> str:
    """The description text (markdown) for one version; `gated`: metrics the gates read."""
    shown = [m for m in HEADLINE_METRICS if m in metrics]
    shown += sorted({m for m in gated if m in metrics and m not in shown})
    verdict = "all gates pass" if report.passed else f"{len(report.failures)} gate(s) FAIL"
    lines = [
        f"### {version.name} version {version.version}: {verdict}",
        "",
        "**Metrics** (its own test split)",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {m} | {metrics[m]:.4g} |" for m in shown],
        "",
        "**Gates**",
        "",
        *_gate_rows(report),
        "",
        "**Against the current champion, on the frozen gate set**",
        "",
        *_comparison_lines(next((r for r in report.results if r.gate == GATE), None)),
        "",
        f"- training data digest: `{data_digest or 'not logged'}`",
        f"- gate set: `{gate_digest or 'none frozen'}`; held out by this version's training: "
        f"`{held_out or 'not recorded'}`",
        f"- run: {run_link}",
        f"- evidence written {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC",
    ]
    lines += [f"- note: {n}" for n in report.notes]
    text = "\n".join(lines)
    return text if len(text) <= DESCRIPTION_LIMIT else text[: DESCRIPTION_LIMIT - 3] + "..."


def _data_digest(client: MlflowClient, run_id: str | None) -> str | None:
    if not run_id:
        return None
    try:
        inputs = client.get_run(run_id).inputs.dataset_inputs or []
    except Exception:  # a deleted run: the page says "not logged"
        return None
    for item in inputs:
        contexts = {t.value for t in item.tags if t.key == "mlflow.data.context"}
        if GATE_CONTEXT not in contexts:
            return item.dataset.digest
    return None


def _run_link(client: MlflowClient, run_id: str | None) -> str:
    if not run_id:
        return "no run"
    try:
        experiment = client.get_run(run_id).info.experiment_id
    except Exception:
        return f"run `{run_id}`"
    return f"[run `{run_id}`](#/experiments/{experiment}/runs/{run_id})"


def write_version_evidence(
    client: MlflowClient,
    model: str,
    version: str | int,
    report: GateReport | None = None,
    settings: RegistrySettings | None = None,
) -> str:
    """Write the version's description and `viralab.gate.*` tags; returns the markdown.

    `report` defaults to the gates a promotion to champion would check now; `settings` to
    the project's `conf/registry/`. Gate tags from an earlier evidence that no longer apply
    are removed.

    Raises:
        RegistryError: the version does not exist or the registry cannot be written.
    """
    if settings is None:
        settings = _project_settings()
    with registry_errors(f"reading {model} version {version}"):
        mv = client.get_model_version(model, str(version))
    if report is None:
        report = evidence_report(client, settings, mv)
    run = run_data(client, mv.run_id)
    try:
        gate = current_gate_set(model, settings.champion_comparison.gate_set)
    except ViralabError:
        gate = None
    text = evidence_markdown(
        mv,
        run.metrics if run else {},
        report,
        data_digest=_data_digest(client, mv.run_id),
        gate_digest=gate.digest if gate else None,
        held_out=(run.tags if run else {}).get(GATE_SET_DIGEST),
        run_link=_run_link(client, mv.run_id),
        gated=[t.metric for t in settings.gate_spec(model).thresholds],
    )
    text = with_ab_section(text, ab_section(mv.description))  # the A/B report outlives it
    tags = {f"{GATE_PREFIX}{r.key}": "pass" if r.passed else "fail" for r in report.results}
    if gate is not None:
        tags[EVIDENCE_GATE_SET] = gate.digest
    with registry_errors(f"writing the evidence of {model} version {version}"):
        client.update_model_version(model, str(version), description=text)
        for key in (mv.tags or {}).keys() - tags.keys():
            if key.startswith(GATE_PREFIX):
                client.delete_model_version_tag(model, str(version), key)
        set_version_tags(client, model, str(version), tags)  # one registry read, not one per tag
    return text


AB_START = "<!-- viralab:ab -->"
AB_END = "<!-- /viralab:ab -->"


def ab_section(description: str | None) -> str | None:
    """The A/B block of a description (between the markers, markers included), or None."""
    text = description or ""
    start = text.find(AB_START)
    end = text.find(AB_END, start)
    if start < 0 or end < 0:
        return None
    return text[start : end + len(AB_END)]


def with_ab_section(description: str | None, block: str | None) -> str:
    """`description` with its A/B block replaced by `block` (appended when it had none;
    removed when `block` is None); everything else is kept as it was."""
    text = description or ""
    old = ab_section(text)
    if old is not None:
        text = text.replace(old, "").rstrip()
    if block:
        room = DESCRIPTION_LIMIT - len(block) - 2
        text = (text[:room].rstrip() + "\n\n" if text else "") + block
    return text


def write_ab_section(client: MlflowClient, model: str, version: str | int, markdown: str) -> str:
    """Put `markdown` (the A/B report) on the version page, replacing an earlier A/B report
    and keeping the evidence; returns the new description.

    Raises:
        RegistryError: the version does not exist or the registry cannot be written.
    """
    block = f"{AB_START}\n{markdown.strip()}\n{AB_END}"
    with registry_errors(f"reading {model} version {version}"):
        mv = client.get_model_version(model, str(version))
    text = with_ab_section(mv.description, block)
    with registry_errors(f"writing the A/B report of {model} version {version}"):
        client.update_model_version(model, str(version), description=text)
    return text


def _project_settings() -> RegistrySettings:

    return RegistrySettings.from_config(compose().registry)


def write_registration_evidence(cfg: Any, model: str, version: str | int) -> None:
    """Right after training registered `version` (inside its run, after the family logged
    the gate set it held out): write the version's evidence. Evidence that cannot be written
    is a warning: the version is registered either way, and a promotion re-checks the gates.
    `viralab.training` hands this to the families (they sit below promotion)."""

    flush_held()  # the evidence reads the run's metrics and gate-set tags back from the store
    try:
        settings = RegistrySettings.from_config(cfg.registry)
        client = mlflow_client()
        with registry_errors(f"reading {model} version {version}"):
            mv = client.get_model_version(model, str(version))
        report = evidence_report(client, settings, mv, data_cfg=cfg.get("data"))
        write_version_evidence(client, model, version, report=report, settings=settings)
    except ViralabError as exc:
        log.warning("Evidence for %s version %s not written: %s", model, version, exc)
