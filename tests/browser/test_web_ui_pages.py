"""The web UI's pages on a small fleet, in real headless Chromium against the real
`pyupdate-server serve`: every page loads without a console error or a CSP violation,
a phased rollout and a rollout to a dynamic group (after a paged dry run) are made
through the form, a rollout the failure threshold paused is resumed and paused again from
its page, and webhooks are added, watched and deleted.

With PYUPDATE_SCREENSHOTS=1 the tests save each page as docs/img/web-ui-<page>.png (on
SQLite only), the pictures in docs/web-ui.md; without it they write nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select
from test_web_ui import (  # noqa: F401
    INVENTORY,
    NEXT,
    STATUS,
    Device,
    browser,
    console_errors,
    device_id_by_identity,
    log_in,
    row_text,
    server,
    wait_until,
)

from pyupdate_testing.artifacts import write_test_artifact
from pyupdate_testing.server import Server

pytestmark = pytest.mark.browser

SCREENSHOTS = os.environ.get("PYUPDATE_SCREENSHOTS") == "1"
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "img"
SHOT_SCALE = 0.7
SHOT_HEIGHT = 760  # CSS pixels from the top: the part of a page worth a picture
DEPLOYMENTS = "/api/management/v1/deployments/deployments"
FILTERS = "/api/management/v2/inventory/filters"
WEBHOOKS = "/api/management/v1/iot-manager/integrations"
# accepted devices: (how many, running artifact, channel)
FLEET = ((14, "release-1", "stable"), (6, "release-2", "beta"), (2, "release-2", "stable"))
PENDING = 3


@dataclass
class Fleet:
    devices: list[str]  # accepted, in the order they were added
    pending: list[str]
    paused: str  # a phased rollout its failure threshold paused
    artifacts: list[str]


def _accepted(server: Server, mac: str, artifact: str, channel: str) -> tuple[Device, str]:  # noqa: F811
    device = Device(server, {"mac": mac})
    assert device.authenticate() == 401
    device_id = device_id_by_identity(server, device.identity)
    found = server.api.get(f"/api/management/v2/devauth/devices/{device_id}").json()
    r = server.api.put(
        f"/api/management/v2/devauth/devices/{device_id}/auth/{found['auth_sets'][-1]['id']}/status",
        json={"status": "accepted"},
    )
    assert r.status_code == 204, r.text
    assert device.authenticate() == 200
    inventory = {"device_type": "qemux86-64", "artifact_name": artifact, "channel": channel}
    body = [{"name": k, "value": v} for k, v in inventory.items()]
    assert device.call("PUT", INVENTORY, body).status_code == 200
    return device, device_id


@pytest.fixture(scope="module")
def fleet(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Fleet:  # noqa: F811
    """22 accepted devices on two releases and channels, 3 asking to join, three artifacts,
    and a three-phase rollout of release-3 whose phase 1 failed twice: paused by itself."""
    folder = tmp_path_factory.mktemp("fleet")
    artifacts = ["release-2", "release-3", "release-4"]
    for name in artifacts:
        server.upload(write_test_artifact(folder / f"{name}.mender", name))
    devices: list[tuple[Device, str]] = []
    n = 0
    for count, artifact, channel in FLEET:
        for _ in range(count):
            n += 1
            devices.append(_accepted(server, f"02:00:00:00:0f:{n:02x}", artifact, channel))
    pending = []
    for i in range(PENDING):
        device = Device(server, {"mac": f"02:00:00:00:0e:{i:02x}"})
        assert device.authenticate() == 401
        pending.append(device_id_by_identity(server, device.identity))
    r = server.api.post(
        DEPLOYMENTS,
        json={
            "name": "release-3 to the fleet",
            "artifact_name": "release-3",
            "all_devices": True,
            "phases": [
                {"batch_size": 25},
                {"batch_size": 25, "start_when_healthy": True},
                {"start_when_healthy": True},
            ],
            "failure_threshold": {"count": 2},
            "success_threshold": {"percent": 80},
        },
    )
    assert r.status_code == 201, r.text
    paused = r.headers["Location"].rsplit("/", 1)[1]
    handed = []
    for device, _ in devices:
        provides = {"device_type": "qemux86-64", "artifact_name": "release-1"}
        if device.call("POST", NEXT, {"device_provides": provides}).status_code == 200:
            handed.append(device)
    assert len(handed) == 5  # phase 1: 25% of 22, rounded down
    for device, status in zip(handed, ("success", "success", "failure", "failure"), strict=False):
        for step in ("downloading", "installing", status):
            assert device.call("PUT", STATUS.format(paused), {"status": step}).status_code == 204
    assert (
        handed[4].call("PUT", STATUS.format(paused), {"status": "downloading"}).status_code == 204
    )
    assert server.api.get(f"{DEPLOYMENTS}/{paused}").json()["paused"] is True
    return Fleet([d for _, d in devices], pending, paused, artifacts)


def screenshot(driver: webdriver.Chrome, request: pytest.FixtureRequest, page: str) -> None:
    """docs/img/web-ui-<page>.png, when asked for (once: on SQLite): the top of the page,
    scaled down so each picture stays small in the repository."""
    if not SCREENSHOTS or request.node.callspec.params.get("server") != "sqlite":
        return
    IMAGES.mkdir(exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0)")
    width, height = driver.execute_script("return [innerWidth, innerHeight]")
    clip = {"x": 0, "y": 0, "width": width, "height": min(height, SHOT_HEIGHT), "scale": SHOT_SCALE}
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "clip": clip})
    target = IMAGES / f"web-ui-{page}.png"
    target.write_bytes(base64.b64decode(shot["data"]))
    assert target.stat().st_size < 150_000, f"{target.name} is too big for the docs"


def visit(driver: webdriver.Chrome, server: Server, view: str, ready: str) -> None:  # noqa: F811
    """Open `#view` and wait until the element `ready` (a CSS selector) shows."""
    driver.get(f"{server.url}/ui/#{view}")
    wait_until(
        driver,
        f"{ready} on #{view}",
        lambda d: any(e.is_displayed() for e in d.find_elements(By.CSS_SELECTOR, ready)),
    )


def test_every_page_loads_without_console_errors_or_csp_violations(
    server: Server,  # noqa: F811
    browser: webdriver.Chrome,  # noqa: F811
    fleet: Fleet,
    request: pytest.FixtureRequest,
) -> None:
    r = server.api.post(
        WEBHOOKS,
        json={
            "provider": "webhook",
            "credentials": {"type": "http", "http": {"url": "http://127.0.0.1:9/fleet"}},
            "events": ["deployment-paused", "deployment-device-failed"],
            "description": "on-call pager",
        },
    )
    assert r.status_code == 201, r.text
    log_in(browser, server)
    wait_until(
        browser,
        "the status chart",
        lambda d: d.find_elements(By.CSS_SELECTOR, "#chart-status li[data-label=accepted]"),
    )
    chart = browser.find_element(By.ID, "chart-artifacts").text
    assert "release-1" in chart and "14" in chart and "release-2" in chart
    assert "3 devices waiting for admission" in browser.find_element(By.ID, "attention").text
    assert "Paused: release-3 to the fleet" in browser.find_element(By.ID, "attention").text
    assert (
        "2 devices failed in release-3 to the fleet"
        in browser.find_element(By.ID, "attention").text
    )
    # the page refreshes itself: read the phases in one go
    phases = wait_until(
        browser,
        "the rollout's phases",
        lambda d: [
            e.text
            for e in d.find_elements(
                By.CSS_SELECTOR, f"li.rollout[data-id='{fleet.paused}'] .phase-line"
            )
        ],
    )
    assert len(phases) == 3  # type: ignore[arg-type]
    assert "40% failed" in phases[0]  # type: ignore[index]
    screenshot(browser, request, "overview")

    pages = [
        ("devices", "#device-rows tr[data-id]", "devices"),
        (f"device/{fleet.devices[0]}", "#device-history tr[data-deployment]", "device"),
        ("artifacts", "#artifact-rows tr[data-name]", "artifacts"),
        ("deployments", "#deployment-rows tr[data-id]", "deployments"),
        (f"deployment/{fleet.paused}", "#detail-phases tr[data-phase]", "deployment"),
        ("rollout", "#rollout-artifact option", "rollout"),
        ("webhooks", "#webhook-rows tr[data-id]", "webhooks"),
        ("audit", "#audit-rows tr[data-row]", "audit"),
    ]
    for view, ready, name in pages:
        visit(browser, server, view, ready)
        screenshot(browser, request, name)
    assert console_errors(browser) == []
    # the charts are SVG drawn by the script, and nothing came from anywhere else
    assert browser.find_elements(By.CSS_SELECTOR, "#detail-phases svg.bar rect")
    sources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert all(s.startswith(server.url) for s in sources), sources


def test_a_phased_rollout_and_a_dynamic_group_after_a_dry_run(
    server: Server,  # noqa: F811
    browser: webdriver.Chrome,  # noqa: F811
    fleet: Fleet,
    request: pytest.FixtureRequest,
) -> None:
    log_in(browser, server)
    visit(browser, server, "rollout", "#rollout-artifact option[value='release-4']")

    # phases that do not add up: the server's one line, and nothing made
    browser.find_element(By.ID, "rollout-name").send_keys("too much")
    Select(browser.find_element(By.ID, "rollout-artifact")).select_by_value("release-4")
    for size in ("60", "60"):
        browser.find_element(By.ID, "add-phase").click()
        browser.find_elements(By.CSS_SELECTOR, "#phases input[type=number]")[-1].send_keys(size)
    browser.find_element(By.CSS_SELECTOR, "#rollout-form button[type=submit]").click()
    message = str(
        wait_until(
            browser,
            "the server's refusal",
            lambda d: (
                "Rollout not created" in d.find_element(By.ID, "message").text
                and d.find_element(By.ID, "message").text
            ),
        )
    )
    assert "\n" not in message and "phase" in message
    assert "error" in browser.find_element(By.ID, "message").get_attribute("class")
    # the refused request is the console's only complaint
    assert all("400" in e for e in console_errors(browser))

    # two phases: a quarter, then the rest once it is healthy; thresholds, window, end
    size = browser.find_elements(By.CSS_SELECTOR, "#phases input[type=number]")
    size[0].clear()
    size[0].send_keys("25")
    size[1].clear()
    Select(browser.find_elements(By.CSS_SELECTOR, "#phases select")[1]).select_by_value("healthy")
    browser.find_element(By.ID, "rollout-name").clear()
    browser.find_element(By.ID, "rollout-name").send_keys("release-4 in two phases")
    browser.find_element(By.ID, "failure-value").send_keys("20")
    Select(browser.find_element(By.ID, "failure-action")).select_by_value("abort")
    browser.find_element(By.ID, "success-value").send_keys("90")
    # typed keys depend on the browser's locale (AM/PM): set the inputs' values instead
    end = dt.datetime.now() + dt.timedelta(days=30)
    for field, value in (
        ("window-from", "01:00"),
        ("window-to", "05:00"),
        ("end-ts", end.strftime("%Y-%m-%dT%H:%M")),
    ):
        browser.execute_script(
            "document.getElementById(arguments[0]).value = arguments[1]", field, value
        )
    browser.find_element(By.CSS_SELECTOR, "#rollout-form button[type=submit]").click()
    wait_until(browser, "the deployment's page", lambda d: "#deployment/" in d.current_url)
    dep_id = browser.current_url.rsplit("/", 1)[1]
    dep = server.api.get(f"{DEPLOYMENTS}/{dep_id}").json()
    assert [(p["batch_size"], p["start_when_healthy"]) for p in dep["phases"]] == [
        (25, False),
        (None, True),
    ]
    assert dep["failure_threshold"] == {"percent": 20, "count": None}
    assert dep["failure_action"] == "abort"
    assert dep["success_threshold"] == {"percent": 90, "count": None}
    assert dep["install_window"] == "01:00-05:00"
    assert dep["end_ts"] is not None
    wait_until(
        browser,
        "the phases on its page",
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#detail-phases tr[data-phase]")) == 2,
    )
    assert "01:00-05:00" in browser.find_element(By.ID, "detail-facts").text

    # a dynamic group: the dry run pages through who matches now, then a narrower one
    visit(browser, server, "rollout", "#rollout-artifact option[value='release-4']")
    browser.find_element(By.CSS_SELECTOR, "input[name=target][value=filter]").click()
    Select(browser.find_element(By.ID, "rollout-filter")).select_by_value("")
    browser.find_element(By.ID, "new-filter-name").send_keys("qemu boards")
    row = browser.find_element(By.CSS_SELECTOR, "#terms tr")
    row.find_element(By.CSS_SELECTOR, "input[aria-label=attribute]").send_keys("device_type")
    row.find_element(By.CSS_SELECTOR, "input[aria-label=value]").send_keys("qemux86-64")
    browser.find_element(By.ID, "dry-run").click()
    total = len(fleet.devices)
    wait_until(
        browser,
        "the dry run's count",
        lambda d: (
            d.find_element(By.ID, "dryrun-count").text == f"{total} devices match now, page 1 of 2"
        ),
    )
    assert len(browser.find_elements(By.CSS_SELECTOR, "#dryrun-rows tr[data-id]")) == 20
    assert f"{total} of them accepted" in browser.find_element(By.ID, "dryrun-reached").text
    browser.find_element(By.ID, "dryrun-next").click()
    wait_until(
        browser,
        "the second page",
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#dryrun-rows tr[data-id]")) == total - 20,
    )
    browser.find_element(By.ID, "add-term").click()
    second = browser.find_elements(By.CSS_SELECTOR, "#terms tr")[1]
    second.find_element(By.CSS_SELECTOR, "input[aria-label=attribute]").send_keys("channel")
    second.find_element(By.CSS_SELECTOR, "input[aria-label=value]").send_keys("beta")
    browser.find_element(By.ID, "dry-run").click()
    wait_until(
        browser,
        "the narrower dry run",
        lambda d: d.find_element(By.ID, "dryrun-count").text == "6 devices match now",
    )
    assert not browser.find_element(By.ID, "dryrun-pager").is_displayed()
    browser.find_element(By.ID, "rollout-name").send_keys("release-4 to beta")
    Select(browser.find_element(By.ID, "rollout-artifact")).select_by_value("release-4")
    assert not browser.find_element(By.ID, "phases-box").is_displayed()  # not for dynamic groups
    screenshot(browser, request, "rollout-dry-run")
    browser.find_element(By.CSS_SELECTOR, "#rollout-form button[type=submit]").click()
    wait_until(browser, "the dynamic deployment's page", lambda d: "#deployment/" in d.current_url)
    dynamic = server.api.get(f"{DEPLOYMENTS}/{browser.current_url.rsplit('/', 1)[1]}").json()
    assert dynamic["filter"]["name"] == "qemu boards"
    assert [t["attribute"] for t in dynamic["filter"]["terms"]] == ["device_type", "channel"]
    wait_until(
        browser,
        "the target on its page",
        lambda d: "dynamic group qemu boards" in d.find_element(By.ID, "detail-facts").text,
    )
    assert console_errors(browser) == []


def test_a_paused_rollout_is_resumed_and_paused_again_from_its_page(
    server: Server,  # noqa: F811
    browser: webdriver.Chrome,  # noqa: F811
    fleet: Fleet,
) -> None:
    log_in(browser, server)
    visit(browser, server, f"deployment/{fleet.paused}", "#detail-paused")
    assert "2 failures" in browser.find_element(By.ID, "detail-paused-why").text
    assert "paused" in browser.find_element(By.ID, "detail-events").text

    def click(label: str):  # type: ignore[no-untyped-def]
        def attempt(d: webdriver.Chrome) -> bool:
            for b in d.find_elements(By.CSS_SELECTOR, "#detail-actions button"):
                if b.text == label:
                    b.click()
                    return True
            return False

        return attempt

    wait_until(browser, "the Resume button", click("Resume"))
    wait_until(
        browser,
        "the banner gone",
        lambda d: not d.find_element(By.ID, "detail-paused").is_displayed(),
    )
    assert server.api.get(f"{DEPLOYMENTS}/{fleet.paused}").json()["paused"] is False
    wait_until(
        browser,
        "the resume in the decision log",
        lambda d: "resumed" in d.find_element(By.ID, "detail-events").text,
    )
    wait_until(browser, "the Pause button", click("Pause"))
    wait_until(
        browser,
        "the paused banner",
        lambda d: d.find_element(By.ID, "detail-paused").is_displayed(),
    )
    dep = server.api.get(f"{DEPLOYMENTS}/{fleet.paused}").json()
    assert dep["paused"] is True
    assert [e["kind"] for e in dep["events"]][-2:] == ["resumed", "paused"]
    assert dep["events"][-1]["by"] == "admin@example.com"
    assert console_errors(browser) == []


def test_webhooks_are_added_watched_and_deleted(
    server: Server,  # noqa: F811
    browser: webdriver.Chrome,  # noqa: F811
    fleet: Fleet,
) -> None:
    log_in(browser, server)
    visit(browser, server, "webhooks", "#webhook-form")
    browser.find_element(By.ID, "webhook-url").send_keys("http://127.0.0.1:9/new")
    browser.find_element(By.ID, "webhook-generate").click()
    assert len(browser.find_element(By.ID, "webhook-secret").get_attribute("value")) == 64
    browser.find_element(By.CSS_SELECTOR, "input[name=event][value=deployment-created]").click()
    browser.find_element(By.CSS_SELECTOR, "#webhook-form button[type=submit]").click()
    wait_until(
        browser,
        "the new webhook",
        lambda d: any(
            "http://127.0.0.1:9/new" in r.text
            for r in d.find_elements(By.CSS_SELECTOR, "#webhook-rows tr[data-id]")
        ),
    )
    hook = next(
        h
        for h in server.api.get(WEBHOOKS).json()
        if h["credentials"]["http"]["url"].endswith("/new")
    )
    assert hook["events"] == ["deployment-created"] and hook["credentials"]["http"]["secret_set"]
    text = str(
        wait_until(browser, "its row", lambda d: row_text(d, "webhook-rows", "id", hook["id"]))
    )
    assert "deployment-created" in text and "yes" in text

    # an event for it: the receiver is not there, and the log says so
    r = server.api.post(
        DEPLOYMENTS,
        json={"name": "for the hook", "artifact_name": "release-2", "devices": [fleet.devices[0]]},
    )
    assert r.status_code == 201, r.text

    def show_deliveries(d: webdriver.Chrome) -> bool:
        for row in d.find_elements(By.CSS_SELECTOR, f"#webhook-rows tr[data-id='{hook['id']}']"):
            row.find_element(By.XPATH, ".//button[text()='Deliveries']").click()
            return bool(d.find_elements(By.CSS_SELECTOR, "#delivery-rows tr[data-row]"))
        return False

    wait_until(browser, "a delivery attempt", show_deliveries)
    attempt = str(
        wait_until(
            browser,
            "the attempt's row",
            lambda d: d.find_element(By.CSS_SELECTOR, "#delivery-rows tr[data-row]").text,
        )
    )
    assert "deployment-created" in attempt and ("retry" in attempt or "failed" in attempt)

    def delete(d: webdriver.Chrome) -> bool:
        for row in d.find_elements(By.CSS_SELECTOR, f"#webhook-rows tr[data-id='{hook['id']}']"):
            row.find_element(By.XPATH, ".//button[text()='Delete']").click()
            return True
        return False

    wait_until(browser, "the Delete button", delete)
    browser.switch_to.alert.accept()
    wait_until(
        browser,
        "the webhook gone",
        lambda d: not d.find_elements(By.CSS_SELECTOR, f"#webhook-rows tr[data-id='{hook['id']}']"),
    )
    assert all(h["id"] != hook["id"] for h in server.api.get(WEBHOOKS).json())
    assert console_errors(browser) == []
