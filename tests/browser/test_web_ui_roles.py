"""The web UI by role: a read-only user sees no button the server would refuse, and an
admin's audit log page lists a deployment's creation (paged and filtered by the server).

Real headless Chromium against the real `pyupdate-server serve` (fixtures and helpers from
test_web_ui.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select
from test_web_ui import (  # noqa: F401
    Device,
    browser,
    console_errors,
    device_id_by_identity,
    open_view,
    server,
    wait_until,
)
from test_web_ui_login import log_in_as

from pyupdate_testing.artifacts import write_test_artifact
from pyupdate_testing.server import ADMIN, Server

pytestmark = pytest.mark.browser

USERS = "/api/management/v1/useradm/users"
ARTIFACTS = "/api/management/v1/deployments/artifacts"
DEPLOYMENTS = "/api/management/v1/deployments/deployments"
READER = ("reader@example.com", "read-only-password")
MANAGER = ("manager@example.com", "release-manager-password")


def a_fleet(server: Server, tmp_path: Path, name: str) -> tuple[str, str]:  # noqa: F811
    """A pending device, an accepted one, an artifact and a deployment: every table has
    rows an admin would see buttons in. (pending device id, deployment id)"""
    pending = Device(server, {"mac": f"02:00:00:00:{name}:01"})
    assert pending.authenticate() == 401
    accepted = Device(server, {"mac": f"02:00:00:00:{name}:02"})
    assert accepted.authenticate() == 401
    accepted_id = device_id_by_identity(server, accepted.identity)
    device = server.api.get(f"/api/management/v2/devauth/devices/{accepted_id}").json()
    r = server.api.put(
        f"/api/management/v2/devauth/devices/{accepted_id}/auth/{device['auth_sets'][0]['id']}/status",
        json={"status": "accepted"},
    )
    assert r.status_code == 204, r.text
    artifact = write_test_artifact(tmp_path / f"{name}.mender", f"app-{name}")
    with artifact.open("rb") as fh:
        r = server.api.post(ARTIFACTS, files={"artifact": (artifact.name, fh)})
    assert r.status_code == 201, r.text
    r = server.api.post(
        DEPLOYMENTS,
        json={"name": f"roll out {name}", "artifact_name": f"app-{name}", "devices": [accepted_id]},
    )
    assert r.status_code == 201, r.text
    return device_id_by_identity(server, pending.identity), r.headers["Location"].rsplit("/", 1)[1]


def buttons(driver: webdriver.Chrome, table: str) -> list[str]:
    """The labels of the visible buttons under #table, read in one go (the page refreshes)."""
    return driver.execute_script(  # type: ignore[no-any-return]
        "return [...document.querySelectorAll(arguments[0])]"
        ".filter(b => b.offsetParent !== null).map(b => b.textContent)",
        f"#{table} button",
    )


def test_a_read_only_user_sees_no_write_buttons(
    server: Server,  # noqa: F811
    browser: webdriver.Chrome,  # noqa: F811
    tmp_path: Path,
) -> None:
    pending_id, dep_id = a_fleet(server, tmp_path, "aa")
    r = server.api.post(
        USERS, json={"email": READER[0], "password": READER[1], "roles": ["RBAC_ROLE_OBSERVER"]}
    )
    assert r.status_code == 201, r.text

    log_in_as(browser, server, *READER)
    # the overview: counts and progress, nothing to press
    wait_until(
        browser,
        "the open deployment",
        lambda d: d.find_elements(By.CSS_SELECTOR, f"#overview-rollouts li[data-id='{dep_id}']"),
    )
    assert browser.find_element(By.ID, "whoami").text == f"{READER[0]} (read-only)"
    assert buttons(browser, "overview") == []
    for view in ("rollout", "webhooks", "audit"):  # an admin's or a release manager's
        assert not browser.find_element(By.CSS_SELECTOR, f"a[data-view={view}]").is_displayed()

    open_view(browser, "devices")
    wait_until(
        browser,
        "the pending device",
        lambda d: d.find_elements(By.CSS_SELECTOR, f"#device-rows tr[data-id='{pending_id}']"),
    )
    assert buttons(browser, "device-rows") == []  # no Accept, Reject, Group, Decommission
    browser.get(f"{server.url}/ui/#device/{pending_id}")
    wait_until(
        browser,
        "the device's keys",
        lambda d: d.find_elements(By.CSS_SELECTOR, "#device-authsets tr[data-id]"),
    )
    assert buttons(browser, "device-actions") == [] and buttons(browser, "device-authsets") == []

    open_view(browser, "artifacts")
    wait_until(
        browser, "the artifact", lambda d: d.find_elements(By.CSS_SELECTOR, "#artifact-rows tr")
    )
    assert buttons(browser, "artifact-rows") == []
    assert not browser.find_element(By.ID, "upload-form").is_displayed()

    open_view(browser, "deployments")
    wait_until(
        browser,
        "the deployment",
        lambda d: d.find_elements(By.CSS_SELECTOR, f"#deployment-rows tr[data-id='{dep_id}']"),
    )
    assert buttons(browser, "deployment-rows") == []  # reading only: no Pause, no Abort
    assert not browser.find_element(By.ID, "new-rollout-link").is_displayed()
    browser.get(f"{server.url}/ui/#deployment/{dep_id}")
    wait_until(
        browser,
        "the deployment's devices",
        lambda d: d.find_elements(By.CSS_SELECTOR, "#detail-rows tr[data-id]"),
    )
    assert buttons(browser, "detail-actions") == []

    # pages of other roles, asked for by hand: the page shows the overview instead
    for view in ("rollout", "webhooks", "audit"):
        browser.get(f"{server.url}/ui/#{view}")
        wait_until(
            browser, "the overview", lambda d: d.find_element(By.ID, "overview").is_displayed()
        )
        assert not browser.find_element(By.ID, view).is_displayed()
    assert console_errors(browser) == []

    # a release manager deploys, pauses and aborts, but admits no device and sees no webhooks
    r = server.api.post(
        USERS, json={"email": MANAGER[0], "password": MANAGER[1], "roles": ["release-manager"]}
    )
    assert r.status_code == 201, r.text
    browser.find_element(By.ID, "logout").click()
    log_in_as(browser, server, *MANAGER)
    wait_until(browser, "the menu", lambda d: d.find_element(By.ID, "nav-rollout").is_displayed())
    assert not browser.find_element(By.ID, "nav-webhooks").is_displayed()
    browser.get(f"{server.url}/ui/#deployment/{dep_id}")
    wait_until(browser, "the Pause button", lambda d: "Pause" in buttons(d, "detail-actions"))
    assert buttons(browser, "detail-actions") == ["Pause", "Abort"]
    browser.get(f"{server.url}/ui/#device/{pending_id}")
    wait_until(
        browser,
        "the device's keys",
        lambda d: d.find_elements(By.CSS_SELECTOR, "#device-authsets tr[data-id]"),
    )
    assert buttons(browser, "device-actions") == [] and buttons(browser, "device-authsets") == []

    # the same pages for an admin have the buttons: the difference is the role
    browser.find_element(By.ID, "logout").click()
    log_in_as(browser, server, *ADMIN)
    open_view(browser, "devices")
    wait_until(
        browser,
        "the Accept button",
        lambda d: "Accept" in buttons(d, "device-rows"),
    )
    assert browser.find_element(By.ID, "nav-audit").is_displayed()
    assert browser.find_element(By.ID, "nav-webhooks").is_displayed()


def test_the_audit_page_lists_a_deployment_creation(
    server: Server,  # noqa: F811
    browser: webdriver.Chrome,  # noqa: F811
    tmp_path: Path,
) -> None:
    _, dep_id = a_fleet(server, tmp_path, "bb")
    log_in_as(browser, server, *ADMIN)
    wait_until(browser, "the menu", lambda d: d.find_element(By.ID, "nav-audit").is_displayed())
    browser.find_element(By.ID, "nav-audit").click()
    form = wait_until(browser, "the audit filters", lambda d: d.find_element(By.ID, "audit-form"))
    Select(form.find_element(By.NAME, "object_type")).select_by_visible_text("deployment")  # type: ignore[union-attr]
    Select(form.find_element(By.NAME, "action")).select_by_visible_text("create")  # type: ignore[union-attr]
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # type: ignore[union-attr]

    def the_filtered_entry(d: webdriver.Chrome) -> str | None:
        # the unfiltered page (shown first) lists the creation too: wait for the filter
        rows = [row.text for row in d.find_elements(By.CSS_SELECTOR, "#audit-rows tr")]
        if not rows or not all("deployment" in r and "create" in r for r in rows):
            return None
        return next((r for r in rows if "roll out bb" in r), None)

    text = str(wait_until(browser, "the deployment's creation, filtered", the_filtered_entry))
    assert ADMIN[0] in text and "deployment roll out bb" in text
    entries = server.api.get(
        "/api/management/v1/auditlogs/logs", params={"object_id": dep_id}
    ).json()
    assert [e["action"] for e in entries] == ["create"]
