"""Benchmark a 1 GiB artifact through `pyupdate-server`: upload, download, resume.

    .venv/bin/python bench/server_download.py [--mib 1024] [--runs 3]

One server (SQLite, local files) in a temp dir. A signed `none`-compressed
artifact of `--mib` MiB of random data is uploaded with curl (streaming
multipart, as `mender-cli artifacts upload` does), a device with a real key
authenticates, is accepted and gets a deployment, and curl downloads the
artifact through the device's short-lived link into /dev/null: with a cold
page cache (dropped before) and a warm one. The machine's limit in the same
run is `dd` reading the stored file the same two ways. Then a download cut
in half is resumed with `Range` and the two parts' sha256 compared with the
file's. The server's peak RSS is read per phase (VmHWM, reset between phases
through /proc/PID/clear_refs). Last, `--slow-clients` devices on 2 MiB/s
links download at once for 10 s: the server's peak RSS then.
Writes bench/results/server-download-<date>.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from pyupdate_testing.server import MANAGEMENT, Server, live_server

# bench/server.py, beside this script (a script's own folder is first on sys.path)
from server import NEXT, Device, make_artifact, rss_kib

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5\n")


def peak_mib(pid: int) -> float:
    return rss_kib(pid)[1] / 1024


def curl(*args: str) -> dict[str, float]:
    """Run curl; its own timing and byte count (-w) say what crossed the socket."""
    fmt = '{"bytes": %{size_download}, "seconds": %{time_total}, "status": %{http_code}}'
    out = subprocess.run(
        ["curl", "-sS", "--fail", "-o", "/dev/null", "-w", fmt, *args],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return json.loads(out)


def dd_read(path: Path) -> float:
    t = time.perf_counter()
    subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=1M", "status=none"], check=True)
    return time.perf_counter() - t


def device_link(server: Server) -> tuple[str, str]:
    """Admit a device with a real key, deploy to it; returns its download link and token."""
    device = Device({"mac": "bench-download"}, ec.generate_private_key(ec.SECP256R1()))

    def auth() -> str:
        body = device.auth_body()
        request = urllib.request.Request(
            f"{server.url}/api/devices/v1/authentication/auth_requests", data=body,
            headers={"Content-Type": "application/json",
                     "X-MEN-Signature": device.signature(body)},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read().decode()

    try:
        auth()
    except urllib.error.HTTPError as err:  # 401 while pending: expected
        assert err.code == 401, err
    pending = server.pending_devices()
    assert pending, "no pending device"
    server.accept(pending[0])
    token = auth()
    server.deploy("big-1", [pending[0]["id"]])
    request = urllib.request.Request(
        f"{server.url}{NEXT}",
        data=json.dumps({"device_type": "bench", "artifact_name": "base"}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["artifact"]["source"]["uri"], token


def resumed_sha256(link: str, size: int, tmp: Path) -> str:
    """Fetch the first half, then the rest with Range (206), and hash the joined file."""
    part = tmp / "part"
    subprocess.run(["curl", "-sS", "--fail", "-r", f"0-{size // 2 - 1}", "-o", str(part), link],
                   check=True)  # fmt: skip
    subprocess.run(["curl", "-sS", "--fail", "-C", "-", "-o", str(part), link], check=True)
    with part.open("rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    part.unlink()
    return digest


def slow_clients(link: str, pid: int, clients: int, seconds: float) -> dict[str, float]:
    """`clients` devices on a 2 MiB/s link each download at once; the server's peak RSS."""
    idle = rss_kib(pid)[0] / 1024
    reset_peak(pid)
    argv = ["curl", "-sS", "--limit-rate", "2M", "-o", "/dev/null", link]
    procs = [subprocess.Popen(argv, stderr=subprocess.DEVNULL) for _ in range(clients)]
    time.sleep(seconds)
    peak = peak_mib(pid)
    for proc in procs:
        proc.kill()
        proc.wait()
    return {"clients": clients, "seconds": seconds, "idle_rss_mib": idle, "peak_rss_mib": peak}


def run(mib: int, runs: int, clients: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="pyupdate-bench-dl-") as tmp_s:
        tmp = Path(tmp_s)
        artifact = make_artifact(tmp, mib * MIB, "big-1", "none")
        size = artifact.stat().st_size
        with artifact.open("rb") as fh:
            want = hashlib.file_digest(fh, "sha256").hexdigest()
        with live_server(tmp) as server:
            pid = server.process.pid
            reset_peak(pid)
            upload = curl(
                "-H", f"Authorization: Bearer {server.token}",
                "-F", f"artifact=@{artifact};type=application/octet-stream",
                f"{server.url}{MANAGEMENT}/v1/deployments/artifacts",
            )  # fmt: skip
            upload["peak_rss_mib"] = peak_mib(pid)
            stored = max(server.data_dir.rglob("*"), key=lambda p: p.stat().st_size)
            artifact.unlink()  # one copy on disk: the store's
            link, _ = device_link(server)
            rows: dict[str, list[float]] = {k: [] for k in
                                            ("cold_dl", "cold_dd", "warm_dl", "warm_dd")}  # fmt: skip
            peaks = []
            for _ in range(runs):
                drop_caches()
                rows["cold_dd"].append(dd_read(stored))
                drop_caches()
                reset_peak(pid)
                got = curl(link)
                assert got["bytes"] == size, got
                rows["cold_dl"].append(got["seconds"])
                peaks.append(peak_mib(pid))
                rows["warm_dd"].append(dd_read(stored))
                reset_peak(pid)
                rows["warm_dl"].append(curl(link)["seconds"])
                peaks.append(peak_mib(pid))
            resumed = resumed_sha256(link, size, tmp)
            slow = slow_clients(link, pid, clients, 10.0)
    return {
        "mib": mib,
        "artifact_bytes": size,
        "upload": upload,
        "seconds": rows,
        "download_peak_rss_mib": max(peaks),
        "resumed_sha256_ok": resumed == want,
        "slow_clients": slow,
    }


def report(r: dict[str, object]) -> str:
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
         if ln.startswith("model name")), "?",
    )  # fmt: skip
    size = r["artifact_bytes"] / MIB  # type: ignore[operator]
    med = {k: statistics.median(v) for k, v in r["seconds"].items()}  # type: ignore[attr-defined]
    up = r["upload"]
    lines = [
        f"# pyupdate-server: {r['mib']} MiB artifact upload and download, {dt.date.today()}",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} vCPU ({cpu}), Python "
        f"{platform.python_version()}; load average {os.getloadavg()[0]:.1f} at the end. "
        "Server: `pyupdate-server serve`, SQLite + local files in a temp dir on the same disk. "
        "Client: curl into /dev/null, on loopback; `dd bs=1M` reading the stored file is the "
        "machine's limit, in the same run. Cold = page cache dropped before; medians of "
        f"{len(r['seconds']['cold_dl'])} runs.",  # type: ignore[index]
        "",
        "| what | seconds | MiB/s | vs dd, same cache state |",
        "|---|---|---|---|",
        f"| upload (curl -F, streaming multipart; parsed and validated) | {up['seconds']:.2f} | "
        f"{size / up['seconds']:.0f} | |",
    ]
    for cache in ("cold", "warm"):
        dl, dd = med[f"{cache}_dl"], med[f"{cache}_dd"]
        lines.append(f"| download, {cache} cache | {dl:.2f} | {size / dl:.0f} | "
                     f"{dd / dl:.2f}x |")  # fmt: skip
        lines.append(f"| dd of the stored file, {cache} cache | {dd:.2f} | {size / dd:.0f} | |")
    lines += [
        "",
        f"Server peak RSS: {up['peak_rss_mib']:.0f} MiB during the upload, "
        f"{r['download_peak_rss_mib']:.0f} MiB during a download (VmHWM, reset per phase).",
        f"{r['slow_clients']['clients']} devices on 2 MiB/s links downloading at once for "
        f"{r['slow_clients']['seconds']:.0f} s (`curl --limit-rate 2M`): server peak RSS "
        f"{r['slow_clients']['peak_rss_mib']:.0f} MiB, idle before "
        f"{r['slow_clients']['idle_rss_mib']:.0f} MiB.",
        f"Resumed download (first half, then `curl -C -` with Range): sha256 "
        f"{'matches' if r['resumed_sha256_ok'] else 'DIFFERS from'} the uploaded file.",
        "",
        "Goal (issue 5): a 1 GiB artifact download at disk speed without loading it into memory.",
        "",
        "Raw results:",
        "",
        "```json",
        json.dumps(r, indent=1),
        "```",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--slow-clients", type=int, default=200)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = run(args.mib, args.runs, args.slow_clients)
    out = args.out or ROOT / "bench" / "results" / f"server-download-{dt.date.today()}.md"
    out.write_text(report(result))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
