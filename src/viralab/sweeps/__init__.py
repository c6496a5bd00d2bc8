"""Optuna sweeps: search spaces (space), checks before trial 1 (plan), storage/sampler/pruner
(study), MLflow parent and trial runs (runs), one trial (objective), the study loop (progress),
worker processes (workers), the result and summary (result), the sweep itself (runner), the Keras
pruning hook (hooks) and the `viralab sweep` commands (cli). `python -m viralab.sweep` forwards
to the runner."""
