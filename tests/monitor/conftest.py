"""Retrain tests promote versions, and promotions write event rows and the mirror into the
application database: give each test its own, never the project's `data/viralab.db`."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _own_app_database(tmp_path, monkeypatch) -> None:
    if not os.environ.get("VIRALAB_DATABASE_URL"):
        monkeypatch.setenv("VIRALAB_DATABASE_URL", f"sqlite:///{tmp_path}/app.db")
