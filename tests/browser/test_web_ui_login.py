"""The web UI's login with non-ASCII passwords, and its device list paged by the server.

Real headless Chromium against the real `pyupdate-server serve` (fixtures and helpers from
test_web_ui.py).
"""

from __future__ import annotations

import json

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from test_web_ui import AUTH, browser, open_view, server, wait_until  # noqa: F401 (fixtures)

from pyupdate_testing.device_keys import device_key, pubkey_pem, sign
from pyupdate_testing.server import ADMIN, Server

pytestmark = pytest.mark.browser


def log_in_as(driver: webdriver.Chrome, server: Server, email: str, password: str) -> None:  # noqa: F811
    driver.get(f"{server.url}/")
    wait_until(driver, "the login form", lambda d: d.find_element(By.ID, "login").is_displayed())
    form = driver.find_element(By.ID, "login-form")
    form.find_element(By.NAME, "email").send_keys(email)
    form.find_element(By.NAME, "password").send_keys(password)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


@pytest.mark.parametrize(
    ("email", "password"),
    [("accent@example.com", "pässwörd-é-long"), ("euro@example.com", "costs-10-€-now")],
)
def test_a_password_with_non_ascii_characters_logs_in(
    server: Server,  # noqa: F811
    browser: webdriver.Chrome,  # noqa: F811
    email: str,
    password: str,
) -> None:
    r = server.api.post(
        "/api/management/v1/useradm/users", json={"email": email, "password": password}
    )
    assert r.status_code == 201, r.text
    log_in_as(browser, server, email, password)
    wait_until(
        browser, "the menu after login", lambda d: d.find_element(By.ID, "nav").is_displayed()
    )
    assert not browser.find_element(By.ID, "message").is_displayed()


def test_the_device_list_is_paged_by_the_server(server: Server, browser: webdriver.Chrome) -> None:  # noqa: F811
    import httpx

    key = device_key("ec")
    for n in range(60):
        body = json.dumps(
            {"id_data": json.dumps({"mac": f"page-{n:02d}"}), "pubkey": pubkey_pem(key)}
        )
        r = httpx.post(f"{server.url}{AUTH}", content=body,
                       headers={"X-MEN-Signature": sign(key, body.encode())}, timeout=30)  # fmt: skip
        assert r.status_code == 401, r.text
    total = server.api.get("/api/management/v2/devauth/devices/count").json()["count"]
    pages = -(-total // 50)
    log_in_as(browser, server, *ADMIN)
    open_view(browser, "devices")
    wait_until(
        browser,
        "the first page",
        lambda d: f"page 1 of {pages}" in d.find_element(By.ID, "device-count").text,
    )
    assert len(browser.find_elements(By.CSS_SELECTOR, "#device-rows tr")) == 50
    browser.find_element(By.ID, "device-next").click()
    wait_until(
        browser,
        "the last page",
        lambda d: f"page {pages} of {pages}" in d.find_element(By.ID, "device-count").text,
    )
    wait_until(
        browser, "the rest of the devices",
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#device-rows tr")) == total - 50 * (pages - 1),
    )  # fmt: skip
    assert browser.find_element(By.ID, "device-next").get_attribute("disabled") is not None
