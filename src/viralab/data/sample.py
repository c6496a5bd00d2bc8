"""Bundled, deterministic sample data for both model families.

viralab must train, sweep and serve out of the box, with no database and no network: this
module generates the embedded default data from a seed instead of shipping data files.

- :func:`generate_ratings` gives owner ratings of short videos in the export format of the
  preference-model spec (``video_ratings`` joined with ``analyzed_videos``): each record holds
  a nested v3 ``visual_analysis`` of 150+ leaf features of every kind the feature pipeline
  must handle (numbers, booleans, categoricals, string and numeric arrays, free text, optional
  and low-coverage keys, an explicit ``null``), plus the records the extraction has to drop
  (ratings by ``team``/``guest`` raters and ratings of older ``v2`` analyses).  The owner's
  ``overall_score`` is a hidden, mostly linear function of the features the spec expects to
  matter (its section 4.2), so a correct pipeline can learn it and a broken one cannot.
- :func:`generate_stats` gives ``video_stats_processed`` rows for the stats forecaster:
  minute-level cumulative views, likes and comments of freshly uploaded videos with decaying
  growth, a daily cycle and count noise; :func:`add_growth_rates` derives the growth-rate
  columns from the counts and is shared with the loaders of raw counts.

Everything is drawn from one ``numpy.random.default_rng(seed)`` and all timestamps derive
from fixed starting points, so the same seed always gives identical data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_STATS_VIDEOS",
    "EXPECTED_CORRELATIONS",
    "add_growth_rates",
    "generate_ratings",
    "generate_stats",
]

#: The spec's expected correlations with ``overall_score`` (preference spec, section 4.2), as
#: dotted paths of the flattened analysis.  The sample's hidden score honours every sign.
EXPECTED_CORRELATIONS: dict[str, tuple[str, ...]] = {
    "strongPositive": (
        "script.replicability.score",
        "script.humor.comedyTiming",
        "standalone.worksWithoutContext",
        "comedyStyle.contrastMechanism.present",
        "flexibility.swappableCore",
        "script.structure.payoffStrength",
    ),
    "strongNegative": (
        "trends.memeDependent",
        "trends.usesPremadeSound",
        "casting.actingSkillRequired",
        "production.shotComplexity",
        "audio.soundEffects_count",
        "flexibility.industryLock",
        "casting.attractivenessDependency",
    ),
}

#: The spec's three videos and their row counts (stats spec, "Data Distribution by Video").
DEFAULT_STATS_VIDEOS: dict[str, int] = {
    "7tbWmYUZLX4": 2880,
    "B6W-BDBL5s": 2420,
    "bu39oUbbHxc": 2408,
}

_STATS_COLUMNS = [
    "timestamp",
    "video_id",
    "view_count",
    "like_count",
    "comment_count",
    "views_growth_rate",
    "likes_growth_rate",
    "comments_growth_rate",
]
_GROWTH_COLUMNS = {
    "view_count": "views_growth_rate",
    "like_count": "likes_growth_rate",
    "comment_count": "comments_growth_rate",
}

# --------------------------------------------------------------------------------------------
# Ratings: the feature schema of a v3 analysis
# --------------------------------------------------------------------------------------------

# Hidden traits of a video; every feature leans on some of them, so features correlate the way
# real analyses do (a simple video is easy to replicate AND cheap to shoot).
_LATENTS = ("craft", "simplicity", "trendiness", "production", "niche", "energy")

_RATINGS_START = datetime(2025, 9, 1, 8, 0, tzinfo=UTC)
_NON_OWNER_SHARE = 0.10
_V2_SHARE = 0.08


@dataclass(frozen=True)
class _Feature:
    """One leaf of the analysis document and how to draw it.

    ``kind`` is one of score (int 1-10), ratio (float 0-1), range (float lo-hi), count (int),
    bool, cat (one of ``choices``), array (strings from ``choices``) or text (``make_text``).
    ``loadings`` tie it to the hidden traits; ``coverage`` < 1 leaves it out of that share of
    documents; ``when`` keeps it only where that boolean feature is true; ``null_rate`` writes
    an explicit ``null`` instead of a value.
    """

    path: str
    kind: str
    loadings: dict[str, float] = field(default_factory=dict)
    center: float = 0.5
    lo: float = 0.0
    hi: float = 1.0
    choices: tuple[str, ...] = ()
    weights: tuple[float, ...] = ()
    coverage: float = 1.0
    when: str | None = None
    null_rate: float = 0.0
    make_text: Callable[[np.random.Generator, int], list[str]] | None = None


def _score(path: str, center: float = 5.5, **loadings: float) -> _Feature:
    return _Feature(path, "score", loadings, center=center)


def _ratio(path: str, center: float = 0.5, **loadings: float) -> _Feature:
    return _Feature(path, "ratio", loadings, center=center)


def _range(path: str, lo: float, hi: float, null_rate: float = 0.0, **loadings: float) -> _Feature:
    return _Feature(path, "range", loadings, lo=lo, hi=hi, null_rate=null_rate)


def _count(path: str, mean: float, **loadings: float) -> _Feature:
    return _Feature(path, "count", loadings, center=mean)


def _bool(path: str, p: float = 0.5, **loadings: float) -> _Feature:
    return _Feature(path, "bool", loadings, center=p)


def _cat(
    path: str,
    choices: Sequence[str],
    weights: Sequence[float] = (),
    coverage: float = 1.0,
    when: str | None = None,
) -> _Feature:
    return _Feature(
        path,
        "cat",
        choices=tuple(choices),
        weights=tuple(weights),
        coverage=coverage,
        when=when,
    )


def _array(
    path: str, choices: Sequence[str], mean: float, coverage: float = 1.0, **loadings: float
) -> _Feature:
    return _Feature(path, "array", loadings, center=mean, choices=tuple(choices), coverage=coverage)


def _text(
    path: str, make: Callable[[np.random.Generator, int], list[str]], coverage: float = 1.0
) -> _Feature:
    return _Feature(path, "text", make_text=make, coverage=coverage)


def _phrases(
    *parts: Sequence[str], sep: str = " "
) -> Callable[[np.random.Generator, int], list[str]]:
    """A free-text maker that joins one random pick from each part."""

    def make(rng: np.random.Generator, n: int) -> list[str]:
        picks = [rng.integers(0, len(part), size=n) for part in parts]
        return [
            sep.join(part[int(idx[i])] for part, idx in zip(parts, picks, strict=True))
            for i in range(n)
        ]

    return make


def _handles(rng: np.random.Generator, n: int) -> list[str]:
    names = ("dailyskits", "officehumor", "momlife", "thechefsays", "gymtok", "deskjokes")
    picks = rng.integers(0, len(names), size=n)
    numbers = rng.integers(10, 1000, size=n)
    return [f"@{names[int(p)]}{int(k)}" for p, k in zip(picks, numbers, strict=True)]


def _v(words: str) -> tuple[str, ...]:
    """A vocabulary written as ``"a|b|c"``."""
    return tuple(words.split("|"))


_SUBJECTS = _v(
    "A barista|An office worker|A dad|A cat owner|Two roommates|A teacher|A gym regular|A chef"
    "|A delivery driver|A grandma|A startup founder|A dentist"
)
_ACTIONS = _v(
    "tries to explain|reacts to|pretends to ignore|overthinks|narrates|gets caught rehearsing"
    "|negotiates over|secretly judges"
)
_OBJECTS = _v(
    "a Monday meeting|the group chat|a broken coffee machine|their first paycheck"
    "|a surprise inspection|the new intern|a viral recipe|a wrong order"
)
_TWISTS = _v(
    "until the boss walks in.|and it backfires.|with a deadpan stare.|in slow motion."
    "|while the camera keeps rolling.|and nobody notices.|then flips the script."
    "|in three escalating steps."
)
_OPENING_LINE = _phrases(
    _v("POV:|Nobody talks about|When|Me explaining|The moment|Tell me why"),
    _v("your manager|the customer|my mom|the intern|your best friend|HR"),
    _v("finds the spreadsheet|says 'quick call'|sees the bill|asks for a favor|hears the news"
       "|opens the fridge"),
)  # fmt: skip
_REPLICATION_NOTE = _phrases(
    _v("Needs|Only needs|Works best with|Requires"),
    _v("a second person|a phone on a tripod|an office background|one prop|good timing"
       "|a costume change|a quiet room|a pet"),
    _v("- easy swap.|- hard to fake.|- shoot in one take.|- 10 min setup.|- needs rehearsal."
       "|- any location works."),
)  # fmt: skip
_SCENE = _phrases(
    _v("A bright|A cluttered|A tidy|A dim|A sunny|A cramped"),
    _v("office|kitchen|living room|car|break room|shop counter"),
    _v("with a laptop open,|with a ring light,|with coffee mugs everywhere,"
       "|with a plant in the corner,|with a whiteboard,|with boxes stacked,"),
    _v("shot vertically.|filmed handheld.|in warm light.|from a low angle."),
)  # fmt: skip

# The leaves of a v3 analysis, section by section (one line each, so: no formatter here).
# fmt: off
_V3_FEATURES: tuple[_Feature, ...] = (
    # hook
    _cat("hook.type", _v("question|visual_shock|bold_claim|relatable_situation"
                         "|pattern_interrupt|direct_address"), (3, 3, 3, 5, 3, 3)),
    _score("hook.strength", craft=0.9, energy=0.3),
    _score("hook.curiosityGap", craft=0.6),
    _score("hook.clarity", simplicity=0.5, craft=0.3),
    _score("hook.visualContrast", production=0.5, energy=0.4),
    _range("hook.timeToHookSeconds", 0.2, 4.0, craft=-0.6),
    _bool("hook.usesText", 0.6, trendiness=0.4),
    _bool("hook.usesFace", 0.7, simplicity=0.3),
    _bool("hook.usesMotion", 0.5, energy=0.8),
    _bool("hook.hasQuestion", 0.3),
    _count("hook.spokenWordCount", 8, energy=0.3),
    _ratio("hook.firstFrameBrightness", 0.55, production=0.3),
    _array("hook.elements", _v("Face|Text Overlay|Motion|Sound Cue|Prop|Question"), 2.0),
    _text("hook.openingLine", _OPENING_LINE, coverage=0.7),
    # script
    _text("script.summary", _phrases(_SUBJECTS, _ACTIONS, _OBJECTS, _TWISTS)),
    _score("script.replicability.score", simplicity=1.0, niche=-0.3, center=6.0),
    _array("script.replicability.requiredElements",
           _v("Person|Reaction|Prop|Text Overlay|Second Person|Location|Costume|Pet"
              "|Phone Screen|Voiceover"), 2.0, simplicity=-0.5),
    _cat("script.replicability.difficulty", _v("easy|medium|hard"), (0.45, 0.4, 0.15)),
    _count("script.replicability.timeToRecreateMinutes", 25, simplicity=-0.8, production=0.5),
    _count("script.replicability.propsNeeded", 1.5, simplicity=-0.6),
    _bool("script.replicability.locationDependent", 0.3, simplicity=-0.5, niche=0.4),
    _bool("script.replicability.needsMultiplePeople", 0.45, simplicity=-0.4),
    _text("script.replicability.notes", _REPLICATION_NOTE, coverage=0.3),
    _score("script.humor.comedyTiming", craft=1.0, center=5.8),
    _cat("script.humor.humorType",
         _v("observational|absurd|slapstick|wordplay|cringe|dark|wholesome"),
         (6, 3, 2, 2, 3, 1, 3)),
    _count("script.humor.punchlineCount", 2, craft=0.3),
    _score("script.humor.surpriseFactor", craft=0.6),
    _score("script.humor.relatability", simplicity=0.4, niche=-0.5),
    _score("script.humor.rewatchValue", craft=0.7, energy=0.3),
    _score("script.humor.subtlety", energy=-0.5),
    _bool("script.humor.usesCallback", 0.2, craft=0.4),
    _ratio("script.humor.laughDensity", 0.35, craft=0.5, energy=0.4),
    _score("script.structure.payoffStrength", craft=1.0, center=5.6),
    _cat("script.structure.format", _v("setup_punchline|escalation|list|story|reveal|loop"),
         (6, 4, 2, 3, 3, 2)),
    _range("script.structure.setupLengthSeconds", 1.0, 15.0, craft=-0.3),
    _count("script.structure.beats", 4, energy=0.4),
    _bool("script.structure.hasTwist", 0.4, craft=0.6),
    _bool("script.structure.loopable", 0.3, craft=0.3),
    _score("script.structure.pacing", energy=0.8, craft=0.3),
    _score("script.structure.clarity", simplicity=0.6),
    _cat("script.structure.endingType", _v("punchline|reaction|cliffhanger|loop|fade"),
         (8, 5, 2, 3, 2)),
    _count("script.dialogue.wordCount", 45, energy=0.3),
    _range("script.dialogue.wordsPerSecond", 0.5, 4.0, energy=0.7),
    _count("script.dialogue.speakerCount", 1.6, simplicity=-0.4),
    _bool("script.dialogue.hasVoiceover", 0.35),
    _cat("script.dialogue.language", _v("en|es|pt|de|fr"), (14, 2, 2, 1, 1), coverage=0.7),
    _bool("script.dialogue.profanity", 0.15),
    _array("script.dialogue.keyPhrases",
           _v("wait for it|plot twist|no way|be honest|every time|trust me|not again"
              "|who did this"), 1.3),
    _score("script.originality.score", craft=0.5, trendiness=-0.6),
    _ratio("script.originality.noveltyRatio", 0.5, trendiness=-0.5),
    _bool("script.originality.isRemake", 0.2, trendiness=0.6),
    _cat("script.emotion.primary",
         _v("joy|surprise|embarrassment|frustration|nostalgia|awkwardness"), (6, 4, 3, 3, 1, 3)),
    _score("script.emotion.intensity", energy=0.7),
    _range("script.emotion.valence", -1.0, 1.0),
    _cat("script.emotion.arc", _v("flat|rising|falling|rollercoaster"), (3, 4, 1, 2)),
    # standalone
    _bool("standalone.worksWithoutContext", 0.65, trendiness=-0.8, niche=-0.4, simplicity=0.3),
    _bool("standalone.requiresSeries", 0.1, niche=0.4),
    _bool("standalone.requiresCaption", 0.25, trendiness=0.3),
    _score("standalone.contextScore", trendiness=-0.6, niche=-0.4),
    _cat("standalone.audienceKnowledgeRequired", _v("none|low|medium|high"), (4, 3, 2, 1)),
    _score("standalone.crossCulturalAppeal", niche=-0.6),
    _score("standalone.insideJokeRisk", niche=0.6, trendiness=0.3),
    _count("standalone.referenceCount", 1.0, trendiness=0.6),
    # comedyStyle
    _bool("comedyStyle.contrastMechanism.present", 0.55, craft=0.8),
    _cat("comedyStyle.contrastMechanism.type",
         _v("expectation_vs_reality|status|scale|tone|time"), (8, 4, 3, 3, 2)),
    _score("comedyStyle.contrastMechanism.strength", craft=0.7),
    _cat("comedyStyle.primaryStyle",
         _v("deadpan|physical|satire|absurdist|observational|character"), (3, 3, 2, 3, 6, 3)),
    _score("comedyStyle.absurdityLevel", energy=0.3),
    _score("comedyStyle.irony", craft=0.3),
    _bool("comedyStyle.deadpan", 0.3, energy=-0.6),
    _bool("comedyStyle.physicalComedy", 0.3, energy=0.6, production=0.2),
    _bool("comedyStyle.selfDeprecating", 0.3),
    _bool("comedyStyle.satire", 0.15, niche=0.3),
    _bool("comedyStyle.misdirection", 0.35, craft=0.5),
    _bool("comedyStyle.escalation.present", 0.4, energy=0.5),
    _count("comedyStyle.escalation.steps", 2, energy=0.5),
    _array("comedyStyle.techniques",
           _v("exaggeration|understatement|callback|rule of three|misdirection|role reversal"
              "|awkward silence|breaking the fourth wall"), 1.8, craft=0.3),
    # flexibility
    _bool("flexibility.swappableCore", 0.5, simplicity=0.8, niche=-0.6),
    _bool("flexibility.industryLock", 0.3, niche=1.0),
    _score("flexibility.adaptabilityScore", simplicity=0.6, niche=-0.6),
    _count("flexibility.brandFitCount", 4, niche=-0.6),
    _bool("flexibility.templateable", 0.5, simplicity=0.6),
    _count("flexibility.variantsPossible", 3, simplicity=0.5),
    _score("flexibility.localizationEase", niche=-0.5),
    _array("flexibility.adaptableIndustries",
           _v("restaurant|retail|fitness|real estate|saas|healthcare|education|beauty"
              "|automotive|finance"), 3.0, niche=-0.7),
    _cat("flexibility.topicLock", _v("none|workplace|family|food|tech|fitness"),
         (7, 5, 3, 2, 2, 1)),
    # trends
    _bool("trends.memeDependent", 0.35, trendiness=1.0),
    _bool("trends.usesPremadeSound", 0.4, trendiness=0.9),
    _cat("trends.trendName",
         _v("corporate girlie|tell me without telling me|very demure|roman empire"
            "|brat summer|it's giving|main character energy"), when="trends.memeDependent"),
    _count("trends.trendAgeDays", 20, trendiness=-0.3),
    _cat("trends.shelfLifeEstimate", _v("days|weeks|months|evergreen"), (3, 6, 6, 5)),
    _array("trends.hashtags",
           _v("fyp|comedy|relatable|worklife|pov|skit|funny|trend|viral|office"), 3.0,
           trendiness=0.6),
    _cat("trends.platformNative", _v("tiktok|reels|shorts|any"), (8, 5, 3, 4)),
    _bool("trends.challengeParticipation", 0.15, trendiness=0.7),
    _text("trends.remixOf", _handles, coverage=0.3),
    _score("trends.trendStrength", trendiness=0.8),
    _score("trends.evergreenScore", trendiness=-0.8),
    # casting
    _score("casting.actingSkillRequired", simplicity=-0.8, production=0.3, center=5.0),
    _score("casting.attractivenessDependency", production=0.6, trendiness=0.3, center=4.5),
    _count("casting.castSize", 1.8, simplicity=-0.5),
    _cat("casting.genderMix", _v("female|male|mixed"), (8, 7, 5)),
    _cat("casting.ageRange", _v("teen|20s|30s|40s|50+"), (5, 20, 15, 6, 4), coverage=0.7),
    _bool("casting.celebrityPresent", 0.05),
    _bool("casting.petPresent", 0.1),
    _bool("casting.childPresent", 0.08),
    _bool("casting.costumeRequired", 0.2, production=0.4),
    _score("casting.charismaDependency", simplicity=-0.4),
    _score("casting.facialExpressiveness", craft=0.3, energy=0.4),
    _array("casting.roles", _v("protagonist|boss|customer|friend|parent|narrator|stranger"),
           1.5, simplicity=-0.4),
    # production (shotLengthsSeconds, a numeric array, is derived from shotCount)
    _score("production.shotComplexity", production=0.9, simplicity=-0.5, center=5.0),
    _count("production.shotCount", 6, production=0.7),
    _range("production.averageShotLengthSeconds", 0.8, 8.0, energy=-0.6),
    _cat("production.cameraMovement", _v("static|handheld|tracking|gimbal|mixed"),
         (7, 6, 2, 2, 3)),
    _cat("production.lighting", _v("natural|ring light|studio|low light"), (9, 6, 3, 2)),
    _cat("production.location", _v("office|home|kitchen|car|outdoors|store|gym"),
         (5, 5, 3, 2, 2, 2, 1)),
    _score("production.editingComplexity", production=0.9),
    _bool("production.usesGreenScreen", 0.08, production=0.6),
    _bool("production.usesTransitions", 0.45, production=0.6),
    _count("production.transitionCount", 2, production=0.7),
    _bool("production.colorGrading", 0.3, production=0.8),
    _count("production.textOverlayCount", 2, trendiness=0.4),
    _bool("production.captionsPresent", 0.7),
    _cat("production.aspectRatio", _v("9:16|1:1|16:9|4:5"), (16, 1.4, 1.6, 1)),
    _cat("production.resolution", _v("720p|1080p|4k"), (3, 14, 3)),
    _range("production.durationSeconds", 6.0, 90.0, energy=-0.4),
    _bool("production.stabilization", 0.5, production=0.5),
    _cat("production.budgetTier", _v("zero|low|medium|high"), (8, 7, 4, 1), coverage=0.7),
    _score("production.pacing", energy=0.9),
    _array("production.effects",
           _v("zoom|freeze frame|slow motion|speed ramp|split screen|jump cut|green screen"),
           1.5, production=0.7),
    # audio
    _array("audio.soundEffects",
           _v("laugh|ding|whoosh|boing|record scratch|airhorn|crickets|drum roll|pop|swoosh"),
           1.6, production=0.7, trendiness=0.3),
    _bool("audio.musicPresent", 0.7, energy=0.4, trendiness=0.3),
    _cat("audio.musicGenre", _v("pop|hip hop|lofi|electronic|classical|rock|jazz"),
         (6, 4, 3, 3, 1.6, 1.4, 1), when="audio.musicPresent"),
    _cat("audio.musicMood", _v("upbeat|tense|chill|dramatic|quirky"), (7, 3, 4, 3, 3),
         when="audio.musicPresent"),
    _score("audio.voiceClarity", production=0.4),
    _ratio("audio.backgroundNoise", 0.2, production=-0.4),
    _range("audio.loudnessLufs", -24.0, -8.0, null_rate=0.05, energy=0.4),
    _score("audio.syncImportance", energy=0.5, trendiness=0.3),
    _ratio("audio.silenceRatio", 0.15, energy=-0.6),
    _bool("audio.beatSynced", 0.25, trendiness=0.5, energy=0.4),
    _bool("audio.originalAudio", 0.55, trendiness=-0.7),
    _array("audio.instruments", _v("piano|guitar|synth|drums|strings|bass"), 2.0, coverage=0.3),
    # visual
    _array("visual.dominantColors",
           _v("white|black|beige|blue|red|green|yellow|orange|pink|gray"), 3.0),
    _ratio("visual.brightness", 0.55, production=0.3),
    _ratio("visual.saturation", 0.5, production=0.3, energy=0.2),
    _count("visual.faceCount", 1.5, simplicity=-0.3),
    _ratio("visual.faceScreenTimeRatio", 0.6, simplicity=0.3),
    _score("visual.textDensity", trendiness=0.4),
    _score("visual.clutter", production=-0.3, simplicity=-0.3),
    _cat("visual.setting",
         _v("desk|living room|kitchen|street|car interior|shop floor|meeting room"),
         (4, 4, 3, 2, 2, 2, 3)),
    _cat("visual.timeOfDay", _v("morning|afternoon|evening|night"), (5, 7, 5, 3), coverage=0.7),
    _bool("visual.indoor", 0.8),
    _array("visual.objectsDetected",
           _v("phone|laptop|mug|desk|chair|plant|car|food|door|mirror|book|bag"), 4.0),
    _score("visual.motionIntensity", energy=0.8),
    _score("visual.thumbnailAppeal", craft=0.3, production=0.4),
    _text("visual.sceneDescription", _SCENE),
    # engagement
    _ratio("engagement.predictedWatchThrough", 0.45, craft=0.5, energy=0.2),
    _score("engagement.shareability", craft=0.5, simplicity=0.2),
    _score("engagement.saveability", simplicity=0.3),
    _score("engagement.loopPotential", craft=0.3, energy=0.3),
    _score("engagement.controversyRisk", niche=0.2),
    _bool("engagement.commentBait", 0.3, trendiness=0.4),
    _bool("engagement.callToAction", 0.35),
    _cat("engagement.ctaType", _v("follow|comment|share|link in bio|tag a friend"),
         when="engagement.callToAction"),
    _cat("engagement.targetAudience", _v("gen z|millennials|parents|professionals|general"),
         (6, 6, 2, 3, 3)),
    _cat("engagement.ageSuitability", _v("all|13+|18+"), (6, 3, 1)),
    # meta
    _cat("meta.model", _v("gemini-2.0-flash|gemini-2.5-pro"), (0.6, 0.4)),
    _cat("meta.promptVersion", _v("3.0|3.1|3.2"), (0.3, 0.4, 0.3)),
    _ratio("meta.confidence", 0.85),
    _count("meta.framesAnalyzed", 40),
    _count("meta.processingMs", 9000),
)
# fmt: on

_FEATURES_BY_PATH = {feature.path: feature for feature in _V3_FEATURES}
_KEYS = {feature.path: tuple(feature.path.split(".")) for feature in _V3_FEATURES}
_SHOT_LENGTHS = "production.shotLengthsSeconds"  # a numeric array, derived from shotCount
_KEYS[_SHOT_LENGTHS] = tuple(_SHOT_LENGTHS.split("."))

# What an older v2 analysis has: no comedyStyle, standalone, flexibility, visual, engagement,
# and only parts of the rest, so its feature_count stays below 100.
_V2_PREFIXES = (
    "hook.",
    "script.summary",
    "script.replicability.",
    "script.structure.",
    "trends.",
    "casting.",
    "production.",
    "audio.",
    "meta.",
)
_V2_META = {"meta.model": "gemini-1.5-pro", "meta.promptVersion": "2.4"}

# overall_score: weights on features normalised to about 0-1 (centred at 0.5).
_SCORE_WEIGHTS: dict[str, float] = {
    "script.replicability.score": 0.17,
    "script.humor.comedyTiming": 0.13,
    "standalone.worksWithoutContext": 0.07,
    "comedyStyle.contrastMechanism.present": 0.08,
    "flexibility.swappableCore": 0.06,
    "script.structure.payoffStrength": 0.14,
    "trends.memeDependent": -0.07,
    "trends.usesPremadeSound": -0.05,
    "casting.actingSkillRequired": -0.10,
    "production.shotComplexity": -0.10,
    "audio.soundEffects_count": -0.08,
    "flexibility.industryLock": -0.06,
    "casting.attractivenessDependency": -0.09,
    "hook.strength": 0.05,
    "script.originality.score": 0.04,
    "engagement.shareability": 0.03,
    "production.durationSeconds": -0.03,
}
_SCORE_CATEGORY_BONUS = {
    ("hook.type", "pattern_interrupt"): 0.03,
    ("hook.type", "direct_address"): -0.03,
}
_SCORE_INTERCEPT = 0.47
_SCORE_NOISE = 0.05
_MAX_SOUND_EFFECTS = 6

_DIMENSIONS: dict[str, dict[str, float]] = {
    "hook": {"hook.strength": 0.7, "hook.curiosityGap": 0.3},
    "pacing": {"production.pacing": 0.6, "script.structure.pacing": 0.4},
    "payoff": {"script.structure.payoffStrength": 1.0},
    "originality": {"script.originality.score": 0.8, "trends.memeDependent": -0.2},
    "rewatchable": {"script.humor.rewatchValue": 0.7, "script.structure.loopable": 0.3},
}
_DIMENSION_WORDS = {
    "hook": "hook",
    "pacing": "pacing",
    "payoff": "payoff",
    "originality": "originality",
    "rewatchable": "rewatch value",
}
_NOTE_TEMPLATES = (
    "Strong {best}, weak {worst}",
    "Great {best}; {worst} needs work",
    "{Best} carries it, {worst} falls flat",
    "Loved the {best}",
    "Meh {worst}",
    "Solid {best}, {worst} could be tighter",
)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _signal(feature: _Feature, z: np.ndarray) -> np.ndarray:
    out = np.zeros(z.shape[0])
    for name, weight in feature.loadings.items():
        out += weight * z[:, _LATENTS.index(name)]
    return out


def _draw_values(feature: _Feature, z: np.ndarray, rng: np.random.Generator) -> list[Any]:
    """Values of one feature for every document, as JSON-ready Python objects."""
    n = z.shape[0]
    s = _signal(feature, z)
    kind = feature.kind
    if kind == "score":
        raw = feature.center + 1.8 * (s + 0.7 * rng.standard_normal(n))
        return np.clip(np.rint(raw), 1, 10).astype(int).tolist()
    if kind == "ratio":
        raw = _sigmoid(_logit(feature.center) + s + 0.6 * rng.standard_normal(n))
        return np.round(raw, 3).tolist()
    if kind == "range":
        unit = _sigmoid(0.8 * s + 0.8 * rng.standard_normal(n))
        return np.round(feature.lo + (feature.hi - feature.lo) * unit, 2).tolist()
    if kind == "count":
        return rng.poisson(feature.center * np.exp(0.4 * s)).tolist()
    if kind == "bool":
        return (rng.random(n) < _sigmoid(_logit(feature.center) + s)).tolist()
    if kind == "cat":
        k = len(feature.choices)
        p = np.asarray(feature.weights or [1.0] * k, dtype=float)
        idx = rng.choice(k, size=n, p=p / p.sum())
        return [feature.choices[int(i)] for i in idx]
    if kind == "array":
        return _draw_arrays(feature, s, rng)
    if kind == "text" and feature.make_text is not None:
        return feature.make_text(rng, n)
    raise ValueError(f"unknown feature kind {kind!r} for {feature.path}")  # pragma: no cover


def _draw_arrays(feature: _Feature, s: np.ndarray, rng: np.random.Generator) -> list[list[str]]:
    """String arrays: Poisson lengths, distinct items drawn by Zipf-like popularity."""
    n, vocab = s.shape[0], feature.choices
    lengths = np.minimum(rng.poisson(feature.center * np.exp(0.5 * s)), len(vocab))
    popularity = np.log(1.0 / np.arange(1, len(vocab) + 1))
    keys = popularity + rng.gumbel(size=(n, len(vocab)))  # Gumbel top-k = weighted sampling
    order = np.argsort(-keys, axis=1, kind="stable")
    return [[vocab[int(j)] for j in order[i, : lengths[i]]] for i in range(n)]


def _presence(
    features: Sequence[_Feature], columns: dict[str, list[Any]], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    n = len(next(iter(columns.values())))
    present: dict[str, np.ndarray] = {}
    for feature in features:
        if feature.when is not None:
            present[feature.path] = np.asarray(columns[feature.when], dtype=bool)
        elif feature.coverage < 1.0:
            present[feature.path] = rng.random(n) < feature.coverage
        if feature.null_rate > 0.0:
            nulls = rng.random(n) < feature.null_rate
            columns[feature.path] = [
                None if nulls[i] else v for i, v in enumerate(columns[feature.path])
            ]
    return present


def _normalised(path: str, columns: dict[str, list[Any]]) -> np.ndarray:
    """A feature column scaled to about 0-1 for the hidden score and dimensions."""
    if path == "audio.soundEffects_count":
        counts = np.array([len(v) for v in columns["audio.soundEffects"]], dtype=float)
        return np.minimum(counts, _MAX_SOUND_EFFECTS) / _MAX_SOUND_EFFECTS
    feature = _FEATURES_BY_PATH[path]
    values = np.asarray(columns[path], dtype=float)
    if feature.kind == "score":
        return (values - 1.0) / 9.0
    if feature.kind == "range":
        return (values - feature.lo) / (feature.hi - feature.lo)
    return values  # bool and ratio already 0-1


def _hidden_score(columns: dict[str, list[Any]]) -> np.ndarray:
    """The owner's taste before noise: linear in the normalised features."""
    n = len(columns["hook.type"])
    score = np.full(n, _SCORE_INTERCEPT)
    for path, weight in _SCORE_WEIGHTS.items():
        score += weight * (_normalised(path, columns) - 0.5)
    for (path, value), bonus in _SCORE_CATEGORY_BONUS.items():
        score += bonus * np.array([v == value for v in columns[path]], dtype=float)
    return score


def _dimensions(columns: dict[str, list[Any]], rng: np.random.Generator) -> dict[str, np.ndarray]:
    n = len(columns["hook.type"])
    out: dict[str, np.ndarray] = {}
    for name, parts in _DIMENSIONS.items():
        value = np.zeros(n)
        for path, weight in parts.items():
            value += weight * _normalised(path, columns)
        if name == "originality":
            value += 0.1  # keep the meme penalty from pushing the mean down
        noisy = value + 0.08 * rng.standard_normal(n)
        out[name] = np.round(np.clip(noisy, 0.0, 1.0), 2)
    return out


def _notes(dims: dict[str, np.ndarray], rng: np.random.Generator) -> list[str]:
    names = list(dims)
    matrix = np.column_stack([dims[name] for name in names])
    best = np.argmax(matrix, axis=1)
    worst = np.argmin(matrix, axis=1)
    templates = rng.integers(0, len(_NOTE_TEMPLATES), size=matrix.shape[0])
    empty = rng.random(matrix.shape[0]) < 0.08
    notes = []
    for i in range(matrix.shape[0]):
        if empty[i]:
            notes.append("")
            continue
        b, w = _DIMENSION_WORDS[names[best[i]]], _DIMENSION_WORDS[names[worst[i]]]
        notes.append(
            _NOTE_TEMPLATES[int(templates[i])].format(best=b, Best=b.capitalize(), worst=w)
        )
    return notes


def _set_path(doc: dict[str, Any], keys: Sequence[str], value: Any) -> None:
    for key in keys[:-1]:
        doc = doc.setdefault(key, {})
    doc[keys[-1]] = value


def _count_leaves(node: Any) -> int:
    if isinstance(node, dict):
        return sum(_count_leaves(v) for v in node.values())
    return 0 if node is None else 1


def _build_document(
    i: int,
    columns: dict[str, list[Any]],
    present: dict[str, np.ndarray],
    version: str,
) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for feature in _V3_FEATURES:
        path = feature.path
        if version == "v2" and not path.startswith(_V2_PREFIXES):
            continue
        if path in present and not present[path][i]:
            continue
        value = _V2_META.get(path, columns[path][i]) if version == "v2" else columns[path][i]
        _set_path(doc, _KEYS[path], value)
        if path == "production.shotCount":
            _set_path(doc, _KEYS[_SHOT_LENGTHS], columns[_SHOT_LENGTHS][i])
    doc["feature_count"] = _count_leaves(doc)
    doc["version"] = version
    return doc


def _shot_lengths(columns: dict[str, list[Any]], rng: np.random.Generator) -> list[list[float]]:
    """A numeric array consistent with shotCount and averageShotLengthSeconds."""
    counts = columns["production.shotCount"]
    means = columns["production.averageShotLengthSeconds"]
    draws = rng.gamma(4.0, 0.25, size=(len(counts), max(counts) + 1))
    return [np.round(draws[i, : counts[i]] * means[i], 2).tolist() for i in range(len(counts))]


def _rating_times(
    n: int, early: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Order of the ratings in time (v2 ratings tend to come first) and their minute offsets."""
    keys = np.where(early, rng.uniform(0.0, 0.35, n), rng.uniform(0.0, 1.0, n))
    order = np.argsort(keys, kind="stable")
    offsets = np.cumsum(1 + np.floor(rng.exponential(90.0, n))).astype(int)
    return order, offsets


def generate_ratings(n_videos: int = 700, seed: int = 42) -> list[dict[str, Any]]:
    """Owner ratings of analysed short videos, in the preference spec's export format.

    ``n_videos`` is the number of *usable* records: owner ratings of v3 analyses
    (``feature_count`` >= 100, ``comedyStyle`` present), which is what training sees.  On top
    come the records the extraction must drop: about 10% of ``n_videos`` ratings by ``team``
    or ``guest`` raters (v3 analyses, their own taste) and about 8% owner ratings of older v2
    analyses (no ``comedyStyle``, ``feature_count`` < 100, mostly rated early).  Each record
    rates its own video.

    A record is ``{"id", "video_id", "overall_score", "dimensions", "notes", "rated_at",
    "rater_type", "video": {"video_url", "visual_analysis"}}``, sorted by ``rated_at``
    (ISO-8601 with a UTC offset).  ``overall_score`` and the five ``dimensions`` lie in 0-1;
    the owner's score follows :data:`EXPECTED_CORRELATIONS` plus noise.  ``feature_count`` is
    the number of non-null leaf values of the analysis (an array counts as one leaf; the
    ``feature_count`` and ``version`` keys themselves are not counted).
    """
    if n_videos < 0:
        raise ValueError(f"n_videos must be >= 0, got {n_videos}")
    n_other = math.ceil(_NON_OWNER_SHARE * n_videos)
    n_v2 = math.ceil(_V2_SHARE * n_videos)
    n = n_videos + n_other + n_v2
    if n == 0:
        return []
    rng = np.random.default_rng(seed)

    # Roles by generation index: usable owner v3 first, then non-owner v3, then owner v2.
    rater = np.array(["owner"] * n, dtype=object)
    team = rng.random(n_other) < 0.6
    rater[n_videos : n_videos + n_other] = np.where(team, "team", "guest")
    is_v2 = np.zeros(n, dtype=bool)
    is_v2[n_videos + n_other :] = True

    z = rng.standard_normal((n, len(_LATENTS)))
    columns = {feature.path: _draw_values(feature, z, rng) for feature in _V3_FEATURES}
    columns[_SHOT_LENGTHS] = _shot_lengths(columns, rng)
    hidden = _hidden_score(columns)
    dims = _dimensions(columns, rng)
    notes = _notes(dims, rng)
    present = _presence(_V3_FEATURES, columns, rng)

    # Team and guest raters share part of the owner's taste, with their own bias and noise.
    is_owner = rater == "owner"
    noise_sd = np.where(is_owner, _SCORE_NOISE, 0.14)
    bias = np.where(is_owner, 0.0, rng.normal(0.05, 0.05, n))
    taste = np.where(is_owner, 1.0, 0.5)
    raw = _SCORE_INTERCEPT + taste * (hidden - _SCORE_INTERCEPT) + bias
    overall = np.round(np.clip(raw + noise_sd * rng.standard_normal(n), 0.0, 1.0), 2)

    order, offsets = _rating_times(n, is_v2, rng)
    records = []
    for position, i in enumerate(order.tolist(), start=1):
        video_id = f"vid_{position:06d}"
        rated_at = _RATINGS_START + timedelta(minutes=int(offsets[position - 1]))
        records.append(
            {
                "id": f"rt_{position:06d}",
                "video_id": video_id,
                "overall_score": float(overall[i]),
                "dimensions": {name: float(values[i]) for name, values in dims.items()},
                "notes": notes[i],
                "rated_at": rated_at.isoformat(),
                "rater_type": str(rater[i]),
                "video": {
                    "video_url": f"https://example.com/v/{video_id}",
                    "visual_analysis": _build_document(
                        i, columns, present, "v2" if is_v2[i] else "v3"
                    ),
                },
            }
        )
    return records


# --------------------------------------------------------------------------------------------
# Stats: minute-level cumulative counts
# --------------------------------------------------------------------------------------------


def add_growth_rates(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``views/likes/comments_growth_rate`` computed from the cumulative counts.

    The rate is the percentage change (x100) of each count from the previous row of the same
    ``video_id``, in timestamp order; a video's first row, and any row whose previous count is
    0 or missing, gets 0.0.  Returns a new frame sorted by ``video_id``, ``timestamp`` (when
    there is a ``timestamp`` column) with a fresh index; the input is left untouched.
    """
    missing = [c for c in ("video_id", *_GROWTH_COLUMNS) if c not in df.columns]
    if missing:
        raise KeyError(f"add_growth_rates needs columns {missing}")
    keys = ["video_id", "timestamp"] if "timestamp" in df.columns else ["video_id"]
    out = df.sort_values(keys, kind="stable").reset_index(drop=True)
    for count, rate in _GROWTH_COLUMNS.items():
        current = out[count].astype("float64")
        previous = current.groupby(out["video_id"], sort=False).shift(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            growth = (current - previous) / previous * 100.0
        growth = growth.where(np.isfinite(growth), 0.0)
        out[rate] = growth.astype("float64")
    return out


def _video_series(
    n_rows: int, start: pd.Timestamp, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Cumulative counts of one freshly uploaded video, one row a minute."""
    age0 = rng.uniform(30.0, 120.0)  # minutes since upload at the first row
    peak = rng.uniform(60.0, 250.0)  # views a minute right after upload
    tau = rng.uniform(60.0, 240.0)
    alpha = rng.uniform(0.8, 1.3)
    floor = rng.uniform(2.0, 8.0)
    like_rate = rng.uniform(0.03, 0.05)
    comment_rate = rng.uniform(0.003, 0.005)

    minutes = np.arange(n_rows, dtype=float)
    hours = start.hour + start.minute / 60.0 + minutes / 60.0
    daily = 1.0 + 0.35 * np.cos(2.0 * np.pi * (hours - 20.0) / 24.0)  # busiest around 20:00
    mean_views = (peak * (1.0 + (age0 + minutes) / tau) ** (-alpha) + floor) * daily
    dispersion = 8.0  # negative binomial: over-dispersed Poisson
    view_inc = rng.negative_binomial(dispersion, dispersion / (dispersion + mean_views))
    like_inc = rng.poisson(like_rate * view_inc * rng.gamma(10.0, 0.1, n_rows))
    comment_inc = rng.poisson(comment_rate * view_inc * rng.gamma(5.0, 0.2, n_rows))

    views0 = int(rng.integers(1500, 6000))
    view_inc[0] = like_inc[0] = comment_inc[0] = 0
    return {
        "view_count": views0 + np.cumsum(view_inc),
        "like_count": round(views0 * like_rate) + np.cumsum(like_inc),
        "comment_count": max(1, round(views0 * comment_rate)) + np.cumsum(comment_inc),
    }


def generate_stats(
    seed: int = 42,
    videos: dict[str, int] | None = None,
    start: str = "2025-07-01T00:00:00Z",
) -> pd.DataFrame:
    """``video_stats_processed`` rows: minute-level cumulative counts of a few new uploads.

    ``videos`` maps video id to its number of rows (default :data:`DEFAULT_STATS_VIDEOS`, the
    spec's three videos).  The k-th video's series starts ``k`` weeks and ``5k`` hours after
    ``start``.  Views grow with a decaying per-minute rate after upload, a daily cycle and
    negative-binomial noise; likes follow at 3-5% and comments at 0.3-0.5% of the new views.
    Columns: ``timestamp`` (UTC), ``video_id``, ``view_count``, ``like_count``,
    ``comment_count`` (int64, non-decreasing per video) and the three growth rates of
    :func:`add_growth_rates`; sorted by ``video_id``, ``timestamp``.
    """
    videos = DEFAULT_STATS_VIDEOS if videos is None else videos
    rng = np.random.default_rng(seed)
    origin = pd.Timestamp(start)
    origin = origin.tz_localize("UTC") if origin.tzinfo is None else origin.tz_convert("UTC")
    frames = []
    for k, (video_id, n_rows) in enumerate(videos.items()):
        if n_rows < 1:
            raise ValueError(f"video {video_id!r} needs at least one row, got {n_rows}")
        first = origin + pd.Timedelta(days=7 * k, hours=5 * k)
        series = _video_series(n_rows, first, rng)
        frame = pd.DataFrame(
            {
                "timestamp": pd.date_range(first, periods=n_rows, freq="min"),
                "video_id": video_id,
                **{name: values.astype("int64") for name, values in series.items()},
            }
        )
        frames.append(frame)
    if not frames:
        empty = pd.DataFrame(
            {
                "timestamp": pd.Series(dtype="datetime64[us, UTC]"),
                "video_id": pd.Series(dtype=str),
                **{name: pd.Series(dtype="int64") for name in _GROWTH_COLUMNS},
            }
        )
        return add_growth_rates(empty)[_STATS_COLUMNS]
    return add_growth_rates(pd.concat(frames, ignore_index=True))[_STATS_COLUMNS]
