"""Schemas of the `features` group (`conf/features/*.yaml`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SequenceFeatures:
    """`conf/features/sequence.yaml`: the forecasters' windows."""

    sequence_length: int = 20
    time_features: bool = False
    frequency: str = "1min"
    max_gap_steps: int = 5


@dataclass
class ExpectedCorrelations:
    """Flattened feature names whose correlation sign the analysis checks (spec 000 §4.2)."""

    strong_positive: list[str] = field(
        default_factory=lambda: [
            "script.replicability.score",
            "script.humor.comedyTiming",
            "standalone.worksWithoutContext",
            "comedyStyle.contrastMechanism.present",
            "flexibility.swappableCore",
            "script.structure.payoffStrength",
        ]
    )
    strong_negative: list[str] = field(
        default_factory=lambda: [
            "trends.memeDependent",
            "trends.usesPremadeSound",
            "casting.actingSkillRequired",
            "production.shotComplexity",
            "audio.soundEffects_count",
            "flexibility.industryLock",
            "casting.attractivenessDependency",
        ]
    )


@dataclass
class TabularFeatures:
    """`conf/features/tabular.yaml`: the preference model's extraction, encoding, selection."""

    min_feature_count: int = 100
    require_version_key: str = "comedyStyle"
    rater_type: str = "owner"
    scaling: str = "min-max"
    min_coverage: float = 0.5
    max_categories: int = 20
    missing: str = "constant"
    missing_value: float = 0.0
    select_k: int | None = 50
    min_abs_corr: float | None = None
    top_correlations: int = 20
    expected_correlations: ExpectedCorrelations = field(default_factory=ExpectedCorrelations)


#: `conf/features/<name>.yaml` -> schema.
FEATURES_SCHEMAS: dict[str, type] = {
    "sequence": SequenceFeatures,
    "tabular": TabularFeatures,
}
