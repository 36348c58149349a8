"""The device gets only what it needs (STYLE.md section 4): the agent's verbs run from
the agent and the reader alone (agent/src, artifact_tool/reader/src, the stdlib), and
never load the build host's package (pyupdate_host), jinja2 or pexpect."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

from pyupdate_testing.host_device import HostDevice

REPO = Path(__file__).resolve().parents[2]
DEVICE_PATH = [str(REPO / "agent/src"), str(REPO / "artifact_tool/reader/src")]
HOST_ONLY = ("pyupdate_host", "jinja2", "pexpect")

# -I -S: no site-packages, no PYTHONPATH, as on a device with only the two packages;
# an import of anything else fails, and what is loaded is listed at the end.
_PROBE = """
import sys
sys.path[:0] = {path!r}
{body}
host = sorted(m for m in sys.modules if m.split(".")[0] in {host_only!r})
print("LOADED", host)
"""


def _probe(body: str) -> str:
    code = _PROBE.format(path=DEVICE_PATH, body=body, host_only=HOST_ONLY)
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.rsplit("LOADED ", 1)[1].strip()


def test_every_agent_and_reader_module_imports_without_the_host_package():
    modules = [
        m.name
        for root, pkg in (
            ("agent/src", "pyupdate_agent"),
            ("artifact_tool/reader/src", "pyupdate_artifact"),
        )
        for m in pkgutil.walk_packages([str(REPO / root / pkg)], prefix=f"{pkg}.")
        if m.name != "pyupdate_artifact.crypto.pyca"  # the optional `cryptography` backend
    ]
    assert "pyupdate_agent.daemon.machine" in modules and "pyupdate_artifact.reader" in modules
    body = f"import importlib\nfor name in {modules!r}:\n    importlib.import_module(name)"
    assert _probe(body) == "[]"


def _verbs(host: HostDevice, *verbs: list[str]) -> str:
    """The body of a probe that runs `pyupdate VERB ...` in turn, each exiting 0 (or 4:
    installed, reboot needed)."""
    lines = ["from pyupdate_agent.cli import main", f"base = {host.argv()!r}"]
    for verb in verbs:
        lines.append(f"rc = main(base + {verb!r})")
        lines.append(f"assert rc in (0, 4), ({verb!r}, rc)")
    return "\n".join(lines)


@pytest.mark.uboot
def test_agent_verbs_run_without_the_host_package(host: HostDevice, rootfs_artifact):
    """install, commit, show-artifact, show-provides, install again and rollback, each
    in a device-like interpreter; the artifacts are written here, on the "build host"."""
    first, second = rootfs_artifact("release-1"), rootfs_artifact("release-2")
    assert _probe(_verbs(host, ["install", str(first)])) == "[]"
    host.boot()
    assert _probe(_verbs(host, ["commit"], ["show-artifact"], ["show-provides"])) == "[]"
    assert _probe(_verbs(host, ["install", str(second)], ["rollback"])) == "[]"
