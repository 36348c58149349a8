"""Capability markers shared by every test folder.

A test that needs something the machine lacks (root, a Debian peer tool,
QEMU, network namespaces and HAProxy) is skipped with the reason on a
developer's machine. In CI (CI=true) the same gap fails the test: `make test`
installs everything, so a missing tool there is a broken install, not a reason
to pass quietly.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pyupdate_testing.postgres import PostgresCluster

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
    if marker == "netns":
        from pyupdate_testing import haproxy, netns

        return netns.unavailable() or haproxy.unavailable()
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
    for marker in ("root", "netns", "peers", "uboot", "qemu", "browser"):
        if item.get_closest_marker(marker) is not None:
            require(marker)


# -- the two crypto backends (pyupdate_artifact.crypto) -----------------------------
CRYPTO_BACKENDS = ("cryptography", "openssl")

# Makes `cryptography` unimportable in a child Python, as on a device built without it.
_BLOCK_CRYPTOGRAPHY = """
import sys


class _NoCryptography:
    def find_spec(self, name, path=None, target=None):
        if name == "cryptography" or name.startswith("cryptography."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return None


sys.meta_path.insert(0, _NoCryptography())
"""


@pytest.fixture(params=CRYPTO_BACKENDS)
def crypto_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs the test once per backend, forced through the environment (child processes
    such as keytool inherit it)."""
    monkeypatch.setenv("PYUPDATE_CRYPTO_BACKEND", request.param)
    return str(request.param)


@pytest.fixture
def without_cryptography(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment whose Python children cannot import cryptography (a sitecustomize
    on PYTHONPATH blocks it) and choose their backend themselves."""
    folder = tmp_path_factory.mktemp("no-cryptography")
    (folder / "sitecustomize.py").write_text(_BLOCK_CRYPTOGRAPHY)
    env = {k: v for k, v in os.environ.items() if k != "PYUPDATE_CRYPTO_BACKEND"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), env.get("PYTHONPATH")]))
    return env


# --- one PostgreSQL server per session, for every folder that tests on it ----------
TEMPLATE = "pyupdate_template"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """One PostgreSQL server for the session (Debian's, in a temporary cluster), with a
    migrated template database; skipped where it is missing, failed in CI."""
    from pyupdate_server.db.engine import Database
    from pyupdate_testing import postgres

    reason = postgres.unavailable()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"postgresql: {reason} (make test should have installed it)")
        pytest.skip(f"postgresql: {reason}")
    with postgres.postgres_cluster() as cluster:
        db = Database(cluster.create_database(TEMPLATE))
        db.migrate()
        db.dispose()
        yield cluster


@pytest.fixture(scope="session")
def new_pg_database(pg_cluster: PostgresCluster) -> Callable[[], tuple[str, str]]:
    """Makes a fresh, migrated database (a copy of the template): (name, URL)."""
    names = itertools.count()

    def new() -> tuple[str, str]:
        name = f"t{os.getpid()}_{next(names)}"
        return name, pg_cluster.create_database(name, template=TEMPLATE)

    return new
