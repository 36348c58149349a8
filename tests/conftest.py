"""Capability markers shared by every test folder.

A test that needs something the machine lacks (root, a Debian peer tool,
QEMU) is skipped with the reason on a developer's machine. In CI (CI=true)
the same gap fails the test: `make test` installs everything, so a missing
tool there is a broken install, not a reason to pass quietly.
"""

from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# marker -> (check, what is missing)
_TOOLS = {
    "peers": ("mender-artifact", "mender", "mender-cli"),
    "uboot": ("fw_setenv", "fw_printenv", "mkimage", "mkenvimage"),
    "qemu": ("qemu-system-x86_64",),
    "browser": ("chromium", "chromedriver"),
}


def _missing(marker: str) -> str | None:
    if marker == "root":
        return None if os.geteuid() == 0 else "needs root"
    tools = _TOOLS.get(marker, ())
    gone = [t for t in tools if shutil.which(t) is None]
    return f"missing {', '.join(gone)}" if gone else None


def require(marker: str) -> None:
    """Skip (or fail in CI) when the capability behind `marker` is absent."""
    reason = _missing(marker)
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"{marker}: {reason} (make test should have installed it)")
    pytest.skip(f"{marker}: {reason}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in ("root", "peers", "uboot", "qemu", "browser"):
        if item.get_closest_marker(marker) is not None:
            require(marker)
