"""The leaves of a v3 `visual_analysis` the sample draws, and what an older v2 one keeps.

150+ features of every kind the feature pipeline must handle (numbers, booleans,
categoricals, string and numeric arrays, free text, optional and low-coverage keys, an
explicit ``null``), each tied to hidden traits (`LATENTS`) so they correlate the way real
analyses do.
"""

from __future__ import annotations

from viralab.data.sample.feature_kinds import Feature
from viralab.data.sample.feature_kinds import array as _array
from viralab.data.sample.feature_kinds import category as _cat
from viralab.data.sample.feature_kinds import count as _count
from viralab.data.sample.feature_kinds import flag as _bool
from viralab.data.sample.feature_kinds import free_text as _text
from viralab.data.sample.feature_kinds import handles as _handles
from viralab.data.sample.feature_kinds import phrases as _phrases
from viralab.data.sample.feature_kinds import ratio as _ratio
from viralab.data.sample.feature_kinds import score as _score
from viralab.data.sample.feature_kinds import span as _range
from viralab.data.sample.feature_kinds import vocab as _v

# Hidden traits of a video; every feature leans on some of them, so features correlate the way
# real analyses do (a simple video is easy to replicate AND cheap to shoot).
LATENTS = ("craft", "simplicity", "trendiness", "production", "niche", "energy")

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
V3_FEATURES: tuple[Feature, ...] = (
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

FEATURES_BY_PATH = {feature.path: feature for feature in V3_FEATURES}
KEYS = {feature.path: tuple(feature.path.split(".")) for feature in V3_FEATURES}
SHOT_LENGTHS = "production.shotLengthsSeconds"  # a numeric array, derived from shotCount
KEYS[SHOT_LENGTHS] = tuple(SHOT_LENGTHS.split("."))

# What an older v2 analysis has: no comedyStyle, standalone, flexibility, visual, engagement,
# and only parts of the rest, so its feature_count stays below 100.
V2_PREFIXES = (
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
V2_META = {"meta.model": "gemini-1.5-pro", "meta.promptVersion": "2.4"}
