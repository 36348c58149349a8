"""Helpers for the build-system integration tests (meta-pyupdate, kas, buildroot-ext).

Everything here runs offline with tools from PyPI (oelint-adv, kas) and
Debian (shellcheck, genimage, u-boot-tools, e2fsprogs); bitbake and Buildroot
themselves are local checks (docs/layer-checks.md), not CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAYER = REPO / "meta-pyupdate"
BR_EXT = REPO / "buildroot-ext"
DATA = Path(__file__).resolve().parent / "data"
VENV_BIN = Path(sys.executable).parent
ALL_FEATURES = "pyupdate-agent pyupdate-uboot pyupdate-image pyupdate-artifact pyupdate-systemd"


def tool(name: str) -> str:
    """A PyPI tool from this venv, else from PATH; skip (fail in CI) when absent."""
    for candidate in (VENV_BIN / name, shutil.which(name)):
        if candidate and os.access(candidate, os.X_OK):
            return str(candidate)
    message = f"{name} not installed (see docs/layer-checks.md)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def tool_env() -> dict[str, str]:
    """PATH with this venv (pyupdate-image, pyupdate-artifact) and /usr/sbin (mkfs.*) first."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(VENV_BIN), "/usr/sbin", "/sbin", env.get("PATH", "")])
    return env


def run(argv: list[str], **kw) -> subprocess.CompletedProcess[str]:
    kw.setdefault("env", tool_env())
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kw)


def layer_files(*suffixes: str) -> list[Path]:
    return sorted(p for p in LAYER.rglob("*") if p.is_file() and p.name.endswith(suffixes))
