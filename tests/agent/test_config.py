"""config.py: mender.conf keys, case-insensitive, typed, errors naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyupdate_agent.config import Config, load_config, parse_config, read_device_type
from pyupdate_agent.errors import ConfigError


def test_mender_conf_keys_are_read_case_insensitively():
    cfg = parse_config(
        json.dumps(
            {
                "rootfsparta": "/dev/mmcblk0p2",
                "ROOTFSPARTB": "/dev/mmcblk0p3",
                "ArtifactVerifyKey": "/etc/mender/key.pub",
                "UpdatePollIntervalSeconds": 60,
                "statescripttimeoutseconds": 10,
                "SkipVerify": True,
                "ServerURL": "https://127.0.0.1",
            }
        )
    )
    assert cfg.rootfs_part_a == "/dev/mmcblk0p2"
    assert cfg.rootfs_part_b == "/dev/mmcblk0p3"
    assert cfg.artifact_verify_keys == ("/etc/mender/key.pub",)
    assert cfg.update_poll_interval_seconds == 60
    assert cfg.state_script_timeout_seconds == 10
    assert cfg.skip_verify is True


def test_unknown_keys_are_kept_aside_not_refused():
    cfg = parse_config('{"Servers": [], "DBus": {"Enabled": true}, "Security": {"SSLEngine": "x"}}')
    assert cfg.extra == {"Servers": [], "DBus": {"Enabled": True}, "Security.SSLEngine": "x"}
    assert cfg == Config()


def test_defaults_match_mender_34():
    cfg = Config()
    assert cfg.state_script_timeout_seconds == 3600
    assert cfg.state_script_retry_timeout_seconds == 1800
    assert cfg.state_script_retry_interval_seconds == 60
    assert cfg.module_timeout_seconds == 14400
    assert cfg.bootloader == "uboot"


def test_verify_key_and_keys_are_merged():
    cfg = parse_config('{"ArtifactVerifyKey": "a.pub", "ArtifactVerifyKeys": ["b.pub"]}')
    assert cfg.artifact_verify_keys == ("a.pub", "b.pub")


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        ('{"ModuleTimeoutSeconds": "1h"}', "ModuleTimeoutSeconds"),
        ('{"SkipVerify": "yes"}', "SkipVerify"),
        ('{"RootfsPartA": 2}', "RootfsPartA"),
        ('{"Bootloader": "lilo"}', "Bootloader"),
        ('{"ModulesDirs": "/x"}', "ModulesDirs"),
        ('{"StateScriptTimeoutSeconds": 0}', "StateScriptTimeoutSeconds"),
    ],
)
def test_bad_value_error_names_the_key(doc, key):
    with pytest.raises(ConfigError, match=key):
        parse_config(doc, "pyupdate.conf")


def test_invalid_json_names_the_file():
    with pytest.raises(ConfigError, match=r"my\.conf: not valid JSON"):
        parse_config("{", "my.conf")


def test_missing_explicit_config_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.conf")


def test_device_type_file_rules(tmp_path: Path):
    data = tmp_path
    cfg = Config()
    assert read_device_type(cfg, data) is None
    (data / "device_type").write_text("# comment\ndevice_type = board-1 \n")
    assert read_device_type(cfg, data) == "board-1"
    (data / "device_type").write_text("device_type=a\ndevice_type=b\n")
    with pytest.raises(ConfigError, match="set twice"):
        read_device_type(cfg, data)
    other = tmp_path / "dt"
    other.write_text("device_type=c\n")
    assert read_device_type(Config(device_type_file=str(other)), data) == "c"
