"""The server's records are its own: data dir 0700; database, WAL/SHM, keys 0600; a weak
secret key stops the server at start with one line."""

from __future__ import annotations

import os
import stat

import pytest
from server_helpers import upload

from pyupdate_server.cli import main
from pyupdate_server.errors import ConfigError
from pyupdate_server.settings import Settings
from pyupdate_testing.artifacts import write_test_artifact


def _mode(path) -> int:  # type: ignore[no-untyped-def]
    return stat.S_IMODE(os.stat(path).st_mode)


def test_data_dir_database_wal_and_key_are_private(tmp_path, admin, client):
    data = client.app.state.server.settings.data_dir
    assert (
        upload(client, admin, write_test_artifact(tmp_path / "a.mender", "p-1")).status_code == 201
    )
    assert _mode(data) == 0o700
    for name in ("server.db", "server.db-wal", "server.db-shm", "server.db-writers"):
        assert (data / name).exists(), name
        assert _mode(data / name) == 0o600, name
    for name in ("artifacts", "tmp"):
        assert _mode(data / name) == 0o700, name
    for blob in (data / "artifacts").iterdir():
        assert _mode(blob) == 0o600, blob


def test_generated_secret_key_is_private_and_an_old_lax_dir_is_tightened(tmp_path):
    from fastapi.testclient import TestClient

    from pyupdate_server.app import create_app

    data = tmp_path / "lax"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    (data / "server.db").touch()
    os.chmod(data / "server.db", 0o644)
    with TestClient(create_app(Settings(data_dir=data))):
        pass
    assert _mode(data) == 0o700
    assert _mode(data / "server.db") == 0o600
    assert _mode(data / "secret.key") == 0o600


@pytest.mark.parametrize("key", ["x", "0123456789abcdef0123456789abcde"])
def test_secret_key_shorter_than_32_bytes_is_refused(key):
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        Settings(secret_key=key)
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        Settings(previous_secret_keys=(key,))


def test_serve_with_a_weak_secret_key_exits_2_with_one_line(tmp_path, capsys):
    config = tmp_path / "server.toml"
    config.write_text('secret_key = "hunter2"\n')
    assert main(["serve", "--config", str(config), "--data-dir", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err == "error: secret_key must be at least 32 bytes (e.g. `openssl rand -hex 32`)\n"
    assert not (tmp_path / "d").exists()


def test_a_short_secret_key_file_is_refused(tmp_path):
    from pyupdate_server.startup import prepare_records

    data = tmp_path / "d"
    data.mkdir()
    (data / "secret.key").write_text("short\n")
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        prepare_records(Settings(data_dir=data))
