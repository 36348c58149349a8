"""The Markdown report of bench/server_scale.py: SQLite and PostgreSQL side by side."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sqlite3
import subprocess
from pathlib import Path

PHASES = (
    "auth",
    "inventory_same",
    "inventory",
    "checks_idle",
    "checks_paced",
    "checks_due",
    "status_reports",
)
GOAL_RATE = 556  # 1M devices polling every 30 minutes
GOAL_P99_MS = 100
SQLITE_DUE_TODAY = (69, 100)  # bench/results/server-2026-11-23.md, 100K and 10K devices


def machine() -> str:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "?",
    )
    mem = next(
        int(ln.split()[1])
        for ln in Path("/proc/meminfo").read_text().splitlines()
        if ln.startswith("MemTotal")
    )
    from pyupdate_testing.postgres import pg_bin

    pg = pg_bin()
    pg_version = "none"
    if pg is not None:
        pg_version = subprocess.run(
            [str(pg / "postgres"), "--version"], capture_output=True, text=True
        ).stdout.strip()
    return (
        f"{platform.platform()}, {os.cpu_count()} vCPU ({cpu}), {mem / 2**20:.1f} GiB RAM, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {pg_version}"
    )


def git_state() -> str:
    """The commit of the server that ran (the checkout pyupdate_server was imported from:
    PYTHONPATH may point at another worktree), and whether its server/ had changes."""
    import pyupdate_server

    here = Path(pyupdate_server.__file__).parent

    def run(*cmd: str) -> str:
        return subprocess.run(["git", *cmd], capture_output=True, text=True,
                              cwd=here).stdout.strip()  # fmt: skip

    changed = run("status", "--porcelain", "--", "../..")
    files = ", ".join(line.split(maxsplit=1)[1] for line in changed.splitlines())
    return run("rev-parse", "--short", "HEAD") + (f" with changes in {files}" if files else "")


def _ms(cpu_s: float, n: int) -> str:
    return f"{cpu_s / n * 1000:.2f}" if n else "-"


def phase_rows(results: list[dict]) -> list[str]:
    lines = [
        "| phase | engine | procs | requests | req/s | p50 ms | p99 ms | server CPU ms/req | "
        "db CPU ms/req | client CPU ms/req | req per server+db CPU-s | other load % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in PHASES:
        for r in results:
            for rnd in r["rounds"]:
                s = rnd[name]
                n = s["n"]
                work = s["cpu_server_s"] + s["cpu_db_s"]
                other = 100 * s["cpu_other_s"] / s["wall_s"] / (os.cpu_count() or 1)
                lines.append(
                    f"| {name} | {r['engine']} | {rnd['procs']} | {n} | {s['per_s']:.0f} | "
                    f"{s['p50_ms']:.1f} | {s['p99_ms']:.1f} | {_ms(s['cpu_server_s'], n)} | "
                    f"{_ms(s['cpu_db_s'], n)} | {_ms(s['cpu_client_s'], n)} | "
                    f"{n / work if work else 0:.0f} | {other:.0f} |"
                )
    return lines


def goals(results: list[dict]) -> list[str]:
    low, high = (5 * x for x in SQLITE_DUE_TODAY)
    lines = []
    for r in results:
        for rnd in r["rounds"]:
            paced, idle, due = rnd["checks_paced"], rnd["checks_idle"], rnd["checks_due"]
            held = paced["per_s"] >= GOAL_RATE * 0.98 and paced["p99_ms"] < GOAL_P99_MS
            rate = due["per_s"]
            verdict = (
                "met" if rate >= high else f"met against {low}/s only" if rate >= low else "NOT met"
            )
            lines.append(
                f"- {r['engine']}, {rnd['procs']} process(es): {paced['per_s']:.0f} checks/s "
                f"paced, p99 {paced['p99_ms']:.1f} ms: {'held' if held else 'NOT held'} (at most "
                f"{idle['per_s']:.0f} checks/s, p99 {idle['p99_ms']:.1f} ms); due checks "
                f"{rate:.0f}/s, {rate / SQLITE_DUE_TODAY[0]:.1f}x 69/s and "
                f"{rate / SQLITE_DUE_TODAY[1]:.1f}x 100/s: {verdict} (5x is {low}-{high}/s)"
            )
    return lines


def report(results: list[dict], args: argparse.Namespace, argv: list[str], took: float) -> str:
    lines = [
        f"# pyupdate-server at scale, {results[0]['registered']:,} devices: SQLite and PostgreSQL",
        "",
        f"Machine: {machine()}. Shared with other work (see `other load %`: CPU used by "
        "neither the servers, PostgreSQL nor the load generator). Load generator in the same "
        f"VM: one asyncio process, {args.conns} keep-alive connections. PostgreSQL: a "
        f"temporary cluster in /dev/shm, fsync off, shared_buffers {args.pg_shared_buffers}.",
        "",
        f"Tree: {git_state()}. Command (took {took / 60:.0f} min):",
        "",
        f"    .venv/bin/python bench/server_scale.py {shlex.join(argv)}",
        "",
        "| engine | registered | preload s | database MiB preloaded |",
        "|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['engine']} | {r['registered']:,} | {r['preload_s']:.0f} | "
            f"{r['db_mib_preloaded']:.0f} |"
        )
    lines += ["", "## Requests", "", *phase_rows(results), ""]
    lines += [
        "| engine | procs | how | deployment to all created s | then settled s (CPU s) | "
        "database MiB after | server RSS start MiB | RSS end MiB | peak MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for rnd in r["rounds"]:
            lines.append(
                f"| {r['engine']} | {rnd['procs']} | {rnd['mode']} | "
                f"{rnd['deploy_create']['wall_s']:.1f} | {_settle(rnd)} | {rnd['db_mib_after']:.0f} | "
                f"{rnd['rss_start_mib']:.0f} | {rnd['rss_mib']:.0f} | {rnd['hwm_mib']:.0f} |"
            )
    lines += ["", "## End to end", ""]
    lines += [
        "| engine | procs | devices | completed | created s | wall s | devices/s | status | "
        "check p99 ms | report p99 ms | server CPU s | db CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        e = r.get("e2e")
        if e:
            lines.append(
                f"| {r['engine']} | {e['procs']} | {e['devices']:,} | {e['completed']:,} | "
                f"{e['create_s']:.1f} | {e['wall_s']:.0f} | {e['completed'] / e['wall_s']:.0f} | "
                f"{e['status']} | {e['checks']['p99_ms']:.1f} | {e['reports']['p99_ms']:.1f} | "
                f"{e['cpu_server_s']:.0f} | {e['cpu_db_s']:.0f} |"
            )
    lines += ["", "## Goals", "", *goals(results), ""]
    lines += ["Raw results:", "", "```json", json.dumps(results, indent=1, default=str), "```", ""]
    return "\n".join(lines)


def _settle(rnd: dict) -> str:
    """bench/server_scale.py `settle`: VACUUM (PostgreSQL) or WAL checkpoint (SQLite)."""
    v = rnd.get("deploy_settle")
    if not v:
        return "-"
    cpu = v["cpu_server_s"] + v["cpu_db_s"] + v["cpu_client_s"]
    return f"{v['wall_s']:.1f} ({cpu:.1f})"
