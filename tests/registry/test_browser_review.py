"""The reviewer flow in a real browser: headless Chromium drives MLflow's UI against a real
`mlflow server --app-name viralab-auth` (basic-auth + the registry guard).

A reviewer logs in, opens a passing challenger's version page, sees its evidence, adds the
`champion` alias; the mirror row is active within 2 s and an event row names the reviewer. A
failing version's promotion is refused in the dialog (red message) and nothing moves.
Screenshots of each step go to tests/output/browser_review/ (git-ignored).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient

from tests.registry.guarded import ADMIN, GuardedServer, start_guarded
from tests.registry.kit import GOOD_PREFERENCE, RegistryKit
from tests.support.services import require_service
from viralab.tracking import ensure_experiment

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
REVIEWER = ("reviewer-ann", "reviewer-pass-12345")
SHOTS = Path(__file__).resolve().parents[1] / "output" / "browser_review"
ALIAS_EDITOR = "button[data-component-id*='modelversionviewaliaseditor']"


@pytest.fixture(scope="module")
def server(tmp_path_factory, mlflow_template) -> Iterator[GuardedServer]:
    if not Path(CHROMIUM).exists():
        require_service(f"chromium: {CHROMIUM} not found (apt-get install chromium)")
    guarded = start_guarded(tmp_path_factory.mktemp("browser"), mlflow_template, auth=True)
    yield guarded
    guarded.server.stop()


@pytest.fixture
def kit(server: GuardedServer, monkeypatch: pytest.MonkeyPatch) -> RegistryKit:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.url)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
    mlflow.set_tracking_uri(server.url)
    mlflow.set_registry_uri(server.url)
    return RegistryKit(MlflowClient(), ensure_experiment(f"review-{uuid.uuid4().hex[:8]}"))


def aliases(kit: RegistryKit) -> dict[str, int]:
    return {k: int(v) for k, v in kit.client.get_registered_model("preference").aliases.items()}


def dialog_closes(page, shot: str) -> None:
    """The alias dialog closes after a successful save; when it does not, say what it shows
    (a refusal's message) and keep a screenshot."""
    from playwright.sync_api import expect

    try:
        expect(page.get_by_role("dialog")).to_have_count(0, timeout=90_000)
    except AssertionError:
        page.screenshot(path=SHOTS / shot, full_page=True)
        text = page.get_by_role("dialog").first.inner_text()
        raise AssertionError(f"the alias dialog stayed open: {text!r}") from None


def add_champion_alias(page, shot: str, keeps: tuple[str, ...] = ()) -> None:
    """Open the version page's alias editor ("Add", or the pencil once a version has one),
    type `champion` into its combobox and press "Save aliases".

    MLflow's UI fills the dialog from the registered model it loaded; opened before that load
    lands (a busy CI machine), the dialog starts without the version's aliases and saves with
    an empty model name ("Missing value for required parameter 'name'"). So wait until the
    page header and the dialog show the aliases the version already has (`keeps`), and check
    the chips before saving."""
    for alias in keeps:  # the page header lists them once the registered model is loaded
        page.get_by_text(f"@\u00a0{alias}").first.wait_for(timeout=60_000)
    page.locator(ALIAS_EDITOR).first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Add/Edit alias").wait_for(timeout=30_000)
    for alias in keeps:
        dialog.get_by_text(f"@\u00a0{alias}").first.wait_for(timeout=30_000)
    dialog.get_by_role("combobox").first.click()
    page.keyboard.type("champion")
    page.keyboard.press("Enter")
    page.screenshot(path=SHOTS / shot)
    for alias in (*keeps, "champion"):
        dialog.get_by_text(f"@\u00a0{alias}").first.wait_for(timeout=30_000)
    dialog.get_by_role("button", name="Save aliases").click()


def test_reviewer_promotes_in_the_browser(server, kit):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    kit.quick_version("preference", GOOD_PREFERENCE)  # v1: champion
    kit.quick_version("preference", {**GOOD_PREFERENCE, "mae": 0.10})  # v2: passing challenger
    kit.quick_version("preference", {**GOOD_PREFERENCE, "mae": 0.31})  # v3: fails mae < 0.15
    kit.client.set_registered_model_alias("preference", "champion", "1")
    kit.client.set_registered_model_alias("preference", "challenger", "2")
    created = requests.post(
        f"{server.url}/api/2.0/mlflow/users/create",
        json={"username": REVIEWER[0], "password": REVIEWER[1]},
        auth=ADMIN,
        timeout=60,
    )
    assert created.status_code == 200, created.text
    evidence = kit.client.get_model_version("preference", "2").description or ""
    headline = next(line.strip("# ").strip() for line in evidence.splitlines() if line.strip())
    events_before = len(server.events())

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(
            http_credentials={"username": REVIEWER[0], "password": REVIEWER[1]},
            viewport={"width": 1400, "height": 1000},
        )
        page = context.new_page()
        try:
            page.goto(f"{server.url}/#/models/preference/versions/2")
            page.get_by_text(headline).first.wait_for(timeout=90_000)  # the evidence is shown
            page.screenshot(path=SHOTS / "1-challenger-evidence.png", full_page=True)

            add_champion_alias(page, "2-adding-champion.png", keeps=("challenger",))
            dialog_closes(page, "2b-after-save.png")
            saved_at = time.monotonic()
            while server.active("preference") != 2 and time.monotonic() - saved_at < 2.0:
                time.sleep(0.1)
            assert server.active("preference") == 2  # mirrored within 2 s of the save
            page.get_by_text("@\u00a0champion").first.wait_for(timeout=30_000)
            page.screenshot(path=SHOTS / "3-champion-set.png", full_page=True)
            assert aliases(kit) == {"champion": 2}
            last = server.events()[-1]
            assert (last["actor"], last["source"], last["kind"]) == (REVIEWER[0], "ui", "promotion")
            assert (last["from_version"], last["to_version"], last["forced"]) == (1, 2, False)
            assert len(server.events()) == events_before + 1

            page.goto(f"{server.url}/#/models/preference/versions/3")
            page.get_by_text("Version 3").first.wait_for(timeout=90_000)
            add_champion_alias(page, "4-adding-champion-to-failing.png")
            refusal = page.get_by_role("dialog").get_by_text("viralab refused to make preference")
            refusal.wait_for(timeout=90_000)
            color = refusal.evaluate("e => getComputedStyle(e).color")
            page.screenshot(path=SHOTS / "5-refused.png")
            red, green, blue = (int(c) for c in color[color.index("(") + 1 : -1].split(",")[:3])
            assert red > 150 and green < 100 and blue < 100, color  # shown in red
            assert "mae < 0.15 (mae = 0.31)" in refusal.inner_text()
        finally:
            browser.close()
    assert aliases(kit) == {"champion": 2}  # nothing moved
    assert len(server.events()) == events_before + 1
    assert server.active("preference") == 2
    assert os.listdir(SHOTS)
