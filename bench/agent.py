"""Idle cost of `pyupdate daemon` vs Debian's `mender` 3.4 daemon, same server, same run.

Both poll one `pyupdate-server serve` on 127.0.0.1 every 5 s through a byte-counting
TCP proxy. After both are authenticated and have polled once, for DURATION seconds:
RSS at the end (VmRSS), CPU seconds (utime+stime, from /proc) extrapolated to an hour,
and bytes sent to the server per update check (request bytes / number of checks).
mender runs as in tests/interop/test_server_mender_client.py (unshare -m with bind
mounts; needs root). Results: bench/results/agent-<date>.md.

    .venv/bin/python bench/agent.py [DURATION]
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pyupdate_testing.daemon_device import make_daemon_device
from pyupdate_testing.proxies import CountingProxy
from pyupdate_testing.server import live_server
from pyupdate_testing.wait import wait_for

ROOT = Path(__file__).resolve().parent.parent

POLL = 5
HZ = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def checks(proxy: CountingProxy) -> int:
    return sum("deployments/next" in r for r in proxy.requests)


def start_mender(root: Path, url: str) -> tuple[subprocess.Popen[bytes], Path]:
    etc, ident, inv, data, mods = (root / n for n in ("etc", "identity", "inventory", "data", "m"))
    for d in (etc, ident, inv, data, mods):
        d.mkdir(parents=True)
    (ident / "mender-device-identity").write_text("#!/bin/sh\necho mac=02:00:00:00:99:99\n")
    (ident / "mender-device-identity").chmod(0o755)
    (etc / "artifact_info").write_text("artifact_name=release-0\n")
    (data / "device_type").write_text("device_type=test-device\n")
    conf = {
        "ServerURL": url, "UpdatePollIntervalSeconds": POLL, "InventoryPollIntervalSeconds": 3600,
        "RetryPollIntervalSeconds": POLL, "DeviceTypeFile": str(data / "device_type"),
        "DBus": {"Enabled": False},
    }  # fmt: skip
    (etc / "mender.conf").write_text(json.dumps(conf))
    mounts = [(etc, "/etc/mender"), (ident, "/usr/share/mender/identity"),
              (inv, "/usr/share/mender/inventory"), (mods, "/usr/share/mender/modules/v3")]  # fmt: skip
    script = " && ".join(f"mount --bind '{s}' '{d}'" for s, d in mounts)
    script += f" && exec mender --config /etc/mender/mender.conf --data '{data}' --no-syslog daemon"
    log = root / "mender.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return proc, log


def measure(agents: dict[str, tuple[int, CountingProxy]], duration: float) -> dict[str, dict]:
    """Both agents over the same window, so machine noise hits both alike."""
    cpu0 = {}
    for name, (pid, proxy) in agents.items():
        proxy.reset()
        cpu0[name] = cpu_seconds(pid)
    time.sleep(duration)
    out = {}
    for name, (pid, proxy) in agents.items():
        n = checks(proxy)
        out[name] = {
            "rss_mib": rss_kib(pid) / 1024,
            "cpu_s_per_hour": (cpu_seconds(pid) - cpu0[name]) * 3600 / duration,
            "checks": n,
            "bytes_per_check": proxy.to_server / n if n else float("nan"),
            "bytes_back_per_check": proxy.to_client / n if n else float("nan"),
        }
    return out


def main(argv: list[str]) -> int:
    duration = float(argv[0]) if argv else 150.0
    if shutil.which("mender") is None or os.geteuid() != 0:
        print("error: needs root and Debian's mender 3.4", file=sys.stderr)
        return 1
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp, live_server(Path(tmp)) as srv:
        p_proxy, m_proxy = CountingProxy(srv.port), CountingProxy(srv.port)
        dev = make_daemon_device(Path(tmp) / "py", srv, server_url=f"http://127.0.0.1:{p_proxy.port}",
                                 UpdatePollIntervalSeconds=POLL, RetryPollIntervalSeconds=POLL,
                                 InventoryPollIntervalSeconds=3600, DeviceKeyType="rsa")  # fmt: skip
        dev.start()
        mender, mlog = start_mender(Path(tmp) / "mender", f"http://127.0.0.1:{m_proxy.port}")
        try:
            pending = wait_for("mender's auth request", lambda: srv.api.get(
                "/api/management/v2/devauth/devices", params={"status": "pending"}).json(),
                60, [mlog])  # fmt: skip
            for d in pending:
                srv.api.put(f"/api/management/v2/devauth/devices/{d['id']}/auth/"
                            f"{d['auth_sets'][0]['id']}/status", json={"status": "accepted"})  # fmt: skip
            wait_for("polls", lambda: checks(p_proxy) >= 2 and checks(m_proxy) >= 4, 90,
                     [mlog, dev.log])  # fmt: skip
            # unshare and sh exec: the child's pid is the mender daemon itself
            assert dev.proc is not None
            results = measure({"pyupdate": (dev.proc.pid, p_proxy),
                               "mender 3.4": (mender.pid, m_proxy)}, duration)  # fmt: skip
        finally:
            dev.stop()
            os.killpg(mender.pid, signal.SIGTERM)
            mender.wait(timeout=10)
    write_report(results, duration)
    return 0


def write_report(results: dict[str, dict[str, float]], duration: float) -> None:
    py, me = results["pyupdate"], results["mender 3.4"]
    cpu = (Path("/proc/cpuinfo").read_text().split("model name")[1].split("\n")[0]).strip(" :\t")
    lines = [
        f"# pyupdate daemon vs mender 3.4, idle polling ({time.strftime('%Y-%m-%d')})",
        "",
        f"Machine: {platform.node()}, {cpu}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}. Poll interval {POLL} s, both agents measured over the same "
        f"{duration:g} s window, "
        "one pyupdate-server on 127.0.0.1, bytes counted on a loopback TCP proxy "
        "(HTTP payload bytes, TCP/IP headers not included). `bench/agent.py`.",
        "",
        "| metric | pyupdate | mender 3.4 | ratio (pyupdate / mender) |",
        "|---|---|---|---|",
    ]
    for key, label in (("rss_mib", "idle RSS (MiB)"), ("cpu_s_per_hour", "CPU s per hour"),
                       ("bytes_per_check", "bytes sent per update check"),
                       ("bytes_back_per_check", "bytes received per update check"),
                       ("checks", "update checks in the window")):  # fmt: skip
        ratio = py[key] / me[key] if me[key] else float("nan")
        lines.append(f"| {label} | {py[key]:.1f} | {me[key]:.1f} | {ratio:.2f} |")
    lines.append("")
    lines.append(
        "mender 3.4 sends inventory only hourly here too; its update check is one "
        "POST v2 (this server answers v2), pyupdate's the same."
    )
    out = ROOT / "bench" / "results" / f"agent-{time.strftime('%Y-%m-%d')}.md"
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
