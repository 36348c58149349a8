"""Fixtures for the server tests: an app per test on a temp data dir, a user, devices."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from server_helpers import ADMIN

from pyupdate_server.app import create_app
from pyupdate_server.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", secret_key="test-secret-0123456789abcdef0123456789abcdef"
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def admin_token(client: TestClient) -> str:
    state = client.app.state.server  # type: ignore[attr-defined]
    from pyupdate_server.services.users import create_user

    with state.db.write() as session:
        create_user(session, *ADMIN)
    response = client.post("/api/management/v1/useradm/auth/login", auth=ADMIN)
    assert response.status_code == 200, response.text
    return response.text


@pytest.fixture
def admin(admin_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_token}"}
