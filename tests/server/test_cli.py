"""`pyupdate-server user create` and `token create`, called in-process."""

from __future__ import annotations

from fastapi.testclient import TestClient

from pyupdate_server.app import create_app
from pyupdate_server.cli import main
from pyupdate_server.settings import Settings


def test_user_create_then_token_create_gives_a_working_token(tmp_path, capsys):
    data = str(tmp_path / "d")
    assert (
        main(
            ["user", "create", "--data-dir", data, "--username", "ci@x", "--password", "password1"]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["token", "create", "--data-dir", data, "--username", "ci@x", "--name", "ci"]) == 0
    token = capsys.readouterr().out.strip()
    with TestClient(create_app(Settings(data_dir=tmp_path / "d"))) as client:
        r = client.get(
            "/api/management/v1/useradm/users", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 200
        assert [u["email"] for u in r.json()] == ["ci@x"]


def test_duplicate_user_is_one_line_and_exit_2(tmp_path, capsys):
    args = [
        "user",
        "create",
        "--data-dir",
        str(tmp_path),
        "--username",
        "u",
        "--password",
        "password1",
    ]
    assert main(args) == 0
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err == "error: user u already exists\n"


def test_short_password_is_refused(tmp_path, capsys):
    rc = main(["user", "create", "--data-dir", str(tmp_path), "--username", "u", "--password", "x"])
    assert rc == 2
    assert "at least 8" in capsys.readouterr().err


def test_token_for_unknown_user_is_refused(tmp_path, capsys):
    rc = main(
        ["token", "create", "--data-dir", str(tmp_path), "--username", "nobody", "--name", "ci"]
    )
    assert rc == 2
    assert capsys.readouterr().err == "error: user nobody not found\n"


def test_tls_cert_without_key_is_a_config_error(tmp_path, capsys):
    rc = main(["serve", "--data-dir", str(tmp_path), "--tls-cert", "c.pem"])
    assert rc == 2
    assert "tls_cert and tls_key" in capsys.readouterr().err


def test_unreadable_verify_key_stops_serve_with_one_line(tmp_path, capsys):
    conf = tmp_path / "s.toml"
    conf.write_text(f'verify_keys = ["{tmp_path / "missing.pem"}"]\n')
    rc = main(["serve", "--config", str(conf), "--data-dir", str(tmp_path / "d")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error: verify_keys: ") and err.count("\n") == 1
