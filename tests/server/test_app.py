"""The app around the routes: health, metrics, JSON logs, migrations at start."""

from __future__ import annotations

import json
import logging

from fastapi.testclient import TestClient

from pyupdate_server.app import create_app
from pyupdate_server.log import JsonFormatter
from pyupdate_server.services.users import create_user


def test_health_and_metrics(client):
    assert client.get("/health").json()["status"] == "ok"
    ready = client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready"
    assert ready.json()["storage"] == "local"
    client.post("/api/devices/v1/authentication/auth_requests", content=b"x")
    text = client.get("/metrics").text
    assert "pyupdate_http_requests_total" in text
    assert 'route="/api/devices/v1/authentication/auth_requests"' in text


def test_restart_migrates_and_keeps_data(settings):
    app = create_app(settings)
    with TestClient(app), app.state.server.db.write() as session:
        create_user(session, "keep@example.com", "password1")
    with TestClient(create_app(settings)) as client:
        r = client.post(
            "/api/management/v1/useradm/auth/login", auth=("keep@example.com", "password1")
        )
        assert r.status_code == 200


def test_json_log_lines_carry_fields():
    record = logging.makeLogRecord(
        {
            "name": "x",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "artifact stored",
            "artifact": "a1",
            "size": 5,
        }
    )
    line = json.loads(JsonFormatter().format(record))
    assert (line["msg"], line["artifact"], line["size"], line["level"]) == (
        "artifact stored",
        "a1",
        5,
        "info",
    )


def test_unknown_route_is_json_404(client):
    r = client.get("/nope")
    assert r.status_code == 404
    assert r.json() == {"error": "Not Found"}
