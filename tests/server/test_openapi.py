"""docs/openapi.json is the app's current spec; Schemathesis finds no 5xx and no schema drift."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from server_helpers import ADMIN, accept, make_device

from pyupdate_server.app import create_app
from pyupdate_server.cli import main
from pyupdate_server.services.users import create_user
from pyupdate_server.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def test_checked_in_openapi_is_current(capsys):
    assert main(["openapi"]) == 0
    current = json.loads(capsys.readouterr().out)
    assert json.loads(DOC.read_text()) == current, (
        "docs/openapi.json is stale: run `pyupdate-server openapi > docs/openapi.json`"
    )


@pytest.fixture(scope="module")
def app_and_auth(tmp_path_factory, module_database_url):
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("st"),
        secret_key="s" * 40,
        database_url=module_database_url,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        with app.state.server.db.write() as session:
            create_user(session, *ADMIN)
        token = client.post("/api/management/v1/useradm/auth/login", auth=ADMIN).text
        admin = {"Authorization": f"Bearer {token}"}
        # a device, so device routes get past auth and reach their logic
        device = make_device(client, "schemathesis")
        accept(client, admin, device)
        yield app, {"user": admin["Authorization"], "device": device.headers["Authorization"]}


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_api_has_no_5xx_and_matches_its_schema(app_and_auth):
    # schemathesis' pytest plugin does not run under pytest 9, so each operation gets
    # its own bounded Hypothesis run here
    app, auth = app_and_auth
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30

    for operation in operations:
        kind = "device" if operation.path.startswith("/api/devices") else "user"
        ok = operation.definition.raw.get("responses", {}).get("200", {})
        # schemathesis tries to decode any documented body as JSON; a JWT is plain text
        checks = CHECKS[:-1] if "application/jwt" in ok.get("content", {}) else CHECKS

        @given(case=operation.as_strategy())
        @settings(
            max_examples=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case):
            case.call_and_validate(headers={"Authorization": auth[kind]}, checks=checks)  # noqa: B023

        run()
