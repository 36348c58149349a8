"""Fixtures for the artifact tests: keys made once per session, the CLI in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from artifact_helpers import HELLO, KeyPair, Result, make_keys, run_cli


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyPair]:
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture
def cli(capsys):
    def run(*argv: str | Path) -> Result:
        return run_cli(capsys, *argv)

    return run


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    path = tmp_path / "rootfs.ext4"
    path.write_bytes(HELLO)
    return path
