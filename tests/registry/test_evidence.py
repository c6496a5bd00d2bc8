"""Evidence on the version page: the description a reviewer reads and the gate tags."""

from __future__ import annotations

from mlflow import MlflowClient

from tests.registry.kit import GOOD_PREFERENCE, RegistryKit
from viralab.promotion.evidence import write_version_evidence
from viralab.registry.comparison import judge_comparison, paired_bootstrap
from viralab.registry.gate_set import freeze_gate_set
from viralab.registry.gates import GateReport, GateResult, GateSetSettings
from viralab.registry.markers import RegistrySettings


def comparison_result() -> GateResult:
    champion = [0.04, 0.05, 0.03, 0.06] * 10
    candidate = [e * 1.3 for e in champion]
    comparison = paired_bootstrap(candidate, champion)
    return judge_comparison(
        comparison, 0.02, candidate="version 2", champion="champion version 1", basis="gate set g"
    )


def test_description_shows_metrics_gates_comparison_and_digests(
    kit: RegistryKit, settings: RegistrySettings
):
    gate, _ = freeze_gate_set(
        "preference", "ratings", ["r1", "r2"], GateSetSettings(), by="ann", reason="t"
    )
    version = kit.quick_version(
        "preference",
        GOOD_PREFERENCE,
        run_tags={"viralab.gate_set.digest": gate.digest},
        version_tags={"viralab.gate.retired_gate": "pass", "viralab.model": "ridge"},
    )
    result = comparison_result()
    report = GateReport(
        (
            GateResult("mae < 0.15", True, "mae = 0.11", figure=0.11, threshold=0.15),
            result,
        ),
        ("a note for the reviewer",),
    )
    client = MlflowClient()
    text = write_version_evidence(client, "preference", version.version, report, settings)

    stored = client.get_model_version("preference", version.version)
    assert stored.description == text
    assert text.startswith(f"### preference version {version.version}: 1 gate(s) FAIL")
    assert "| mae | 0.11 |" in text and "| r2 | 0.72 |" in text
    assert "| mae < 0.15 | 0.11 | 0.15 | **pass** |" in text
    low, high = result.interval
    assert "| champion | 0.045 |" in text
    assert "| this version | 0.0585 |" in text
    assert f"| difference | {result.figure:+.4g} [{low:+.4g}, {high:+.4g}] |" in text
    assert "| n | 40 |" in text
    assert f"gate set: `{gate.digest}`; held out by this version's training: `{gate.digest}`" in (
        text
    )
    assert f"run `{version.run_id}`" in text
    assert "- note: a note for the reviewer" in text
    tags = stored.tags
    assert tags["viralab.gate.mae_lt_0.15"] == "pass"
    assert tags["viralab.gate.not_worse_than_champion"] == "fail"
    assert tags["viralab.evidence.gate_set"] == gate.digest
    assert "viralab.gate.retired_gate" not in tags  # stale verdicts do not linger
    assert tags["viralab.model"] == "ridge"  # other tags are left alone


def test_default_report_checks_the_configured_gates(kit: RegistryKit, settings: RegistrySettings):
    version = kit.quick_version("preference", {**GOOD_PREFERENCE, "r2": 0.41})
    client = MlflowClient()
    text = write_version_evidence(client, "preference", int(version.version), None, settings)
    assert "1 gate(s) FAIL" in text
    assert "| r2 > 0.6 | 0.41 | 0.6 | **FAIL** |" in text
    assert "No comparison with a champion" in text
    assert "no current champion: nothing to compare with" in text
    assert "gate set: `none frozen`" in text and "training data digest: `not logged`" in text
    tags = MlflowClient().get_model_version("preference", version.version).tags
    assert tags["viralab.gate.r2_gt_0.6"] == "fail"
