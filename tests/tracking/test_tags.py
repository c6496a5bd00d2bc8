"""The `viralab.*` vocabulary has one home, `viralab.tracking.tags`: each name is defined
once, and every `"viralab.` string literal in src is one of its values (or code, not
vocabulary: a logger, module or class name, a lock key)."""

from __future__ import annotations

import ast
from pathlib import Path

from viralab.tracking import tags

SRC = Path(__file__).resolve().parents[2] / "src" / "viralab"
TAGS_FILE = SRC / "tracking" / "tags.py"

#: `"viralab.` literals that name code, not something MLflow or Optuna stores.
NOT_VOCABULARY = {
    # logger name shared by the prediction log's writer process and its parent
    "viralab.serve.prediction_log",
    # the writer process's module (`python -m ...`)
    "viralab.serve.prediction_log_writer",
    "viralab.tracking.writer_process",  # the tracking writer process's module
    # logger name kept by the model cache split out of serve.predict
    "viralab.serve.predict",
    # the packaged Hydra tree (`pkg://viralab.conf`)
    "viralab.conf",
    # classes a served model's pickle may load
    "viralab.features.selection.CorrelationSelector",
    "viralab.features.tabular.AnalysisEncoder",
    "viralab.features.tabular.FeatureMetadata",
    # the forecast peers' classes: Hydra `_target_`s in the typed settings (settings.models,
    # settings.retrain's list of trainable estimators)
    "viralab.models.peers.BoostingPeer",
    "viralab.models.peers.NaivePeer",
    "viralab.models.peers.StatsPeer",
    # PostgreSQL advisory lock keys (monitor.lock, registry.mirror)
    "viralab.retrain:",
    "viralab.registry.sync:model_versions",
}


def _constants() -> dict[str, str]:
    return {k: v for k, v in vars(tags).items() if k.isupper() and isinstance(v, str)}


def _literals(path: Path) -> list[tuple[str, int]]:
    """The file's string (and bytes) literals that start with `viralab.`, docstrings left
    out; for an f-string, its leading text (a prefix in tags.py)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.add(id(first.value))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            for part in node.values:
                skip.add(id(part))
            head = node.values[0] if node.values else None
            if isinstance(head, ast.Constant) and str(head.value).startswith("viralab."):
                found.append((head.value, node.lineno))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and id(node) not in skip:
            value = node.value
            if isinstance(value, bytes):
                value = value.decode(errors="replace")
            if isinstance(value, str) and value.startswith("viralab."):
                found.append((value, node.lineno))
    return found


def _src_literals() -> dict[str, list[tuple[str, int]]]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        if path != TAGS_FILE:
            literals = _literals(path)
            if literals:
                out[path.relative_to(SRC).as_posix()] = literals
    return out


def test_every_name_is_defined_once() -> None:
    tree = ast.parse(TAGS_FILE.read_text())
    assigned = [
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    ]
    assert len(assigned) == len(set(assigned)), "a name is assigned twice in tags.py"
    values = list(_constants().values())
    duplicates = sorted({v for v in values if values.count(v) > 1})
    assert not duplicates, f"one value under two names in tags.py: {duplicates}"


def test_every_viralab_literal_in_src_is_a_name_in_tags() -> None:
    known = set(_constants().values()) | NOT_VOCABULARY
    unknown = [
        f"{file}:{line}: {value!r}"
        for file, literals in _src_literals().items()
        for value, line in literals
        if value not in known
    ]
    assert not unknown, "add these to viralab/tracking/tags.py:\n" + "\n".join(unknown)


def test_no_file_spells_the_vocabulary_as_literals() -> None:
    spelled = sorted(
        f"{file}:{line}: {value!r}"
        for file, literals in _src_literals().items()
        for value, line in literals
        if value not in NOT_VOCABULARY
    )
    assert not spelled, (
        "import the names from viralab.tracking.tags instead of spelling them:\n"
        + "\n".join(spelled)
    )


def test_the_typed_settings_defaults_name_the_same_artifact_and_metric() -> None:
    # `viralab.settings` sits below `tracking` (it cannot import tags.py): its defaults spell
    # the names, and this keeps them the same
    from viralab.settings.registry import ChampionComparison

    assert ChampionComparison().eval_artifact == tags.TEST_SET_ARTIFACT
    assert ChampionComparison().fallback_metric == tags.METRIC_MAE
