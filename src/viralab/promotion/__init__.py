"""Promotion: what turns a registered version into the active one, and the evidence a
reviewer reads on its page — gates scored on the frozen gate set, the comparison with the
champion, the marker moves and their record, the MLflow server plugin, the `viralab registry`
commands. It sits above the model families (it scores their models) and below the monitor
and sweeps; `viralab.registry` below it is the thin adapter over MLflow's registry."""
