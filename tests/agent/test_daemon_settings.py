"""daemon/settings.py: the daemon's view of Config: the daemon-only keys, their defaults,
case-insensitive names, and a ConfigError naming the file and key for every wrong type or
value (the checks themselves are config.py's key table: test_config_keys.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyupdate_agent.config import parse_config
from pyupdate_agent.daemon.settings import daemon_settings
from pyupdate_agent.errors import ConfigError

DATA = Path("/var/lib/pyupdate")


def _settings(**keys: object):
    doc = {"ServerURL": "https://127.0.0.1"} | keys
    return daemon_settings(parse_config(json.dumps(doc)), DATA)


def test_defaults_are_the_documented_ones() -> None:
    s = _settings()
    assert s.server_url == "https://127.0.0.1"
    assert s.tenant_token == ""
    assert s.key_path == DATA / "pyupdate-agent.pem"
    assert s.key_type == "rsa"
    assert s.identity_script is None
    assert s.identity_dirs == ("/usr/share/pyupdate/identity",)
    assert s.inventory_dirs == ("/usr/share/pyupdate/inventory", "/usr/share/mender/inventory")
    assert s.jitter == 0.1
    assert s.commit_deadline == 1800
    assert s.reboot_wait == 600
    assert (s.download_resumes, s.download_seconds) == (10, 600)
    assert s.request_timeout == 30.0
    assert s.pid_file == DATA / "pyupdate.pid"
    # Mender's own keys, through Config (mender 3.4's defaults)
    assert (s.update_poll, s.inventory_poll, s.retry_poll) == (1800, 1800, 300)


def test_keys_are_matched_case_insensitively() -> None:
    s = _settings(
        devicekeytype="ECDSA",
        POLLJITTER=0.2,
        requestTimeoutSeconds=1.5,
        security={"authprivatekey": "/data/mender-agent.pem"},
        inventorydirs=["/x"],
        tenanttoken=" t0k3n \n",
        PidFile="/run/pyupdate.pid",
    )
    assert s.key_type == "ecdsa"
    assert s.jitter == 0.2
    assert s.request_timeout == 1.5
    assert s.key_path == Path("/data/mender-agent.pem")
    assert s.inventory_dirs == ("/x",)
    assert s.tenant_token == "t0k3n"
    assert s.pid_file == Path("/run/pyupdate.pid")


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ({"DeviceKeyType": 3}, "DeviceKeyType"),
        ({"DeviceKeyType": "dsa"}, "DeviceKeyType"),
        ({"PollJitter": "0.1"}, "PollJitter"),
        ({"PollJitter": True}, "PollJitter"),
        ({"RequestTimeoutSeconds": "30"}, "RequestTimeoutSeconds"),
        ({"RequestTimeoutSeconds": 0}, "RequestTimeoutSeconds"),
        ({"CommitReportDeadlineSeconds": 1.5}, "CommitReportDeadlineSeconds"),
        ({"CommitReportDeadlineSeconds": -1}, "CommitReportDeadlineSeconds"),
        ({"RebootWaitSeconds": True}, "RebootWaitSeconds"),
        ({"DownloadMaxResumes": "10"}, "DownloadMaxResumes"),
        ({"DownloadResumeSeconds": 0}, "DownloadResumeSeconds"),
        ({"IdentityDirs": "/usr/share/pyupdate/identity"}, "IdentityDirs"),
        ({"InventoryDirs": [1]}, "InventoryDirs"),
        ({"IdentityScript": ["/bin/id"]}, "IdentityScript"),
        ({"PidFile": 1}, "PidFile"),
        ({"TenantToken": 5}, "TenantToken"),
        ({"Security": "key.pem"}, "Security"),
        ({"Security": {"AuthPrivateKey": 1}}, "Security.AuthPrivateKey"),
        ({"RebootCommand": "  "}, "RebootCommand"),
        ({"RetryPollIntervalSeconds": 0}, "RetryPollIntervalSeconds"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_key(keys: dict, named: str) -> None:
    with pytest.raises(ConfigError) as err:
        _settings(**keys)
    assert str(err.value).startswith(f"config: {named}: "), str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("jitter", [0, 0.5, 0.25, 0.0])
def test_poll_jitter_bounds_are_inclusive(jitter: float) -> None:
    assert _settings(PollJitter=jitter).jitter == jitter


@pytest.mark.parametrize("jitter", [-0.01, 0.51, 1, -1])
def test_poll_jitter_outside_zero_to_a_half_is_refused(jitter: float) -> None:
    with pytest.raises(
        ConfigError, match=r"^config: PollJitter: must be a number between 0 and 0.5$"
    ):
        _settings(PollJitter=jitter)


def test_the_daemon_needs_a_server_url() -> None:
    with pytest.raises(ConfigError, match=r"^config: ServerURL: must be set"):
        daemon_settings(parse_config("{}"), DATA)


@pytest.mark.parametrize("kind", ["rsa", "ecdsa", "ed25519", "Ed25519"])
def test_every_documented_key_type_is_accepted(kind: str) -> None:
    assert _settings(DeviceKeyType=kind).key_type == kind.lower()
