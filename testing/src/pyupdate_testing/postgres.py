"""A throwaway PostgreSQL server: Debian's binaries, a temporary cluster, a free port.

`postgres_cluster()` runs `initdb` into a new temporary directory, starts `postgres`
on 127.0.0.1 (and a Unix socket in that directory; with `network`, also on an address
that hosts in network namespaces reach, netns.py), and removes it all on exit. As
root it runs the server as the `postgres` user that Debian's package creates (or
`nobody`): PostgreSQL refuses to run as root. Tests and benchmarks get one database
each with `create_database()`; `stop()` and `start()` take the server away and bring it
back on the same port and data (the fault tests).

Durability is off (fsync, synchronous_commit, full_page_writes): the cluster lives
as long as one test session, and a lost write there costs nothing.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pyupdate_testing.server import free_port

SUPERUSER = "pyupdate"
DEBIAN_BIN = Path("/usr/lib/postgresql")


def pg_bin() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin with initdb and postgres, if any."""
    found = []
    for bin_dir in DEBIAN_BIN.glob("*/bin"):
        version = bin_dir.parent.name
        tools = all((bin_dir / tool).exists() for tool in ("initdb", "postgres"))
        if re.fullmatch(r"\d+", version) and tools:
            found.append((int(version), bin_dir))
    return max(found)[1] if found else None


def unavailable() -> str | None:
    """Why no cluster can be started here (None if one can)."""
    if pg_bin() is None:
        return f"no PostgreSQL server binaries under {DEBIAN_BIN} (apt-get install postgresql)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    return None


def _service_user() -> pwd.struct_passwd | None:
    """Who runs the server: ourselves, or as root an unprivileged account."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root, and neither a postgres nor a nobody user exists")


@dataclass
class PostgresCluster:
    """A running temporary cluster.

    Args:
        root: its directory (data/, the socket, postgres.log).
        port: the TCP port on 127.0.0.1.
        bin_dir: where initdb and postgres come from.
        network: (address, cidr): also listen on `address` and trust clients from
            `cidr` (e.g. a bridge's gateway and subnet, netns.py); None for loopback only.
        shared_buffers: PostgreSQL's buffer cache: small for the tests' small databases,
            sized like a production server's by the benchmarks (bench/server_scale.py).
    """

    root: Path
    port: int
    bin_dir: Path
    network: tuple[str, str] | None = None
    shared_buffers: str = "32MB"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _names: Iterator[int] = field(default_factory=itertools.count, repr=False)

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str = "postgres", host: str = "127.0.0.1") -> str:
        """What `--database-url` takes (trust authentication: no password)."""
        return f"postgresql://{SUPERUSER}@{host}:{self.port}/{database}"

    def _run_as(self) -> dict[str, object]:
        user = _service_user()
        if user is None:
            return {}
        return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    def init(self) -> None:
        user = _service_user()
        if user is not None:
            os.chown(self.root, user.pw_uid, user.pw_gid)
        subprocess.run(
            [str(self.bin_dir / "initdb"), "-D", str(self.root / "data"), "-U", SUPERUSER,
             "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"],
            check=True, capture_output=True, timeout=120, cwd=self.root, **self._run_as(),
        )  # fmt: skip
        if self.network is not None:
            with open(self.root / "data" / "pg_hba.conf", "a") as hba:
                hba.write(f"host all all {self.network[1]} trust\n")

    def start(self, timeout: float = 60) -> None:
        """Start the server (again) and wait until it accepts connections."""
        listen = "127.0.0.1" + (f",{self.network[0]}" if self.network else "")
        cmd = [
            str(self.bin_dir / "postgres"), "-D", str(self.root / "data"),
            "-p", str(self.port), "-k", str(self.root),
            "-c", f"listen_addresses={listen}", "-c", "max_connections=200",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", f"shared_buffers={self.shared_buffers}",
        ]  # fmt: skip
        out = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self.process = subprocess.Popen(
                cmd, stdout=out, stderr=out, start_new_session=True, cwd=self.root,
                **self._run_as(),  # type: ignore[arg-type]
            )  # fmt: skip
        finally:
            os.close(out)
        deadline = time.monotonic() + timeout
        while not self.accepts():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"postgres did not start:\n{self.log.read_text()[-4000:]}")
            time.sleep(0.05)

    def accepts(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url(), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, as when a database host goes away."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def execute(self, sql: str) -> None:
        """One statement on the `postgres` database, outside a transaction."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self, name: str | None = None, template: str | None = None) -> str:
        """A new empty database (a copy of `template` if given); returns its URL."""
        name = name or f"test_{next(self._names)}"
        copy = f' TEMPLATE "{template}"' if template else ""
        self.execute(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop it even while servers are still connected (their sessions are ended)."""
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def postgres_cluster(
    root: Path | None = None,
    network: tuple[str, str] | None = None,
    shared_buffers: str = "32MB",
) -> Iterator[PostgresCluster]:
    """A running cluster in `root` (a new temporary directory by default); removed on exit.

    network: (address, cidr) to listen on and trust besides 127.0.0.1 (PostgresCluster).

    The directory must be reachable by the service user when running as root, so the
    default is a fresh directory of its own rather than pytest's (0700, root's) tmp_path:
    in /dev/shm when there is one (a database per test is created in tens of
    milliseconds there, ten times slower on a disk busy with other work), else in /tmp.
    """
    bin_dir = pg_bin()
    if bin_dir is None:
        raise RuntimeError(unavailable())
    own = root is None
    if root is None:
        shm = Path("/dev/shm")
        base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
        root = Path(tempfile.mkdtemp(prefix="pyupdate-pg-", dir=base))
    root.mkdir(parents=True, exist_ok=True)
    cluster = PostgresCluster(root, free_port(), bin_dir, network, shared_buffers)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        if own:
            shutil.rmtree(root, ignore_errors=True)
