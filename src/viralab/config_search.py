"""Hydra's config search path for viralab: the project's folders before the packaged tree.

Why a plugin: Hydra appends `hydra.searchpath` entries *after* the primary config module, so
they could add configs but never override the packaged ones; a `SearchPathPlugin` may insert
before it. The plugin is registered in this process only (`use_project_layers`), and acts only
on apps whose primary config module is viralab's (`pkg://viralab.conf`).
"""

from __future__ import annotations

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.plugins import Plugins
from hydra.plugins.search_path_plugin import SearchPathPlugin

from viralab.config_layers import PACKAGED_MODULE, config_dir, config_layers
from viralab.settings import register_schemas

#: The packaged tree as Hydra names it: `@hydra.main(config_path=PACKAGED_CONFIG)`.
PACKAGED_CONFIG = f"pkg://{PACKAGED_MODULE}"


class ProjectLayersFirst(SearchPathPlugin):
    """Puts `config_layers()` (bar the package's own tree) just before the packaged tree."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if not any(
            e.provider == "main" and e.path == PACKAGED_CONFIG for e in search_path.get_path()
        ):
            return  # another Hydra app in this process
        packaged = config_dir()
        for layer in config_layers():
            if layer != packaged:  # in order: each lands after the previous, before main
                search_path.prepend("viralab project", f"file://{layer}", anchor="main")


def use_project_layers() -> None:
    """Register the plugin and the settings schemas (idempotent): call before `@hydra.main`
    runs or a `compose`."""
    Plugins.instance().register(ProjectLayersFirst)
    register_schemas()  # the YAML files name them first in their defaults lists
