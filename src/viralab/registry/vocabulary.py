"""Names the gate set and the version evidence share with MLflow: tags, dataset context.

One place for them, the way `mlflow.utils.mlflow_tags` names MLflow's own tags: training
writes them, the comparison and the version page read them.
"""

from __future__ import annotations

#: Run tag: the digest of the gate set the run's training held out ("none" when none was).
TAG_GATE_SET_DIGEST = "viralab.gate_set.digest"
#: Run tag: how many rows (ratings, or stats rows) the run's training held out for it.
TAG_GATE_SET_HELD_BACK = "viralab.gate_set.held_back"
#: Run metric with the same count, so runs can be compared on it.
METRIC_GATE_HELD_BACK = "gate_set_held_back"
#: `mlflow.log_input` context of the gate set's dataset on a candidate run.
GATE_CONTEXT = "gate"
#: Version tag prefix: `viralab.gate.<gate key>` = pass | fail.
TAG_GATE_PREFIX = "viralab.gate."
#: Version tag: the gate-set digest the version's evidence was computed on.
TAG_EVIDENCE_GATE_SET = "viralab.evidence.gate_set"
#: Value of TAG_GATE_SET_DIGEST for a run trained without any gate set held out.
NO_GATE_SET = "none"
