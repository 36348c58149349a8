"""Fixtures for the interop tests: the real `pyupdate-server serve` that Debian's mender
client and mender-cli talk to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pyupdate_testing.server import Server, live_server


@pytest.fixture(name="live_server")
def live_server_fixture(tmp_path: Path) -> Iterator[Server]:
    """`pyupdate-server serve` on 127.0.0.1 with the harness's ADMIN user."""
    with live_server(tmp_path) as server:
        yield server
