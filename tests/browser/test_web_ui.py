"""The web UI in real headless Chromium against the real `pyupdate-server serve`.

A user logs in, admits a device that asked to join, uploads an artifact, deploys
it to that device and watches the device's report arrive; the device is played
over the device API with a real key. Also: what the UI must refuse or show as
text (a wrong password, a file that is not an artifact, markup in an identity).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from pyupdate_testing.artifacts import write_test_artifact
from pyupdate_testing.device_keys import device_key, pubkey_pem, sign
from pyupdate_testing.server import ADMIN, Server, live_server

pytestmark = pytest.mark.browser

AUTH = "/api/devices/v1/authentication/auth_requests"
NEXT = "/api/devices/v2/deployments/device/deployments/next"
STATUS = "/api/devices/v1/deployments/device/deployments/{}/status"
LOG = "/api/devices/v1/deployments/device/deployments/{}/log"
INVENTORY = "/api/devices/v1/inventory/device/attributes"
WAIT = 30


class Device:
    """A device over the device API, as the agent speaks it."""

    def __init__(self, server: Server, identity: dict[str, str]) -> None:
        self.server = server
        self.identity = identity
        self.key = device_key("ec")
        self.token = ""

    def authenticate(self) -> int:
        body = json.dumps(
            {"id_data": json.dumps(self.identity), "pubkey": pubkey_pem(self.key)}
        ).encode()
        headers = {"Content-Type": "application/json", "X-MEN-Signature": sign(self.key, body)}
        r = httpx.post(f"{self.server.url}{AUTH}", content=body, headers=headers, timeout=30)
        if r.status_code == 200:
            self.token = r.text
        return r.status_code

    def call(self, method: str, path: str, body: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(
            method, f"{self.server.url}{path}", json=body, headers=headers, timeout=30
        )


@pytest.fixture(scope="module", params=("sqlite", "postgresql"))
def server(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Server]:
    """The real server, on each database engine in turn (PostgreSQL: a fresh database in
    the session's cluster, ../conftest.py)."""
    if request.param == "sqlite":
        with live_server(tmp_path_factory.mktemp("ui")) as running:
            yield running
        return
    cluster = request.getfixturevalue("pg_cluster")
    name, url = request.getfixturevalue("new_pg_database")()
    try:
        with live_server(tmp_path_factory.mktemp("ui"), database_url=url) as running:
            yield running
    finally:
        cluster.drop_database(name)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",  # root in CI
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        # the machine has no internet: no background fetches, no update checks
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    # the console, so tests can see script errors and CSP violations (console_errors)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(driver: webdriver.Chrome, what: str, check) -> object:  # type: ignore[no-untyped-def]
    """Until `check(driver)` is truthy; the page refreshes its tables, so a stale row is retried."""

    def attempt(d: webdriver.Chrome) -> object:
        try:
            return check(d)
        except StaleElementReferenceException:
            return None

    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.2).until(attempt)
    except WebDriverException as err:
        body = driver.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"timed out waiting for {what}; the page shows:\n{body}") from err


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """The page's console errors since the last call: script errors, failed requests and
    Content-Security-Policy violations ("Refused to ...") all land there."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def open_view(driver: webdriver.Chrome, view: str) -> None:
    """Follow the menu entry of `view`, as a person would."""
    wait_until(
        driver,
        f"the {view} menu entry",
        lambda d: d.find_element(By.CSS_SELECTOR, f"a[data-view={view}]").is_displayed(),
    )
    driver.find_element(By.CSS_SELECTOR, f"a[data-view={view}]").click()
    wait_until(driver, f"the {view} page", lambda d: d.find_element(By.ID, view).is_displayed())


def click_link_in_row(driver: webdriver.Chrome, table: str, key: str, value: str) -> bool:
    for row in driver.find_elements(By.CSS_SELECTOR, f"#{table} tr[data-{key}]"):
        if row.get_attribute(f"data-{key}") == value:
            row.find_element(By.TAG_NAME, "a").click()
            return True
    return False


def create_rollout(
    driver: webdriver.Chrome,
    name: str,
    artifact: str,
    *,
    devices: list[str] | None = None,
    group: str | None = None,
) -> None:
    """Fill the New rollout form for chosen devices or a static group, and send it."""
    open_view(driver, "rollout")
    wait_until(
        driver,
        f"artifact {artifact} among the choices",
        lambda d: any(
            o.get_attribute("value") == artifact
            for o in d.find_elements(By.CSS_SELECTOR, "#rollout-artifact option")
        ),
    )
    driver.find_element(By.ID, "rollout-name").send_keys(name)
    Select(driver.find_element(By.ID, "rollout-artifact")).select_by_value(artifact)
    if devices is not None:
        driver.find_element(By.CSS_SELECTOR, "input[name=target][value=devices]").click()
        driver.find_element(By.ID, "rollout-devices").send_keys(" ".join(devices))
    if group is not None:
        driver.find_element(By.CSS_SELECTOR, "input[name=target][value=group]").click()
        wait_until(
            driver,
            f"group {group} among the choices",
            lambda d: any(
                o.get_attribute("value") == group
                for o in d.find_elements(By.CSS_SELECTOR, "#rollout-group option")
            ),
        )
        Select(driver.find_element(By.ID, "rollout-group")).select_by_value(group)
    driver.find_element(By.CSS_SELECTOR, "#rollout-form button[type=submit]").click()
    wait_until(
        driver,
        "the new deployment's page",
        lambda d: d.find_element(By.ID, "deployment").is_displayed(),
    )


def row_text(driver: webdriver.Chrome, table: str, key: str, value: str) -> str | None:
    for row in driver.find_elements(By.CSS_SELECTOR, f"#{table} tr[data-{key}]"):
        if row.get_attribute(f"data-{key}") == value:
            return row.text
    return None


def click_in_row(driver: webdriver.Chrome, table: str, key: str, value: str, label: str) -> bool:
    for row in driver.find_elements(By.CSS_SELECTOR, f"#{table} tr[data-{key}]"):
        if row.get_attribute(f"data-{key}") == value:
            for b in row.find_elements(By.TAG_NAME, "button"):
                if b.text == label:
                    b.click()
                    return True
    return False


def log_in(driver: webdriver.Chrome, server: Server, password: str = ADMIN[1]) -> None:
    driver.get(f"{server.url}/")
    wait_until(driver, "the login form", lambda d: d.find_element(By.ID, "login").is_displayed())
    form = driver.find_element(By.ID, "login-form")
    form.find_element(By.NAME, "email").send_keys(ADMIN[0])
    form.find_element(By.NAME, "password").send_keys(password)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def device_id_by_identity(server: Server, identity: dict[str, str]) -> str:
    devices = server.api.get("/api/management/v2/devauth/devices?per_page=500").json()
    return next(d["id"] for d in devices if d["identity_data"] == identity)


def test_admit_upload_deploy_and_watch_the_report(
    server: Server, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    device = Device(server, {"mac": "02:00:00:00:0a:01"})
    assert device.authenticate() == 401  # asks to join: pending
    device_id = device_id_by_identity(server, device.identity)

    log_in(browser, server)
    # the overview is the landing page: the pending device is something to attend to
    wait_until(
        browser,
        "the pending admission",
        lambda d: "waiting for admission" in d.find_element(By.ID, "attention").text,
    )
    assert browser.current_url.endswith("/ui/") or "#overview" in browser.current_url
    browser.find_element(By.CSS_SELECTOR, "#attention a[href='#devices/pending']").click()
    wait_until(
        browser,
        "the pending device",
        lambda d: "pending" in (row_text(d, "device-rows", "id", device_id) or ""),
    )
    wait_until(
        browser,
        "the Accept button",
        lambda d: click_in_row(d, "device-rows", "id", device_id, "Accept"),
    )
    browser.find_element(By.CSS_SELECTOR, "a[data-view=devices]").click()
    wait_until(
        browser,
        "the device accepted",
        lambda d: "accepted" in (row_text(d, "device-rows", "id", device_id) or ""),
    )
    total = len(server.api.get("/api/management/v2/devauth/devices").json())
    wait_until(
        browser,
        "the count of every device",
        lambda d: (
            d.find_element(By.ID, "device-count").text
            == f"{total} device{'' if total == 1 else 's'}"
        ),
    )
    assert device.authenticate() == 200
    provides = {"device_type": "qemux86-64", "artifact_name": "release-1"}
    inventory = [{"name": k, "value": v} for k, v in provides.items()]
    assert device.call("PUT", INVENTORY, inventory).status_code == 200
    wait_until(
        browser,
        "the inventory in the row",
        lambda d: "release-1" in (row_text(d, "device-rows", "id", device_id) or ""),
    )

    artifact = write_test_artifact(tmp_path / "app-2.mender", "app-2")
    browser.find_element(By.CSS_SELECTOR, "a[data-view=artifacts]").click()
    form = wait_until(
        browser,
        "the upload form",
        lambda d: (
            d.find_element(By.ID, "upload-form").is_displayed()
            and d.find_element(By.ID, "upload-form")
        ),
    )
    form.find_element(By.NAME, "artifact").send_keys(str(artifact))  # type: ignore[union-attr]
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # type: ignore[union-attr]
    wait_until(
        browser, "the uploaded artifact", lambda d: row_text(d, "artifact-rows", "name", "app-2")
    )
    assert "single-file" in (row_text(browser, "artifact-rows", "name", "app-2") or "")
    assert "Uploaded app-2.mender" in browser.find_element(By.ID, "message").text

    create_rollout(browser, "roll out app-2", "app-2", devices=[device_id])
    dep_id = browser.current_url.rsplit("/", 1)[1]
    wait_until(
        browser,
        "the device on the deployment's page",
        lambda d: "pending" in (row_text(d, "detail-rows", "id", device_id) or ""),
    )
    assert "roll out app-2 created" in browser.find_element(By.ID, "message").text
    browser.find_element(By.CSS_SELECTOR, "a[data-view=deployments]").click()
    wait_until(
        browser,
        "the deployment row",
        lambda d: "pending: 1" in (row_text(d, "deployment-rows", "id", dep_id) or ""),
    )

    # the device polls, installs and reports, as the agent does
    r = device.call("POST", NEXT, {"device_provides": provides})
    assert r.status_code == 200, r.text
    assert r.json()["id"] == dep_id
    for status in ("downloading", "installing", "success"):
        assert device.call("PUT", STATUS.format(dep_id), {"status": status}).status_code == 204

    wait_until(
        browser,
        "the finished deployment",
        lambda d: "success: 1" in (row_text(d, "deployment-rows", "id", dep_id) or ""),
    )
    assert "finished" in (row_text(browser, "deployment-rows", "id", dep_id) or "")
    wait_until(
        browser,
        "the deployment's link",
        lambda d: click_link_in_row(d, "deployment-rows", "id", dep_id),
    )
    wait_until(
        browser,
        "the device's row in the details",
        lambda d: "success" in (row_text(d, "detail-rows", "id", device_id) or ""),
    )


def test_a_wrong_password_is_refused_with_one_line(
    server: Server, browser: webdriver.Chrome
) -> None:
    log_in(browser, server, password="not-the-password")
    message = wait_until(
        browser, "the login error", lambda d: d.find_element(By.ID, "message").text
    )
    assert str(message).startswith("Login failed:")
    assert "\n" not in str(message)
    assert browser.find_element(By.ID, "login").is_displayed()
    assert not browser.find_element(By.ID, "nav").is_displayed()


def test_a_file_that_is_not_an_artifact_shows_the_servers_reason(
    server: Server, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    log_in(browser, server)
    wait_until(browser, "the menu", lambda d: d.find_element(By.ID, "nav").is_displayed())
    browser.get(f"{server.url}/ui/#artifacts")
    junk = tmp_path / "notes.mender"
    junk.write_bytes(b"this is not a tar archive\n" * 100)
    form = wait_until(
        browser,
        "the upload form",
        lambda d: (
            d.find_element(By.ID, "upload-form").is_displayed()
            and d.find_element(By.ID, "upload-form")
        ),
    )
    form.find_element(By.NAME, "artifact").send_keys(str(junk))  # type: ignore[union-attr]
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()  # type: ignore[union-attr]
    message = wait_until(
        browser,
        "the upload error",
        lambda d: (
            "Upload failed" in d.find_element(By.ID, "message").text
            and d.find_element(By.ID, "message").text
        ),
    )
    assert "artifact rejected" in str(message)
    assert row_text(browser, "artifact-rows", "name", "notes") is None


def test_markup_from_a_device_is_shown_as_text(server: Server, browser: webdriver.Chrome) -> None:
    identity = {"mac": "<img src=x onerror=document.title='owned'>"}
    device = Device(server, identity)
    assert device.authenticate() == 401
    device_id = device_id_by_identity(server, identity)
    log_in(browser, server)
    open_view(browser, "devices")
    text = wait_until(
        browser, "the device row", lambda d: row_text(d, "device-rows", "id", device_id)
    )
    assert "<img src=x onerror=document.title='owned'>" in str(text)
    assert browser.title == "pyupdate"
    assert not browser.find_elements(By.CSS_SELECTOR, "#device-rows img")
    headers = httpx.get(f"{server.url}/ui/", timeout=30).headers
    assert headers["content-security-policy"].startswith("default-src 'self'")


def accepted_device(server: Server, mac: str) -> tuple[Device, str]:
    """A device admitted over the management API, with its inventory sent."""
    device = Device(server, {"mac": mac})
    assert device.authenticate() == 401
    device_id = device_id_by_identity(server, device.identity)
    found = server.api.get(f"/api/management/v2/devauth/devices/{device_id}").json()
    auth_id = found["auth_sets"][-1]["id"]
    r = server.api.put(
        f"/api/management/v2/devauth/devices/{device_id}/auth/{auth_id}/status",
        json={"status": "accepted"},
    )
    assert r.status_code == 204, r.text
    assert device.authenticate() == 200
    inventory = [{"name": "device_type", "value": "qemux86-64"}]
    assert device.call("PUT", INVENTORY, inventory).status_code == 200
    return device, device_id


def answer_dialog(driver: webdriver.Chrome, text: str | None = None) -> None:
    alert = WebDriverWait(driver, WAIT).until(lambda d: d.switch_to.alert)
    if text is not None:
        alert.send_keys(text)
    alert.accept()


def test_a_group_rollout_reaches_only_the_group_and_a_decommissioned_device_is_refused(
    server: Server, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    canary_device, canary = accepted_device(server, "02:00:00:00:0b:01")
    other, other_id = accepted_device(server, "02:00:00:00:0b:02")
    server.upload(write_test_artifact(tmp_path / "app-3.mender", "app-3"))
    log_in(browser, server)
    open_view(browser, "devices")

    wait_until(
        browser, "the Group button", lambda d: click_in_row(d, "device-rows", "id", canary, "Group")
    )
    answer_dialog(browser, "canary")
    wait_until(
        browser,
        "the group in the row",
        lambda d: "canary" in (row_text(d, "device-rows", "id", canary) or ""),
    )

    create_rollout(browser, "canary app-3", "app-3", group="canary")
    wait_until(
        browser,
        "the created message",
        lambda d: "canary app-3 created" in d.find_element(By.ID, "message").text,
    )
    deployments = server.api.get("/api/management/v1/deployments/deployments").json()
    dep = next(d for d in deployments if d["name"] == "canary app-3")
    assert server.device_statuses(dep["id"]) == {canary: "pending"}

    # the canary fails and sends its log, as the agent does: the UI shows both
    provides = {"device_type": "qemux86-64", "artifact_name": "release-1"}
    assert canary_device.call("POST", NEXT, {"device_provides": provides}).status_code == 200
    assert (
        canary_device.call("PUT", STATUS.format(dep["id"]), {"status": "failure"}).status_code
        == 204
    )
    line = {
        "timestamp": "2026-12-03T10:00:00Z",
        "level": "error",
        "message": "ArtifactInstall: disk full",
    }
    r = canary_device.call("PUT", LOG.format(dep["id"]), {"messages": [line]})
    assert r.status_code == 204, r.text
    browser.get(f"{server.url}/ui/#deployment/{dep['id']}")
    wait_until(
        browser,
        "the Show log button",
        lambda d: click_in_row(d, "detail-rows", "id", canary, "Show log"),
    )
    log = wait_until(
        browser, "the device's log", lambda d: d.find_element(By.ID, "detail-log-text").text
    )
    assert "ArtifactInstall: disk full" in str(log)
    assert "failure" in (row_text(browser, "detail-rows", "id", canary) or "")

    browser.find_element(By.CSS_SELECTOR, "a[data-view=devices]").click()
    wait_until(
        browser,
        "the Decommission button",
        lambda d: click_in_row(d, "device-rows", "id", other_id, "Decommission"),
    )
    answer_dialog(browser)
    wait_until(
        browser,
        "the device decommissioned",
        lambda d: "decommissioned" in (row_text(d, "device-rows", "id", other_id) or ""),
    )
    assert other.authenticate() == 401
