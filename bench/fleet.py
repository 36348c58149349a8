"""A registered fleet written straight into the server's database, for the scale bench.

Registration is not what bench/server_scale.py measures, so a million accepted devices
are bulk-inserted after the server's own migrations made the schema: executemany in
one transaction on SQLite, COPY on PostgreSQL. Each device has an identity, one
accepted auth set with a public key and an inventory of ten attributes, like a device
that has been polling for a while. The `active` first devices get keys of their own
(they sign real auth requests); the others share one public key, which costs the
server nothing more or less per row.

Each round of the bench starts from its own copy of the preloaded database (`Engine`:
a file copy on SQLite, CREATE DATABASE ... TEMPLATE on PostgreSQL), dropped afterwards.

`Fleet.token()` mints the device token the server would hand out after an auth request
(same secret, same claims): the deployment phases drive tens of thousands of devices,
and signing that many auth requests would measure admission, not rollouts.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pyupdate_server.auth.jwt import TokenSigner
from pyupdate_server.db.engine import Database, sqlite_path

DEVICE_TYPE = "bench"
E2E_GROUP = "e2e"
BATCH = 20_000
_COLUMNS = {
    "devices": ("id", "identity", "status", "inventory", "group", "created", "updated"),
    "auth_sets": ("id", "device_id", "pubkey", "status", "created"),
}


def identity(i: int) -> str:
    """The canonical JSON the server stores (sorted keys, no spaces)."""
    mac = ":".join(f"{b:02x}" for b in (0x02, 0, *(i.to_bytes(4, "big"))))
    return json.dumps({"mac": mac}, sort_keys=True, separators=(",", ":"))


def inventory(i: int) -> dict[str, object]:
    return {
        "device_type": DEVICE_TYPE,
        "artifact_name": "base",
        "rootfs-image.version": "base",
        "hostname": f"dev-{i:07d}",
        "kernel": "Linux version 6.1.0-13-arm64 (debian-kernel@lists.debian.org)",
        "os": "Debian GNU/Linux 12 (bookworm)",
        "cpu_model": "ARMv8 Processor rev 4 (v8l)",
        "mem_total_kB": 1_012_000 + i % 1000,
        "ipv4_eth0": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/16",
        "mac_eth0": json.loads(identity(i))["mac"],
    }


def public_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@dataclass
class Fleet:
    """What was preloaded: the ids the load generator needs, and the token signer.

    Args:
        count: registered devices.
        keys: private keys of the first len(keys) devices (the active ones).
        ids: (device id, auth set id) of the first `known` devices.
        e2e: the devices after the active ones that are in group E2E_GROUP.
    """

    count: int
    keys: list[ec.EllipticCurvePrivateKey]
    ids: list[tuple[str, str]] = field(default_factory=list)
    e2e: int = 0
    secret: bytes = b""

    def token(self, index: int) -> str:
        device_id, auth_id = self.ids[index]
        return TokenSigner(self.secret).issue(device_id, "device", 7 * 24 * 3600, auth_id)


def rows(fleet: Fleet, shared_pem: str, now: dt.datetime) -> Iterator[tuple[list, list]]:
    """(devices, auth_sets) rows in batches; ids are kept for the first len(ids) devices."""
    active = len(fleet.keys)
    pems = [public_pem(k) for k in fleet.keys]
    for start in range(0, fleet.count, BATCH):
        devices, sets = [], []
        for i in range(start, min(fleet.count, start + BATCH)):
            device_id, auth_id = str(uuid.uuid4()), str(uuid.uuid4())
            if i < len(fleet.ids):
                fleet.ids[i] = (device_id, auth_id)
            group = E2E_GROUP if active <= i < active + fleet.e2e else f"site-{i % 50}"
            inv = json.dumps(inventory(i))
            devices.append((device_id, identity(i), "accepted", inv, group, now, now))
            pem = pems[i] if i < active else shared_pem
            sets.append((auth_id, device_id, pem, "accepted", now))
        yield devices, sets


def preload(url: str, count: int, active: int, e2e: int, known: int, secret: bytes) -> Fleet:
    """Migrate `url`, then insert `count` accepted devices; returns what the bench needs."""
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(active)]
    fleet = Fleet(count, keys, [("", "")] * min(count, known), e2e, secret)
    db = Database(url)
    db.migrate()
    db.dispose()
    shared = public_pem(ec.generate_private_key(ec.SECP256R1()))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    path = sqlite_path(url)
    if path is not None:
        _load_sqlite(str(path), rows(fleet, shared, now))
    else:
        _load_postgres(url, rows(fleet, shared, now))
    return fleet


def _load_sqlite(path: str, batches: Iterator[tuple[list, list]]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    # a throwaway load: no fsync, and a cache large enough for the random uuid keys
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    conn.execute("BEGIN")
    for devices, sets in batches:
        stamp = [(*r[:5], _sqlite_time(r[5]), _sqlite_time(r[6])) for r in devices]
        conn.executemany(_insert("devices", "?"), stamp)
        conn.executemany(_insert("auth_sets", "?"), [(*r[:4], _sqlite_time(r[4])) for r in sets])
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _sqlite_time(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's DateTime on SQLite


def _insert(table: str, mark: str) -> str:
    cols = _COLUMNS[table]
    quoted = ", ".join(f'"{c}"' for c in cols)
    return f"INSERT INTO {table} ({quoted}) VALUES ({', '.join([mark] * len(cols))})"


def _load_postgres(url: str, batches: Iterator[tuple[list, list]]) -> None:
    import psycopg

    with psycopg.connect(url.replace("+psycopg", "")) as conn:
        for devices, sets in batches:
            with conn.cursor() as cur:
                for table, data in (("devices", devices), ("auth_sets", sets)):
                    cols = ", ".join(f'"{c}"' for c in _COLUMNS[table])
                    with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                        copy.write(_copy_text(data))
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE devices")
        conn.execute("VACUUM ANALYZE auth_sets")


def _copy_text(data: list[tuple]) -> bytes:
    """COPY's text format; our values hold no tabs or backslashes, PEMs hold newlines."""
    out = io.StringIO()
    for row in data:
        out.write("\t".join(str(v).replace("\n", "\\n") for v in row))
        out.write("\n")
    return out.getvalue().encode()


@dataclass
class Engine:
    """One database engine: where its pristine preloaded copy is and how to clone it."""

    name: str
    template_url: str
    clone: Callable[[str], str]  # round name -> URL of a fresh copy
    size_mib: Callable[[str], float]
    drop: Callable[[str], None]  # round name: the copy is removed
    db_roots: set[int]  # the database server processes (none for SQLite: in the server)


def sqlite_engine(tmp: Path) -> Engine:
    template = tmp / "template.db"

    def clone(name: str) -> str:
        (tmp / name / "data").mkdir(parents=True)
        target = tmp / name / "data" / "server.db"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"

    def size(url: str) -> float:
        path = Path(url.removeprefix("sqlite:///"))
        return sum(f.stat().st_size for f in path.parent.glob(path.name + "*")) / 2**20

    def drop(name: str) -> None:
        shutil.rmtree(tmp / name / "data", ignore_errors=True)

    return Engine("sqlite", f"sqlite:///{template}", clone, size, drop, set())


def postgres_engine(cluster) -> Engine:  # type: ignore[no-untyped-def]
    import psycopg

    cluster.create_database("template_fleet")

    def clone(name: str) -> str:
        return cluster.create_database(name, template="template_fleet")

    def size(url: str) -> float:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        return row[0] / 2**20 if row else 0.0

    return Engine(
        "postgresql",
        cluster.url("template_fleet"),
        clone,
        size,
        cluster.drop_database,
        {cluster.process.pid},
    )
