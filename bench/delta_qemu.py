#!/usr/bin/env python3
"""One end-to-end QEMU update over a throttled link: the delta against the full artifact (issue 19).

Run by hand from the repo root (after `make dev`; QEMU, e2fsprogs, apt-get):
    nice -n 10 .venv/bin/python bench/delta_qemu.py [--rate-kib 1024]
Scratch goes to bench/work/delta-qemu/ (gitignored, removed at the end); the report to
bench/results/delta-qemu-<date>.md.

The pair: release 1 is the QEMU test image (tests/qemu: ci/qemu/images.py, the Debian 12
systemd rootfs with this repo's agent) on a disk whose root is mounted read-only
(images.build_read_only_disk); release 2 is the same tree plus the files of nano, curl and
libcurl4 from Debian's archive (`apt-get download`, unpacked, not configured: the bytes of
"add a package", as the pair A of bench/delta.py), in a slot made anew by pyupdate-image, as
a build makes it. The full artifact is pyupdate-image's (gzip); the delta is
`pyupdate-artifact delta release-1.mender release-2.mender -k KEY`.

The link: the guest reaches a plain HTTP server on the host through QEMU's user network
(a guestfwd, as pyupdate-qemu-test does) and a TCP proxy that paces each direction to
--rate-kib KiB/s (a token bucket shared by all connections), so what the device
downloads, and nothing else, is slowed. The device first installs release 1 in full
from the media disk and commits it (the agent learns its image's checksum); then, timed
from the host, `pyupdate install URL` of the full artifact, `pyupdate rollback` (the
device stays on release 1), `pyupdate install URL` of the delta, and the reboot into
release 2 and `pyupdate commit`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import http.server
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "ci" / "qemu"), str(REPO / "tests" / "qemu")]

import images  # noqa: E402
from conftest import _key_pair  # noqa: E402

from pyupdate_host.image import artifact, slot  # noqa: E402
from pyupdate_host.qemutest.deltas import copy_slot  # noqa: E402
from pyupdate_host.qemutest.machine import (  # noqa: E402
    GUEST_HOST_IP,
    BootStrategy,
    DiskImage,
    QemuDriver,
    ShellDriver,
    State,
    accel,
)
from pyupdate_host.qemutest.media import media_disk  # noqa: E402
from pyupdate_host.qemutest.target import Target  # noqa: E402

BOARD = "qemu-x86_64"
PACKAGES = ("nano", "curl", "libcurl4")
GUEST_PORT = 8080
CHUNK = 16 << 10
INSTALL_TIMEOUT = 1800.0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class Pacer:
    """A token bucket: `take(n)` returns when n more bytes fit the rate."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.lock = threading.Lock()
        self.next = time.monotonic()
        self.bytes = 0

    def take(self, n: int) -> None:
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next)
            self.next = start + n / self.rate
            self.bytes += n
        time.sleep(max(start - now, 0))


class ThrottledProxy:
    """127.0.0.1:port -> 127.0.0.1:upstream, each direction paced to `rate` bytes/s."""

    def __init__(self, upstream: int, rate: float) -> None:
        self.upstream = upstream
        self.down, self.up = Pacer(rate), Pacer(rate)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            for src, dst, pacer in ((server, client, self.down), (client, server, self.up)):
                threading.Thread(target=self._pump, args=(src, dst, pacer), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, pacer: Pacer) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(CHUNK):
                pacer.take(len(data))
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


def release_2(built: images.DeviceImages, work: Path) -> Path:
    """Release 1's tree plus nano, curl and libcurl4's files, as a full artifact."""
    debs = work / "debs"
    debs.mkdir()
    subprocess.run(["apt-get", "download", *PACKAGES], cwd=debs, check=True, capture_output=True)
    arch = images.inputs.BOARD_ARCH[BOARD]
    wheels = sorted((work / "wheels").glob("*.whl"))
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        images.compose_tree(arch, built.board, tree, wheels, built.verify_key, broken=False)
        for deb in sorted(debs.glob("*.deb")):
            # through tar: dpkg-deb -x replaces merged /usr's /bin link with a directory
            files = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)],
                                   capture_output=True, check=True).stdout  # fmt: skip
            subprocess.run(["tar", "-x", "--keep-directory-symlink", "-C", str(tree)],
                           input=files, check=True)  # fmt: skip
        image = Path(tmp) / "rootfs.ext4"
        slot.make_slot_image(built.board, tree, image, "release-2", "rootfs")
        out = work / "release-2.mender"
        artifact.write_rootfs_artifact(image, out, "release-2", built.board.device_type, built.key)
    return out


def timed(t: Target, cmd: str, proxy: ThrottledProxy) -> tuple[float, int, str]:
    """(seconds, bytes the device downloaded, output) of a command that must exit 4."""
    before = proxy.down.bytes
    started = time.monotonic()
    rc, out = t.run(cmd, INSTALL_TIMEOUT)
    seconds = time.monotonic() - started
    if rc != 4:
        raise SystemExit(f"{cmd} exited {rc}:\n{out}")
    return seconds, proxy.down.bytes - before, out


def run(work: Path, rate: float) -> dict[str, object]:
    facts: dict[str, object] = {}
    priv, pub = _key_pair(work)
    log("images (tests/qemu's)")
    built = images.build_device_images(BOARD, work, priv, pub)
    disk = images.build_read_only_disk(built, work / "disk-ro")
    log("release 2: release 1 + nano, curl, libcurl4")
    full = release_2(built, work)
    base = work / "release-1.mender"
    slot_a = work / "slot-a.img"
    copy_slot(disk, 2, slot_a)
    artifact.write_rootfs_artifact(slot_a, base, "release-1", built.board.device_type, priv)
    slot_a.unlink()
    delta = work / "release-2.delta.mender"
    started = time.monotonic()
    subprocess.run([str(Path(sys.executable).parent / "pyupdate-artifact"), "delta", str(base),
                    str(full), "-o", str(delta), "-k", str(priv)], check=True)  # fmt: skip
    facts["generate_s"] = time.monotonic() - started
    facts["full_bytes"], facts["delta_bytes"] = full.stat().st_size, delta.stat().st_size
    media = media_disk([base], work / "media.img")

    handler = functools.partial(QuietHandler, directory=str(work))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    proxy = ThrottledProxy(httpd.server_address[1], rate)
    boot_disk = work / "boot.img"
    shutil.copyfile(disk, boot_disk)
    power = QemuDriver(built.board, DiskImage(boot_disk, (media,)), work / "console.log",
                       forwards={GUEST_PORT: proxy.port})  # fmt: skip
    strategy = BootStrategy(power, ShellDriver(power))
    try:
        log("boot; release 1 in full from the media disk, commit")
        strategy.transition(State.SHELL)
        t = Target(strategy, built.board)
        t.run(f"pyupdate install --reboot-exit-code {t.media_path(base)}", INSTALL_TIMEOUT)
        t.reboot_to_shell()
        t.sh("pyupdate commit")
        url = f"http://{GUEST_HOST_IP}:{GUEST_PORT}"
        log("full artifact over the throttled link")
        cmd = f"pyupdate install --reboot-exit-code {url}/{full.name}"
        facts["full_s"], facts["full_wire"], _ = timed(t, cmd, proxy)
        t.sh("pyupdate rollback")
        log("delta over the throttled link")
        cmd = f"pyupdate install --reboot-exit-code {url}/{delta.name}"
        facts["delta_s"], facts["delta_wire"], _ = timed(t, cmd, proxy)
        started = time.monotonic()
        t.reboot_to_shell()
        t.sh("pyupdate commit")
        facts["reboot_commit_s"] = time.monotonic() - started
        facts["runs"] = t.artifact()
    finally:
        strategy.power.off()
        proxy.close()
        httpd.shutdown()
    return facts


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.machine()
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.machine()


def report(facts: dict[str, object], rate: float, load: tuple[float, ...]) -> str:
    kib = rate / 1024
    f = facts
    lines = [
        f"# One QEMU update over a {kib:.0f} KiB/s link: delta vs full ({datetime.date.today()})",
        "",
        f"Machine: {os.cpu_count()} vCPUs ({cpu_model()}), "
        f"{platform.system()} {platform.release()}; QEMU under {accel().upper()}, one vCPU per "
        f"guest; load average {load[0]:.1f} at the start (other work shared the host, so the "
        "device-side times are upper bounds). Command: `nice -n 10 .venv/bin/python "
        f"bench/delta_qemu.py --rate-kib {kib:.0f}` (the method: its docstring).",
        "",
        "| | bytes on the wire | `pyupdate install URL` (download, write, verify) |",
        "|---|---|---|",
        f"| full artifact (gzip) | {f['full_wire']:,} | {f['full_s']:.0f} s |",
        f"| delta | {f['delta_wire']:,} | {f['delta_s']:.0f} s |",
        "",
        f"Artifacts: full {f['full_bytes']:,} bytes, delta {f['delta_bytes']:,} bytes "
        f"({100 * f['delta_bytes'] / f['full_bytes']:.1f}%), generated in {f['generate_s']:.0f} s "
        f"on the host. After the delta: reboot into release 2 and `pyupdate commit` "
        f"{f['reboot_commit_s']:.0f} s; the device then ran {f['runs']}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate-kib", type=float, default=1024.0, help="link rate, KiB/s each way")
    p.add_argument("--work", type=Path, default=REPO / "bench/work/delta-qemu")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    rate = args.rate_kib * 1024
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    load = os.getloadavg()
    try:
        facts = run(args.work, rate)
    finally:
        shutil.rmtree(args.work, ignore_errors=True)
    out = args.out or REPO / f"bench/results/delta-qemu-{datetime.date.today()}.md"
    text = report(facts, rate, load)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
