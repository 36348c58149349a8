"""QEMU fixtures: images built once per session, a `device` already at a root shell.

Board: $PYUPDATE_BOARD (default qemu-x86_64; `make test-qemu BOARD=qemu-aarch64`).
Inputs (Debian rootfs, kernel, initramfs) are cached, see ci/qemu/inputs.py.
Every scenario's duration, the accelerator (KVM/TCG) and boot times are
printed in the terminal summary.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

REPO = Path(__file__).resolve().parents[2]
# ci/qemu (images, inputs) and ci/yocto (record, run_tasks) are folders of scripts whose
# modules import each other by bare name; the scenarios here import them the same way.
sys.path[:0] = [str(REPO / "ci" / "qemu"), str(REPO / "ci" / "yocto")]

import images  # noqa: E402
from qemu_device import BOARD, HTTP_GUEST_PORT, Device, Session  # noqa: E402

from pyupdate_host.qemutest.machine import (  # noqa: E402
    BootStrategy,
    DiskImage,
    QemuDriver,
    ShellDriver,
    State,
    accel,
)
from pyupdate_host.qemutest.media import media_disk  # noqa: E402

_TIMINGS: list[str] = []
# Runs on what a real Buildroot build made, an hour's work away: only when
# `make buildroot-test` names that build (PYUPDATE_BUILDROOT_OUT).
collect_ignore = [] if os.environ.get("PYUPDATE_BUILDROOT_OUT") else ["test_buildroot_built.py"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if Path(str(item.fspath)).resolve().parent == here:
            item.add_marker(pytest.mark.qemu)
            item.add_marker(pytest.mark.uboot)
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter) -> None:
    if _TIMINGS:
        terminalreporter.section(f"qemu ({BOARD}, accel={accel()})")
        for line in _TIMINGS:
            terminalreporter.write_line(line)


def _key_pair(work: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    priv, pub = work / "signing-key.pem", work / "verify-key.pem"
    priv.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return priv, pub


# Measured: the images take 1.2 GiB, a scenario's disk up to 0.9 GiB more (deleted when
# it passes). A fuller host disk would stall a guest mid-write; say so before booting.
HOST_DISK_NEEDED_MIB = 2560


def _check_host_disk(work: Path) -> None:
    free = shutil.disk_usage(work).free >> 20
    _TIMINGS.append(f"host disk: {free} MiB free under {work.parent} at start")
    if free < HOST_DISK_NEEDED_MIB:
        pytest.fail(
            f"QEMU tests need {HOST_DISK_NEEDED_MIB} MiB free under {work.parent}, {free} MiB are",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def qemu_session(tmp_path_factory) -> Session:
    work = tmp_path_factory.mktemp("qemu")
    _check_host_disk(work)
    started = time.monotonic()
    priv, pub = _key_pair(work)
    built = images.build_device_images(BOARD, work, priv, pub)
    media = media_disk(
        [built.updates["release-2"], built.updates["release-broken"]], work / "media.img"
    )
    _TIMINGS.append(
        f"images built (inputs cached in {images.inputs.cache_dir()}): "
        f"{time.monotonic() - started:.0f} s"
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(work))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # Bound to loopback only; the guest reaches it through a QEMU guestfwd (qemutest/machine.py).
    yield Session(built, media, server.server_address[1], work)
    server.shutdown()


def _boot(session: Session, tmp_path: Path, request, forwards: dict[int, int]):
    disk = tmp_path / "disk.img"
    subprocess.run(["cp", "--sparse=always", str(session.images.disk), str(disk)], check=True)
    log = tmp_path / "console.log"
    power = QemuDriver(
        session.images.board, DiskImage(disk, (session.media,)), log, forwards=forwards
    )
    strategy = BootStrategy(power, ShellDriver(power))
    started = time.monotonic()
    try:
        strategy.transition(State.SHELL)
        yield Device(strategy, session)
    finally:
        strategy.power.off()
        boots = ", ".join(f"{s:.0f}" for s in strategy.boot_seconds)
        resets = strategy.power.watchdog.resets
        _TIMINGS.append(
            f"{request.node.name}: {time.monotonic() - started:.0f} s "
            f"(boots to shell: {boots} s; watchdog resets: {len(resets)}; console: {log})"
        )
        _TIMINGS.extend(f"  watchdog reset: {event}" for event in resets)


@pytest.fixture
def device(qemu_session: Session, tmp_path: Path, request):
    yield from _boot(qemu_session, tmp_path, request, {HTTP_GUEST_PORT: qemu_session.http_port})
