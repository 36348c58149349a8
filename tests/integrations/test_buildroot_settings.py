"""buildroot-ext/external.mk: bad settings stop `make` at once, one line naming the option.

GNU make reads external.mk as Buildroot does (BR2_* from .config as make
variables, Buildroot's qstrip), so this runs without a Buildroot tree; with
one, `make printvars` on a configured output dir stops the same way.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from integrations_helpers import BR_EXT

GOOD = {
    "BR2_HAVE_DOT_CONFIG": "y",
    "BR2_PYUPDATE_ARTIFACT_NAME": '"pyupdate-buildroot-1"',
    "BR2_PACKAGE_PYTHON_PYUPDATE_AGENT": "y",
    "BR2_PACKAGE_PYTHON_PYUPDATE_AGENT_DEVICE_TYPE": '"qemu-x86_64"',
}


def make(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    harness = tmp_path / "harness.mk"
    harness.write_text(
        'qstrip = $(strip $(subst ",,$(1)))\n'
        "include $(BR2_EXTERNAL_PYUPDATE_PATH)/external.mk\n"
        "all: ; @echo configured\n"
    )
    args = [f"{k}={v}" for k, v in {**GOOD, **settings}.items()]
    return subprocess.run(
        ["make", "-s", "-f", str(harness), f"BR2_EXTERNAL_PYUPDATE_PATH={BR_EXT}", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )


def test_good_settings_pass(tmp_path: Path) -> None:
    done = make(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "configured"


def test_existing_keys_pass(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("x")
    done = make(
        tmp_path,
        BR2_PYUPDATE_ARTIFACT_SIGNING_KEY=f'"{key}"',
        BR2_PYUPDATE_ARTIFACT_VERIFY_KEY=f'"{key}"',
        BR2_PYUPDATE_SIGNING_REQUIRED="y",
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"BR2_PYUPDATE_SIGNING_REQUIRED": "y"},
            "BR2_PYUPDATE_ARTIFACT_SIGNING_KEY: not set, and BR2_PYUPDATE_SIGNING_REQUIRED is",
        ),
        (
            {"BR2_PYUPDATE_ARTIFACT_SIGNING_KEY": '"/nonexistent/key.pem"'},
            "BR2_PYUPDATE_ARTIFACT_SIGNING_KEY: /nonexistent/key.pem: file not found",
        ),
        (
            {"BR2_PYUPDATE_ARTIFACT_VERIFY_KEY": '"/nonexistent/pub.pem"'},
            "BR2_PYUPDATE_ARTIFACT_VERIFY_KEY: /nonexistent/pub.pem: file not found",
        ),
        (
            {"BR2_PYUPDATE_ARTIFACT_NAME": '"two words"'},
            "BR2_PYUPDATE_ARTIFACT_NAME: 'two words' must be one word",
        ),
        ({"BR2_PYUPDATE_ARTIFACT_NAME": '""'}, "BR2_PYUPDATE_ARTIFACT_NAME: '' must be one word"),
        (
            {"BR2_PACKAGE_PYTHON_PYUPDATE_AGENT_DEVICE_TYPE": '"my board"'},
            "BR2_PACKAGE_PYTHON_PYUPDATE_AGENT_DEVICE_TYPE: 'my board' must be one word",
        ),
    ],
)
def test_bad_setting_stops_make_with_one_line(tmp_path: Path, settings, message) -> None:
    done = make(tmp_path, **settings)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
