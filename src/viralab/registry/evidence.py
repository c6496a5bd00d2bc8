"""Evidence on the version page: what a reviewer needs to judge a version in the MLflow UI.

Placeholder of the reg-server branch (the reg-gates branch ships the full version: gate-set
comparison with its interval, data digest, run link); same signature, so callers do not change.
"""

from __future__ import annotations

from typing import Any

from mlflow import MlflowClient

from viralab.registry.client import registry_errors, run_data

TAG_PREFIX = "viralab.gate."


def write_version_evidence(
    client: MlflowClient,
    model: str,
    version: str | int,
    report: Any = None,
    settings: Any = None,
) -> str:
    """Write the version's description (a markdown metrics table) and `viralab.gate.<name>`
    tags from `report`; returns the description."""
    number = str(version)
    with registry_errors(f"reading {model} version {number}"):
        mv = client.get_model_version(model, number)
    run = run_data(client, mv.run_id)
    lines = [f"### Evidence for {model} version {number}", "", "| metric | value |", "|---|---|"]
    for key, value in sorted((run.metrics if run else {}).items()):
        lines.append(f"| {key} | {value:.6g} |")
    if report is not None:
        lines += ["", "| gate | verdict | figures |", "|---|---|---|"]
        for result in report.results:
            verdict = "pass" if result.passed else "FAIL"
            lines.append(f"| {result.gate} | {verdict} | {result.detail} |")
    text = "\n".join(lines)
    with registry_errors(f"writing the evidence of {model} version {number}"):
        client.update_model_version(model, number, description=text[:5000])
        for result in getattr(report, "results", ()):
            key = TAG_PREFIX + "".join(c if c.isalnum() or c in "._-" else "_" for c in result.gate)
            client.set_model_version_tag(
                model, number, key[:250], "pass" if result.passed else "fail"
            )
    return text
