"""`python -m viralab.registry.sync [--database-url URL] [--watch SECONDS] [--mode M]`: the
`viralab registry sync` command as a program of its own (the MLproject `sync` entry point).

Its own module so the sync itself never imports the CLI that drives it.
"""

from __future__ import annotations

from viralab.entrypoint import install_guards
from viralab.registry.sync.command import sync_app


def main() -> None:
    install_guards()
    sync_app(prog_name="python -m viralab.registry.sync")


if __name__ == "__main__":
    main()
