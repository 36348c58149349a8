"""A delta install of a 1 GiB image stays within 64 MiB RSS (issue 19: a small board's
budget), measured on the whole `pyupdate install` process (docs/agent.md, "Delta
updates", "Memory").

The images are sparse files: 96 MiB of data in eight regions, the rest zeros; NEW
rewrites four MiB of it and adds 8 MiB near the end. Slot A runs OLD; the store's
provides name its checksum, as after a full install of it.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from pyupdate_agent.store import InFlight, Phase, Store, new_update_id
from pyupdate_testing.host_device import DEVICE_TYPE, HostDevice

pytestmark = [pytest.mark.uboot, pytest.mark.slow]

GiB = 1 << 30
RSS_LIMIT_MIB = 64


def _image(path: Path, regions: list[tuple[int, bytes]]) -> None:
    with open(path, "wb") as f:
        f.truncate(GiB)
        for at, data in regions:
            f.seek(at)
            f.write(data)


def _sha256(path: Path, size: int = -1) -> str:
    digest, left = hashlib.sha256(), size if size >= 0 else os.path.getsize(path)
    with open(path, "rb") as f:
        while left:
            chunk = f.read(min(left, 1 << 20))
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def _artifact(image: Path, name: str) -> Path:
    out = image.with_suffix(".mender")
    subprocess.run(
        ["mender-artifact", "write", "rootfs-image", "-f", str(image), "-n", name,
         "-t", DEVICE_TYPE, "-o", str(out), "--no-progress"],
        check=True, capture_output=True,
    )  # fmt: skip
    return out


# Linux keeps a process's peak RSS across exec, and a child starts with its parent's:
# pytest's (hundreds of MiB after making the images) would be counted. A small parent
# of its own, and wait4 for that child alone, measure `pyupdate install` by itself.
_MEASURE = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
code = os.waitstatus_to_exitcode(status)
print(usage.ru_maxrss)
sys.exit(code)
"""


def _seed_provides(host: HostDevice, provides: dict[str, str]) -> None:
    """What committing a full install of OLD leaves in the store."""
    store = Store.open(host.data)
    assert store is not None
    try:
        update = store.begin(
            InFlight(new_update_id(), provides["artifact_name"], "rootfs-image",
                     Phase.DOWNLOAD, {}, str(host.data / "seed.log"))
        )  # fmt: skip
        store.finish(update, "success", "", provides)
    finally:
        store.close()


def test_delta_install_of_a_1gib_image_stays_within_64mib_rss(host, tmp_path):
    from pyupdate_host.delta import make_delta

    rng = random.Random(1)
    regions = [(i * (GiB // 8), rng.randbytes(12 << 20)) for i in range(8)]
    changes = [(i * (GiB // 8) + (3 << 20), rng.randbytes(1 << 20)) for i in range(4)]
    old, new = tmp_path / "old.img", tmp_path / "new.img"
    _image(old, regions)
    _image(new, regions + changes + [(GiB - (8 << 20), rng.randbytes(8 << 20))])
    delta = tmp_path / "delta.mender"
    make_delta(_artifact(old, "release-1"), _artifact(new, "release-2"), delta)

    subprocess.run(["cp", "--sparse=always", str(old), str(host.slot_a)], check=True)
    for slot in (host.slot_a, host.slot_b):
        os.truncate(slot, GiB + (16 << 20))
    _seed_provides(host, {"artifact_name": "release-1", "rootfs-image.checksum": _sha256(old)})

    cmd = [sys.executable, "-m", "pyupdate_agent.cli", *host.argv("install", str(delta))]
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    peak_mib = int(done.stdout.split()[-1]) / 1024
    print(f"delta install of a 1 GiB image: peak RSS {peak_mib:.1f} MiB")
    assert peak_mib <= RSS_LIMIT_MIB
    assert _sha256(host.slot_b, GiB) == _sha256(new)
