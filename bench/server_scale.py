"""Benchmark `pyupdate-server` at fleet scale, SQLite and PostgreSQL side by side.

    .venv/bin/python bench/server_scale.py --devices 1000000 --seconds 20
    .venv/bin/python bench/server_scale.py --devices 10000 --seconds 5 --e2e 2000  # smoke

For each engine (SQLite, and PostgreSQL in a temporary cluster, pyupdate_testing.postgres):
preload `--devices` accepted devices once (bench/fleet.py), then for each process count
in `--procs` start from a fresh copy of that database and measure, with real device
requests on loopback:

* auth: the `--active` devices sign auth requests with their own keys (one each);
* inventory_same: PUTs of the ten preloaded attributes, unchanged (a fleet's steady state),
  closed loop for `--seconds`; inventory: the same plus an uptime that changes each time;
* checks_idle: deployment checks with nothing due, closed loop (the most it can do);
* checks_paced: the same at a fixed `--rate` (open loop; latency counted from when each
  request was due, so a stall shows in p99);
* a fleet-wide deployment (all devices): its creation time, then checks_due (hand-outs)
  by devices of the fleet that have not had it yet (after the one-off work the new rows
  leave, timed apart: `settle`), then status_reports (downloading,
  installing, success) by the devices that got it, each closed loop for `--seconds`.

Then one more fresh copy with the largest process count runs the end-to-end case: a
deployment to the `--e2e` devices of one group, every one of them checking in, getting
it and reporting downloading, installing and success, timed until the deployment is
finished. Several processes are `serve --workers N` when the server has that setting,
else N servers on one database on N ports with the load spread across them.
CPU is read from /proc for the servers, PostgreSQL, the load generator and the rest of
the VM. Writes bench/results/server-scale-<date>.md (progress to stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import json
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from fleet import (
    E2E_GROUP,
    Engine,
    Fleet,
    identity,
    inventory,
    postgres_engine,
    preload,
    sqlite_engine,
)
from procstat import Meter, rss_mib
from server_scale_report import report

from pyupdate_server.settings import Settings
from pyupdate_testing.server import ADMIN, Server, live_server
from server import NEXT, Conn, Device, Timings, make_artifact

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret-" + "0" * 40
STATUS = NEXT.rsplit("/", 1)[0]
PROVIDES = json.dumps({"artifact_name": "base", "device_type": "bench"}).encode()
JSON = {"Content-Type": "application/json"}


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


@dataclasses.dataclass
class Target:
    """The server processes of one round, and how to reach them."""

    servers: list[Server]
    ports: list[int]
    meter: Meter
    url: str  # the round's database

    async def conns(self, n: int) -> list[Conn]:
        """`n` keep-alive connections, opened one after the other as a fleet's arrive: a
        burst of 32 at once lands on whichever `serve --workers` process wakes first
        (its event loop accepts all that wait), where devices connecting over time
        spread across the workers."""
        conns = [Conn(self.ports[i % len(self.ports)]) for i in range(n)]
        for conn in conns:
            await conn.request("GET", "/health")
        return conns


def workers_setting() -> bool:
    return "workers" in {f.name for f in dataclasses.fields(Settings)}


@contextlib.contextmanager
def start_servers(root: Path, url: str, procs: int, db_roots: set[int]) -> Iterator[Target]:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "server.toml"
    lines = [f'secret_key = "{SECRET}"']
    if procs > 1 and workers_setting():
        lines.append(f"workers = {procs}")
    config.write_text("\n".join(lines) + "\n")
    data = root / "data"
    data.mkdir(exist_ok=True)
    url_arg = None if url.startswith("sqlite") else url
    n = 1 if workers_setting() else procs
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(
                live_server(
                    root / f"s{i}",
                    data_dir=data,
                    config=config,
                    database_url=url_arg,
                    create_admin=i == 0,
                )
            )
            for i in range(n)
        ]
        roots = {s.process.pid for s in servers}
        yield Target(servers, [s.port for s in servers], Meter(roots, db_roots), url)


def settle(url: str) -> None:
    """The one-off work a fleet-wide deployment's million new rows leave behind, done
    before the hand-outs are timed: left to itself it lands in whichever phase runs next,
    as CPU per request of that phase. PostgreSQL: autovacuum's pass (hint bits, the
    visibility map, the planner's statistics; within a minute). SQLite: the checkpoint
    of the insert's WAL into the database file (by the next writer)."""
    if url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) device_deployments")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **JSON}


async def closed_loop(conns, items, seconds, one) -> tuple[Timings, float]:  # type: ignore[no-untyped-def]
    """Each connection takes the next item and runs `one(conn, item, timings)` until the
    items or the time run out; returns the timings and the wall time."""
    timings = Timings()
    queue = iter(items)
    deadline = time.perf_counter() + seconds

    async def worker(conn: Conn) -> None:
        for item in queue:
            if time.perf_counter() >= deadline:
                return
            await one(conn, item, timings)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    return timings, time.perf_counter() - t0


def cycle(items: list) -> Iterator:  # type: ignore[type-arg]
    while True:
        yield from items


async def timed(
    timings: Timings, conn: Conn, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    t = time.perf_counter()
    status, _, data = await conn.request(method, path, body, headers)
    timings.add(time.perf_counter() - t, status)
    return status, data


def summary(timings: Timings, wall: float, cpu: dict[str, float]) -> dict[str, object]:
    return {**timings.summary(wall), "statuses": timings.statuses, "wall_s": wall, **cpu}


async def phase(target: Target, name: str, coro, out: dict) -> None:  # type: ignore[no-untyped-def]
    target.meter.start()
    timings, wall = await coro
    out[name] = summary(timings, wall, target.meter.stop())
    s = out[name]
    log(
        f"  {name}: {s['n']} in {wall:.1f} s, {s['per_s']:.0f}/s, p99 {s['p99_ms']:.1f} ms "
        f"{s['statuses']}"
    )


async def admin_headers(port: int) -> tuple[Conn, dict[str, str]]:
    admin = Conn(port)
    basic = base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
    _, _, tok = await admin.request(
        "POST", "/api/management/v1/useradm/auth/login", headers={"Authorization": f"Basic {basic}"}
    )
    return admin, {"Authorization": f"Bearer {tok.decode()}"}


async def upload(admin: Conn, auth: dict[str, str], artifact: Path) -> None:
    boundary = "benchboundary"
    form = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="artifact"; filename="a.mender"'
            "\r\nContent-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + artifact.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, _, data = await admin.request(
        "POST",
        "/api/management/v1/deployments/artifacts",
        form,
        {**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert status == 201, data


async def create_deployment(admin: Conn, auth: dict[str, str], path: str, body: dict) -> str:
    admin.reader = admin.writer = None  # a fresh connection: the last one may have idled out
    status, headers, data = await admin.request(
        "POST",
        f"/api/management/v1/deployments/{path}",
        json.dumps(body).encode(),
        {**auth, **JSON},
    )
    assert status == 201, (status, data)
    return headers["location"].rsplit("/", 1)[1]


async def update_one(conn: Conn, token: str, check: Timings, reports: Timings) -> bool:
    """One device's whole update: check (200), downloading, installing, success."""
    h = bearer(token)
    status, data = await timed(check, conn, "POST", NEXT, PROVIDES, h)
    if status != 200:
        return False
    dep = json.loads(data)["id"]
    for state in ("downloading", "installing", "success"):
        body = json.dumps({"status": state}).encode()
        await timed(reports, conn, "PUT", f"{STATUS}/{dep}/status", body, h)
    return True


async def run_round(
    target: Target, fleet: Fleet, args: argparse.Namespace, artifact: Path
) -> dict[str, object]:
    out: dict[str, object] = {}
    conns = await target.conns(args.conns)
    devices = [Device(json.loads(identity(i)), k) for i, k in enumerate(fleet.keys)]

    async def auth(conn: Conn, d: Device, t: Timings) -> None:
        body = d.auth_body()
        h = {**JSON, "X-MEN-Signature": d.signature(body)}
        status, data = await timed(
            t, conn, "POST", "/api/devices/v1/authentication/auth_requests", body, h
        )
        if status == 200:
            d.token = data.decode()

    await phase(target, "auth", closed_loop(conns, devices, 600, auth), out)
    assert all(d.token for d in devices), "an active device got no token"

    def put_inventory(
        changing: bool,
    ) -> Callable[[Conn, tuple[int, Device], Timings], Awaitable[None]]:
        async def put(conn: Conn, item: tuple[int, Device], t: Timings) -> None:
            i, d = item
            # the ten preloaded attributes, and for `changing` an uptime that changes on
            # every PUT (a fleet's steady state is the same attributes again)
            attrs = inventory(i)
            if changing:
                attrs["uptime_s"] = int(time.time() * 1000) % 86_400_000
            body = json.dumps([{"name": k, "value": v} for k, v in attrs.items()]).encode()
            await timed(t, conn, "PUT", "/api/devices/v1/inventory/device/attributes", body,
                        bearer(d.token))  # fmt: skip

        return put

    numbered = list(enumerate(devices))
    for name, changing in (("inventory_same", False), ("inventory", True)):
        run = closed_loop(conns, cycle(numbered), args.seconds, put_inventory(changing))
        await phase(target, name, run, out)

    async def check(conn: Conn, d: Device, t: Timings) -> None:
        await timed(t, conn, "POST", NEXT, PROVIDES, bearer(d.token))

    await phase(target, "checks_idle", closed_loop(conns, cycle(devices), args.seconds, check), out)
    await phase(target, "checks_paced", paced(conns, devices, args.rate, args.seconds), out)

    admin, auth_h = await admin_headers(target.ports[0])
    await upload(admin, auth_h, artifact)
    target.meter.start()
    t = time.perf_counter()
    await create_deployment(
        admin,
        auth_h,
        "deployments",
        {"name": "fleet", "artifact_name": "bench-1", "all_devices": True},
    )
    out["deploy_create"] = {"wall_s": time.perf_counter() - t, **target.meter.stop()}
    log(f"  deployment to {fleet.count} devices created in {out['deploy_create']['wall_s']:.1f} s")
    target.meter.start()
    t = time.perf_counter()
    await asyncio.to_thread(settle, target.url)
    out["deploy_settle"] = {"wall_s": time.perf_counter() - t, **target.meter.stop()}
    log(f"  then settled (VACUUM or checkpoint) in {out['deploy_settle']['wall_s']:.1f} s")

    handed: list[tuple[str, str]] = []
    pool = range(len(fleet.keys), len(fleet.ids))

    async def due(conn: Conn, i: int, t: Timings) -> None:
        token = fleet.token(i)
        status, data = await timed(t, conn, "POST", NEXT, PROVIDES, bearer(token))
        if status == 200:
            handed.append((token, json.loads(data)["id"]))

    await phase(target, "checks_due", closed_loop(conns, pool, args.seconds, due), out)

    async def report_one(conn: Conn, item: tuple[str, str, str], t: Timings) -> None:
        token, dep, state = item
        body = json.dumps({"status": state}).encode()
        await timed(t, conn, "PUT", f"{STATUS}/{dep}/status", body, bearer(token))

    # device by device, each its three reports in order (a connection takes one device)
    async def reports() -> tuple[Timings, float]:
        timings = Timings()
        queue = iter(handed)
        deadline = time.perf_counter() + args.seconds

        async def worker(conn: Conn) -> None:
            for token, dep in queue:
                for state in ("downloading", "installing", "success"):
                    if time.perf_counter() >= deadline:
                        return
                    await report_one(conn, (token, dep, state), timings)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(c) for c in conns))
        return timings, time.perf_counter() - t0

    await phase(target, "status_reports", reports(), out)
    for c in [*conns, admin]:
        if c.writer:
            c.writer.close()
    return out


async def paced(
    conns: list[Conn], devices: list[Device], rate: float, seconds: float
) -> tuple[Timings, float]:
    """Open loop: request k is due at t0 + k/rate; latency counts from then."""
    timings = Timings()
    total = int(rate * seconds)
    counter = iter(range(total))
    t0 = time.perf_counter() + 0.1

    async def worker(conn: Conn) -> None:
        for k in counter:
            due_at = t0 + k / rate
            delay = due_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            d = devices[k % len(devices)]
            status, _, _ = await conn.request("POST", NEXT, PROVIDES, bearer(d.token))
            timings.add(time.perf_counter() - due_at, status)

    await asyncio.gather(*(worker(c) for c in conns))
    return timings, time.perf_counter() - t0


async def run_e2e(
    target: Target, fleet: Fleet, args: argparse.Namespace, artifact: Path
) -> dict[str, object]:
    admin, auth_h = await admin_headers(target.ports[0])
    await upload(admin, auth_h, artifact)
    target.meter.start()
    t0 = time.perf_counter()
    dep = await create_deployment(
        admin, auth_h, f"deployments/group/{E2E_GROUP}", {"name": "e2e", "artifact_name": "bench-1"}
    )
    created = time.perf_counter() - t0
    log(f"  e2e: deployment to {fleet.e2e} devices created in {created:.1f} s")
    check, reports = Timings(), Timings()
    done = 0
    first = len(fleet.keys)
    queue = iter(range(first, first + fleet.e2e))
    deadline = t0 + args.e2e_max_seconds

    async def worker(conn: Conn) -> None:
        nonlocal done
        for i in queue:
            if time.perf_counter() >= deadline:
                return
            if not await update_one(conn, fleet.token(i), check, reports):
                continue
            done += 1
            if done % 10_000 == 0:
                log(f"  e2e: {done} devices done, {time.perf_counter() - t0:.0f} s")

    await asyncio.gather(*(worker(c) for c in await target.conns(args.conns)))
    wall = time.perf_counter() - t0
    cpu = target.meter.stop()
    admin.reader = admin.writer = None
    _, _, data = await admin.request(
        "GET", f"/api/management/v1/deployments/deployments/{dep}", headers=auth_h
    )
    state = json.loads(data)
    return {
        "devices": fleet.e2e,
        "completed": done,
        "create_s": created,
        "wall_s": wall,
        "status": state["status"],
        "statistics": {k: v for k, v in state["statistics"].items() if v},
        "checks": summary(check, wall, {}),
        "reports": summary(reports, wall, {}),
        **cpu,
    }


def bench_engine(
    engine: Engine, tmp: Path, args: argparse.Namespace, artifact: Path
) -> dict[str, object]:
    log(f"{engine.name}: preloading {args.devices} devices ...")
    t = time.perf_counter()
    known = args.active + max(args.e2e, args.due_devices)
    fleet = preload(
        engine.template_url, args.devices, args.active, args.e2e, known, SECRET.encode()
    )
    result: dict[str, object] = {
        "engine": engine.name,
        "registered": args.devices,
        "preload_s": time.perf_counter() - t,
        "db_mib_preloaded": engine.size_mib(engine.template_url),
        "rounds": [],
    }
    log(
        f"{engine.name}: preloaded in {result['preload_s']:.0f} s, "
        f"{result['db_mib_preloaded']:.0f} MiB"
    )
    for procs in args.procs:
        name = f"{engine.name}_{procs}"
        url = engine.clone(name)
        log(f"{name}: {procs} server process(es)")
        with start_servers(tmp / name, url, procs, engine.db_roots) as target:
            rss_start = rss_mib(target.meter.servers)[0]
            out = asyncio.run(run_round(target, fleet, args, artifact))
            rss, hwm = rss_mib(target.meter.servers)
        out.update(
            procs=procs,
            rss_start_mib=rss_start,
            rss_mib=rss,
            hwm_mib=hwm,
            db_mib_after=engine.size_mib(url),
            mode=_mode(procs),
        )
        result["rounds"].append(out)  # type: ignore[attr-defined]
        engine.drop(name)
    if args.e2e:
        procs = max(args.procs)
        url = engine.clone(f"{engine.name}_e2e")
        log(f"{engine.name}: end to end, {args.e2e} devices, {procs} process(es)")
        with start_servers(tmp / f"{engine.name}_e2e", url, procs, engine.db_roots) as target:
            e2e = asyncio.run(run_e2e(target, fleet, args, artifact))
        result["e2e"] = {**e2e, "procs": procs, "db_mib_after": engine.size_mib(url)}
        engine.drop(f"{engine.name}_e2e")
        log(f"  e2e: {e2e['completed']} devices in {e2e['wall_s']:.0f} s, {e2e['status']}")
    return result


def _mode(procs: int) -> str:
    if procs == 1:
        return "one process"
    if workers_setting():
        return f"serve --workers {procs}"
    return f"{procs} servers on {procs} ports, load spread across them"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1_000_000, help="registered devices")
    parser.add_argument("--active", type=int, default=300, help="devices with their own keys")
    parser.add_argument("--seconds", type=float, default=20, help="length of each phase")
    parser.add_argument("--conns", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--rate", type=float, default=556, help="checks/s of checks_paced")
    parser.add_argument(
        "--due-devices", type=int, default=20_000, help="fleet devices available to checks_due"
    )
    parser.add_argument("--e2e", type=int, default=100_000, help="end-to-end deployment size")
    parser.add_argument("--e2e-max-seconds", type=float, default=1800)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument(
        "--pg-shared-buffers",
        default="1GB",
        help="PostgreSQL's buffer cache (a production server's is a quarter of its RAM; "
        "the test harness's 32MB holds a fiftieth of a 1M-device database)",
    )
    parser.add_argument("--procs", default="1,2", type=lambda s: [int(p) for p in s.split(",")])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    from pyupdate_testing.postgres import postgres_cluster, unavailable

    results = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="pyupdate-scale-") as tmp_s:
        tmp = Path(tmp_s)
        artifact = make_artifact(tmp)
        with contextlib.ExitStack() as stack:
            for name in args.engines.split(","):
                if name == "sqlite":
                    engine = sqlite_engine(tmp)
                else:
                    if unavailable():
                        raise SystemExit(f"postgresql: {unavailable()}")
                    cluster = postgres_cluster(shared_buffers=args.pg_shared_buffers)
                    engine = postgres_engine(stack.enter_context(cluster))
                results.append(bench_engine(engine, tmp, args, artifact))
                # the raw figures so far, in the log: a later failure loses nothing
                log(json.dumps(results[-1], default=str))
    out = args.out or _new_results_file(
        ROOT / "bench" / "results", f"server-scale-{dt.date.today()}"
    )
    out.write_text(report(results, args, argv or sys.argv[1:], time.time() - started))
    print(out)
    return 0


def _new_results_file(folder: Path, stem: str) -> Path:
    """folder/stem.md, or stem-b.md, stem-c.md, ...: a second run on one day never
    overwrites the first's committed results."""
    for suffix in ["", *(f"-{c}" for c in "bcdefghijklmnopqrstuvwxyz")]:
        path = folder / f"{stem}{suffix}.md"
        if not path.exists():
            return path
    raise SystemExit(f"error: {folder}: 26 results files named {stem}* already")


if __name__ == "__main__":
    sys.exit(main())
