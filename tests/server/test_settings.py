"""Settings: file, then environment, then flags; unknown keys are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyupdate_server.errors import ConfigError
from pyupdate_server.settings import load_settings


def test_env_overrides_file_and_flags_override_env(tmp_path):
    conf = tmp_path / "s.toml"
    conf.write_text('port = 9000\nhost = "0.0.0.0"\nlog_json = true\n')
    env = {"PYUPDATE_SERVER_PORT": "9100", "PYUPDATE_SERVER_DATA_DIR": str(tmp_path)}
    s = load_settings(conf, env)
    assert (s.port, s.host, s.log_json, s.data_dir) == (9100, "0.0.0.0", True, tmp_path)
    assert load_settings(conf, env, port=9200).port == 9200


def test_unknown_setting_in_file_is_refused(tmp_path):
    conf = tmp_path / "s.toml"
    conf.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'prot'"):
        load_settings(conf, {})


def test_unknown_env_setting_is_refused():
    with pytest.raises(ConfigError, match="PYUPDATE_SERVER_NOPE"):
        load_settings(None, {"PYUPDATE_SERVER_NOPE": "1"})


def test_bad_port_is_refused():
    with pytest.raises(ConfigError, match="setting port"):
        load_settings(None, {"PYUPDATE_SERVER_PORT": "http"})


def test_require_signature_needs_keys():
    with pytest.raises(ConfigError, match="verify key"):
        load_settings(None, {"PYUPDATE_SERVER_REQUIRE_SIGNATURE": "1"})


def test_default_database_is_sqlite_in_data_dir():
    s = load_settings(None, {}, data_dir=Path("/d"))
    assert s.db_url == "sqlite:////d/server.db"
    assert s.base_url == "http://127.0.0.1:8080"


def test_database_url_from_file_env_and_flag(tmp_path):
    conf = tmp_path / "s.toml"
    conf.write_text('database_url = "postgresql://file@db/p"\n')
    assert load_settings(conf, {}).db_url == "postgresql://file@db/p"
    env = {"PYUPDATE_SERVER_DATABASE_URL": "postgresql://env@db/p"}
    assert load_settings(conf, env).db_url == "postgresql://env@db/p"
    flag = "sqlite:////srv/other.db"
    assert load_settings(conf, env, database_url=flag).db_url == flag


def test_cli_takes_database_url_for_every_command():
    from pyupdate_server.cli import _settings, build_parser

    for argv in (["serve"], ["user", "create", "--username", "u", "--password", "p"]):
        args = build_parser().parse_args([*argv, "--database-url", "postgresql://u@h/db"])
        assert _settings(args).db_url == "postgresql://u@h/db"


def test_unsupported_database_url_is_refused_with_one_line():
    with pytest.raises(ConfigError, match="'mysql' is not supported: use sqlite") as err:
        load_settings(None, {"PYUPDATE_SERVER_DATABASE_URL": "mysql://u@h/db"})
    assert "\n" not in str(err.value)


def test_storage_and_s3_settings_from_file_env_and_flags(tmp_path):
    conf = tmp_path / "s.toml"
    conf.write_text('storage = "s3://artifacts/prod"\ns3_endpoint_url = "http://minio:9000"\n')
    env = {"PYUPDATE_SERVER_S3_SECRET_ACCESS_KEY": "secret", "PYUPDATE_SERVER_S3_REGION": "eu"}
    s = load_settings(conf, env, storage="s3://other-bucket")
    assert (s.storage, s.s3_endpoint_url, s.s3_region, s.s3_secret_access_key) == (
        "s3://other-bucket", "http://minio:9000", "eu", "secret"
    )  # fmt: skip
    assert load_settings(None, {}).storage is None  # local files by default


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("file:///srv/artifacts", "expected s3://bucket/prefix"),
        ("s3://", "not a valid S3 bucket name"),
        ("s3://Upper_Case/x", "not a valid S3 bucket name"),
        ("s3://bucket/a/../b", "'..' part"),
    ],
)
def test_bad_storage_url_is_one_line(url, why):
    with pytest.raises(ConfigError, match=why):
        load_settings(None, {"PYUPDATE_SERVER_STORAGE": url})
