"""Optuna sweeps: search spaces (space), checks before trial 1 (plan), storage/sampler/pruner
(study), MLflow parent and trial runs (tracking), the Keras pruning hook (hooks) and the
`viralab sweep` commands (cli). `python -m viralab.sweep` is the entry point."""
