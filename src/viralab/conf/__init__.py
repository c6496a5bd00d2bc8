"""viralab's Hydra config tree, shipped in the package (found as `pkg://viralab.conf`).

A project's own `conf/` (or `$VIRALAB_CONFIG_DIR`) is searched before this tree, so a file there
overrides the file of the same name here; see `viralab.config.config_layers`.
"""
