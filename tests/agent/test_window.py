"""window.py: the install window's one rule, for InstallWindow and the deployment's field;
a fixed clock, never real hours."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from pyupdate_agent import window
from pyupdate_agent.config import parse_config
from pyupdate_agent.daemon.client import ServerError, _deployment
from pyupdate_agent.errors import ConfigError

DAY = datetime(2026, 3, 14)


def at(hhmm: str) -> datetime:
    hour, minute = (int(x) for x in hhmm.split(":"))
    return DAY.replace(hour=hour, minute=minute)


@pytest.mark.parametrize(
    ("text", "opened", "closed"),
    [
        ("02:00-04:30", ["02:00", "03:15", "04:29"], ["01:59", "04:30", "12:00", "00:00"]),
        ("22:00-04:00", ["22:00", "23:59", "00:00", "03:59"], ["04:00", "12:00", "21:59"]),
        ("00:00-00:01", ["00:00"], ["00:01", "23:59"]),
    ],
)
def test_a_window_is_open_from_its_start_to_just_before_its_end(text, opened, closed) -> None:
    found = window.parse(text)
    assert str(found) == text
    assert all(found.is_open(at(t)) for t in opened), opened
    assert not any(found.is_open(at(t)) for t in closed), closed


def test_the_wait_until_the_window_opens_crosses_midnight() -> None:
    found = window.parse("02:00-04:00")
    assert found.seconds_until_open(at("01:30")) == 30 * 60
    assert found.seconds_until_open(at("04:00")) == 22 * 3600
    assert found.seconds_until_open(at("03:00")) == 0
    late = window.parse("23:00-01:00")
    assert late.seconds_until_open(at("22:59")) == 60


@pytest.mark.parametrize(
    "bad", ["02:00-02:00", "2:00-4:00", "24:00-01:00", "02:60-03:00", "02:00", "", "x-y", None, 5]
)
def test_a_window_that_never_opens_or_is_malformed_is_refused(bad) -> None:
    with pytest.raises(ValueError, match="HH:MM-HH:MM"):
        window.parse(bad)


def test_the_config_key_is_normalised_and_a_bad_one_is_one_line() -> None:
    assert parse_config('{"InstallWindow": "22:00 - 04:00"}').install_window == "22:00-04:00"
    assert parse_config('{"InstallWindow": ""}').install_window is None
    assert parse_config("{}").install_window is None  # no window: install at once
    with pytest.raises(ConfigError) as err:
        parse_config('{"InstallWindow": "03:00-03:00"}', "pyupdate.conf")
    assert str(err.value) == (
        'pyupdate.conf: InstallWindow: must be "HH:MM-HH:MM" (24-hour local time, start and'
        ' end differ), e.g. "02:00-04:30"'
    )


def test_the_test_clock_reads_its_file_and_cuts_waits(tmp_path, monkeypatch) -> None:
    clock = tmp_path / "clock"
    monkeypatch.setenv(window.CLOCK, str(clock))
    assert window.local_now().date() == datetime.now().date()  # no file: the real clock
    clock.write_text("03:07\n")
    now = window.local_now()
    assert (now.hour, now.minute) == (3, 7)
    assert window.tick(3600) == window.TEST_TICK
    monkeypatch.delenv(window.CLOCK)
    assert window.tick(3600) == 3600


DEPLOYMENT = {
    "id": "dep-1",
    "artifact": {
        "artifact_name": "release-2",
        "source": {"uri": "http://x/a"},
        "device_types_compatible": ["test-device"],
    },
}


def test_a_deployment_may_carry_an_install_window_and_today_s_has_none() -> None:
    plain = _deployment(200, json.dumps(DEPLOYMENT).encode())
    assert plain is not None and plain.install_window is None
    doc = {**DEPLOYMENT, "install_window": {"start": "22:00", "end": "04:00"}}
    found = _deployment(200, json.dumps(doc).encode())
    assert found is not None and found.install_window == "22:00-04:00"
    assert type(found).from_dict(found.as_dict()) == found  # kept in the record


@pytest.mark.parametrize(
    "bad", [{"start": "10:00", "end": "10:00"}, {"start": "10:00"}, "10:00-11:00", [1]]
)
def test_a_malformed_window_from_the_server_is_a_one_line_server_error(bad) -> None:
    doc = {**DEPLOYMENT, "install_window": bad}
    with pytest.raises(ServerError, match=r"^deployment check: ") as err:
        _deployment(200, json.dumps(doc).encode())
    assert "\n" not in str(err.value)
