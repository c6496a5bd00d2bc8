"""The A/B report: champion and challenger judged on the outcomes of what each one served.

The arms are the logged predictions (`viralab.monitor.live`) the champion answered as
champion and the challenger answered as challenger, each joined to the first outcome of its
video that came after it. The hash split gives each video to one arm, so the arms are
independent samples of videos: the difference of the two MAEs (challenger - champion; below 0
= challenger better) gets a Welch t interval (unequal variances, scipy). Verdict:

- "not enough data yet" while an arm has fewer than `min_per_arm` outcomes, or while the
  interval still contains 0; with an estimate of how many more outcomes (both arms together,
  split as now) would make the interval exclude 0 if the difference and spreads stay as
  observed (none when the observed difference is 0);
- "challenger better" when the whole interval is below 0, "challenger worse" above 0.

The report is logged as a run in the `retraining` experiment (`retrain.experiment`) and
written into the challenger version's description (an A/B block; the evidence stays).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from viralab.monitor.live import mean_interval
from viralab.tracking import tracked_run
from viralab.tracking.log import log_dict, log_metrics
from viralab.tracking.tags import (
    AB_CHALLENGER_VERSION,
    AB_CHAMPION_VERSION,
    AB_VERDICT,
    RETRAIN_KIND,
    RETRAIN_MODEL,
)

BETTER = "challenger better"
WORSE = "challenger worse"
UNSETTLED = "not enough data yet"
DEFAULT_MIN_PER_ARM = 30


@dataclass(frozen=True)
class Arm:
    version: int | None
    n: int
    n_videos: int
    mae: float | None
    low: float | None
    high: float | None
    sd: float | None


@dataclass(frozen=True)
class AbReport:
    model: str
    champion: Arm
    challenger: Arm
    difference: float | None  # challenger MAE - champion MAE
    low: float | None
    high: float | None
    confidence: float
    verdict: str
    more_needed: int | None  # more outcomes (both arms) that would settle it, if estimable
    note: str
    since: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["since"] = None if self.since is None else self.since.isoformat()
        return out

    def metrics(self) -> dict[str, float]:
        values = {
            "ab.champion.n": self.champion.n,
            "ab.challenger.n": self.challenger.n,
            "ab.champion.mae": self.champion.mae,
            "ab.challenger.mae": self.challenger.mae,
            "ab.difference": self.difference,
            "ab.difference.low": self.low,
            "ab.difference.high": self.high,
            "ab.more_needed": self.more_needed,
        }
        return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}

    def line(self) -> str:
        """The verdict in one line."""
        if self.difference is None:
            figures = f"n {self.champion.n} champion / {self.challenger.n} challenger outcomes"
        else:
            figures = (
                f"MAE challenger v{self.challenger.version} {self.challenger.mae:.4f} vs "
                f"champion v{self.champion.version} {self.champion.mae:.4f}, difference "
                f"{self.difference:+.4f} [{_fmt(self.low)}, {_fmt(self.high)}] "
                f"({self.confidence:.0%}), n {self.challenger.n} / {self.champion.n}"
            )
        return f"{self.verdict}: {figures}"

    def markdown(self) -> str:
        """The A/B block for the challenger's version page (kept short: descriptions are
        limited to 5,000 characters)."""
        when = (
            "all logged predictions"
            if self.since is None
            else f"since {self.since:%Y-%m-%d %H:%M} UTC"
        )
        rows = [
            "### A/B against the champion (live outcomes)",
            "",
            f"**{self.verdict}**. {self.note}",
            "",
            "| arm | version | outcomes | videos | MAE | interval |",
            "|---|---|---|---|---|---|",
        ]
        for label, arm in (("challenger", self.challenger), ("champion", self.champion)):
            rows.append(
                f"| {label} | {arm.version if arm.version is not None else '-'} | {arm.n} | "
                f"{arm.n_videos} | {_fmt(arm.mae)} | [{_fmt(arm.low)}, {_fmt(arm.high)}] |"
            )
        if self.difference is not None:
            rows += [
                "",
                f"Difference (challenger - champion): {self.difference:+.4f}, "
                f"{self.confidence:.0%} interval [{_fmt(self.low)}, {_fmt(self.high)}] "
                "(Welch t, unpaired: each video sees one arm).",
            ]
        rows += ["", f"Window: {when}; by `viralab monitor ab {self.model}`."]
        return "\n".join(rows)


def _fmt(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _arm(errors: np.ndarray, videos: pd.Series, version: int | None, confidence: float) -> Arm:
    mae, low, high = mean_interval(errors, confidence)
    sd = float(np.std(errors, ddof=1)) if len(errors) > 1 else None
    return Arm(
        version=version,
        n=len(errors),
        n_videos=int(videos.nunique()),
        mae=None if len(errors) == 0 else float(mae),  # type: ignore[arg-type]
        low=low,
        high=high,
        sd=sd,
    )


def welch_interval(
    a: np.ndarray, b: np.ndarray, confidence: float
) -> tuple[float, float, float, float]:
    """mean(a) - mean(b), its Welch t interval (low, high) and standard error."""
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    se = math.sqrt(va + vb)
    diff = float(np.mean(a) - np.mean(b))
    if se == 0:
        return diff, diff, diff, 0.0
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    return diff, diff - half, diff + half, se


def more_outcomes_needed(
    diff: float, sd_a: float, sd_b: float, n_a: int, n_b: int, confidence: float
) -> int | None:
    """More outcomes (both arms, in the current proportion) for the interval of a difference
    `diff` with these spreads to exclude 0; None when `diff` is 0 (no sample size settles a
    difference that is not there)."""
    if diff == 0 or not math.isfinite(diff):
        return None
    total = n_a + n_b
    share = n_a / total if total else 0.5
    share = min(max(share, 0.01), 0.99)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    needed = z**2 * (sd_a**2 / share + sd_b**2 / (1 - share)) / diff**2
    return max(0, math.ceil(needed) - total)


def ab_report(
    joined: pd.DataFrame,
    model: str,
    champion_version: int | None,
    challenger_version: int | None,
    *,
    confidence: float = 0.95,
    min_per_arm: int = DEFAULT_MIN_PER_ARM,
    since: datetime | None = None,
) -> AbReport:
    """Compare the arms in `joined` (`viralab.monitor.live.outcomes`)."""
    if joined.empty:
        joined = pd.DataFrame(columns=["version", "marker", "video_id", "prediction", "outcome"])
    errors = (joined["prediction"].astype(float) - joined["outcome"].astype(float)).abs()
    version = joined["version"].astype("Int64")

    def pick(marker: str, number: int | None) -> tuple[np.ndarray, pd.Series]:
        if number is None:
            mask = pd.Series(False, index=joined.index)
        else:
            mask = (joined["marker"] == marker) & (version == number).fillna(False)
        mask = mask.astype(bool)
        return errors[mask].to_numpy(dtype=float), joined.loc[mask, "video_id"]

    champ = _arm(*pick("champion", champion_version), champion_version, confidence)
    chal_errors, chal_videos = pick("challenger", challenger_version)
    chal = _arm(chal_errors, chal_videos, challenger_version, confidence)
    champ_errors = pick("champion", champion_version)[0]

    diff = low = high = None
    more: int | None = None
    if chal.n >= 2 and champ.n >= 2:
        diff, low, high, _ = welch_interval(chal_errors, champ_errors, confidence)
        more = more_outcomes_needed(
            diff, chal.sd or 0.0, champ.sd or 0.0, chal.n, champ.n, confidence
        )
    if challenger_version is None:
        verdict, note = UNSETTLED, f"{model} has no challenger: nothing to compare."
    elif min(chal.n, champ.n) < min_per_arm:
        verdict = UNSETTLED
        short = max(0, min_per_arm - chal.n) + max(0, min_per_arm - champ.n)
        more = max(more or 0, short)
        note = (
            f"An arm has fewer than {min_per_arm} outcomes (challenger {chal.n}, champion "
            f"{champ.n}); about {more} more outcomes would settle it."
        )
    elif low is not None and high is not None and high < 0:
        verdict, more = BETTER, 0
        note = "The whole interval of the difference is below 0: the challenger errs less."
    elif low is not None and low > 0:
        verdict, more = WORSE, 0
        note = "The whole interval of the difference is above 0: the challenger errs more."
    else:
        verdict = UNSETTLED
        note = (
            f"The interval of the difference contains 0; about {more} more outcomes would "
            "settle it if the difference stays as observed."
            if more is not None
            else "The interval contains 0 and the observed difference is 0: no number of "
            "outcomes is expected to separate them."
        )
    return AbReport(
        model=model,
        champion=champ,
        challenger=chal,
        difference=diff,
        low=low,
        high=high,
        confidence=confidence,
        verdict=verdict,
        more_needed=more,
        note=note,
        since=since,
    )


def log_ab_run(report: AbReport, experiment: str) -> str:
    """An `ab-<model>-<timestamp>` run in `experiment` (the retraining one) holding the
    report (metrics, verdict tags, `ab_report.json`); returns its id."""
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%d-%H%M%S")
    tags = {
        RETRAIN_KIND: "ab",
        RETRAIN_MODEL: report.model,
        AB_VERDICT: report.verdict,
        AB_CHAMPION_VERSION: str(report.champion.version),
        AB_CHALLENGER_VERSION: str(report.challenger.version),
    }
    with tracked_run(
        experiment=experiment, run_name=f"ab-{report.model}-{stamp}", tags=tags
    ) as run:
        log_metrics(report.metrics())
        log_dict(report.as_dict(), "ab_report.json")
        return run.info.run_id
