"""Issue 13's scenario on the bundled sample: is the champion comparison still in-sample?

    python benchmarks/gate_bias.py            # ~2-3 min on 2 shared cores

In a throwaway tracking store and gate-set store: a ridge champion (split seed 42), then a
gradient-boosting candidate trained on another split (seed 7), as a retrain would. Prints,
for both, the MAE on their own test split, on the champion's `eval/test_set.parquet` (the old
comparison: most of those rows were in the candidate's training data) and on the frozen gate
set (the new one: no training saw those rows), with the paired interval of the difference.
The bias is gone when the candidate's gate-set MAE is not below its own test MAE.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="viralab-gate-bias-"))
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"
    os.environ["VIRALAB_GATE_SETS_URL"] = f"sqlite:///{tmp}/gate_sets.db"
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    from mlflow import MlflowClient
    from omegaconf import OmegaConf

    from viralab.config import compose
    from viralab.promotion.evaluation import compare_on_champion_eval, compare_with_champion
    from viralab.registry.markers import RegistrySettings, mark
    from viralab.train import train

    common = ["log_plots=false"]
    champion_metrics = train(compose(["model=ridge", *common]))
    candidate_metrics = train(compose(["model=gradient_boosting", "task.random_state=7", *common]))
    cfg = compose()
    settings = RegistrySettings.from_config(OmegaConf.to_container(cfg.registry, resolve=True))
    client = MlflowClient()
    champion = client.get_model_version("preference", "1")
    candidate = client.get_model_version("preference", "2")
    mark(client, settings, champion, "champion")
    comparison = settings.champion_comparison
    old, _ = compare_on_champion_eval(client, candidate, champion, comparison)
    new, _ = compare_with_champion(client, candidate, champion, comparison)
    cand_gate = (new.reference or 0.0) + (new.figure or 0.0)
    print(f"store: {tmp}")
    print(f"{'':34}{'ridge champion':>16}{'GB candidate':>16}")
    for key, label in (("mae", "own test MAE"), ("cv_mae", "own CV MAE")):
        print(f"{label:34}{champion_metrics[key]:>16.4f}{candidate_metrics[key]:>16.4f}")
    print(f"old: on the champion's eval set -> {old.line()}")
    print(f"{'gate-set MAE (n=' + str(new.n) + ')':34}{new.reference:>16.4f}{cand_gate:>16.4f}")
    print(f"new: on the frozen gate set     -> {new.line()}")
    bias = cand_gate / candidate_metrics["mae"] - 1
    print(f"candidate gate-set MAE vs its own test MAE: {bias:+.1%} (negative = optimistic)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
