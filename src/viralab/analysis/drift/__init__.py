"""Feature drift as the population stability index (PSI): the training-time reference and
the pure PSI (`binning`), the check against it (`check`), the MLflow report (`report`)."""

from viralab.analysis.drift.binning import (
    MEASURE,
    MEASURE_NAME,
    bin_edges,
    bin_proportions,
    build_reference,
    coarsen,
    psi,
    shift_p_value,
)
from viralab.analysis.drift.check import DriftReport, DriftSettings, FeatureDrift, compare
from viralab.analysis.drift.report import log_report

__all__ = [
    "MEASURE",
    "MEASURE_NAME",
    "DriftReport",
    "DriftSettings",
    "FeatureDrift",
    "bin_edges",
    "bin_proportions",
    "build_reference",
    "coarsen",
    "compare",
    "log_report",
    "psi",
    "shift_p_value",
]
