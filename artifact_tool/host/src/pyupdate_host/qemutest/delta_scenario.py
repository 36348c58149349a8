"""The delta scenario: a device whose root stays bit-identical to its image takes binary
deltas (`pyupdate-artifact delta`), standalone and from a throw-away server.

One device, four or six boots: its first update is a delta when the disk's data
partition holds the build's bootstrap artifact naming slot A's checksum
(`pyupdate-image build` and buildroot-ext write one; agent/bootstrap.py), else
release 1 is installed in full first (a device learns its image's checksum from an
artifact it installed); then a power cut while a delta is written, the delta to the
update, then a delta to a release that never boots, handed out by the server, which
rolls back. The artifacts: deltas.py.
"""

from __future__ import annotations

import shlex
import time
from typing import TYPE_CHECKING

from pyupdate_artifact.delta.format import DELTA_TYPE

from . import server as fleet
from .build_output import Artifact
from .deltas import CHECKSUM, Deltas

if TYPE_CHECKING:
    from .scenarios import Context
    from .target import Target

# The power is cut once the slot being written has taken this much (/proc/diskstats):
# after the base check (which reads the running slot first), inside the write.
CUT_AFTER = 16 << 20
INSTALL_LOG = "/run/pyupdate-qemu-test-install.log"
INSTALL_RC = "/run/pyupdate-qemu-test-install.rc"
BOOTSTRAP = "/var/lib/pyupdate/bootstrap.mender"  # the agent's default data dir
PART = {"A": 2, "B": 3}
OTHER = {"A": "B", "B": "A"}
READ_ONLY = (
    "a delta applies only to a slot bit-identical to the image it was made from: mount the "
    "root read-only (`ro`) without loading an ext4 journal (`rootflags=noload`, or an ext4 "
    "made without one) and never remount it read-write"
)


def expect_read_only_root(t: Target) -> None:
    rows = [line.split() for line in t.sh("cat /proc/mounts").splitlines()]
    # the last `/` is the one in effect (an initramfs's rootfs comes first)
    options = [r[3] for r in rows if len(r) > 3 and r[1] == "/"][-1:] or ["(none)"]
    assert "ro" in options[0].split(","), f"the root is mounted {options[0]}: {READ_ONLY}"


def expect_checksum(t: Target, artifact: Artifact, deltas: Deltas) -> None:
    """The agent's provides name the image the artifact installed (a delta needs it)."""
    lines = t.sh("pyupdate show-provides").splitlines()
    have = dict(line.split("=", 1) for line in lines if "=" in line).get(CHECKSUM)
    want = deltas.checksums[artifact.name]
    assert have == want, f"after {artifact.name} the device provides {CHECKSUM}={have}, not {want}"


def _ended(t: Target, rc: str) -> str:
    log = t.sh(f"cat {INSTALL_LOG}").strip()
    hint = f"\n({READ_ONLY})" if "base does not match" in log else ""
    return f"pyupdate install exited {rc} before the power cut:\n{log}{hint}"


def cut_during_write(t: Target, delta: Artifact, to_slot: str, timeout: float) -> bool:
    """`pyupdate install` of `delta` in the background, the power cut once the slot it
    writes has taken CUT_AFTER bytes; False when the install finished first (a fast host)."""
    part = t.board.linux_partition(PART[to_slot]).rsplit("/", 1)[-1]
    written = f"awk '$3 == \"{part}\" {{print $10}}' /proc/diskstats"  # 512-byte sectors
    start = int(t.sh(written))
    install = (
        f"pyupdate install --reboot-exit-code {shlex.quote(t.media_path(delta.path))} "
        f"> {INSTALL_LOG} 2>&1; echo $? > {INSTALL_RC}"
    )
    t.sh(f"rm -f {INSTALL_RC}; (sh -c {shlex.quote(install)} < /dev/null > /dev/null 2>&1 &)")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = t.sh(f"{written}; cat {INSTALL_RC} 2>/dev/null || true").split()
        if (int(out[0]) - start) * 512 >= CUT_AFTER:
            t.power_cut()
            return True
        if len(out) > 1:
            assert out[1] == "4", _ended(t, out[1])
            t.power_cut()
            return False
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for the delta's write")


def delta(ctx: Context) -> None:
    """Binary deltas on a read-only root: a power cut while one is written, one that
    commits, and one to a release that never boots, handed out by a throw-away server,
    that rolls back.

    The device must keep its root read-only. Without the build's bootstrap artifact
    on the data partition, release 1 (the disk's slot A as an artifact) is installed in
    full first, so the agent knows its image's checksum."""
    from . import scenarios  # its shared steps; its table imports this module

    scenarios._with_server(ctx, _delta)


def _delta(ctx: Context, t: Target, mgmt: fleet.Management) -> None:
    from . import scenarios as s

    deltas, update = ctx.deltas(), ctx.output.update
    s._fresh(t)
    expect_read_only_root(t)
    if t.sh(f"test -e {BOOTSTRAP} && echo yes || true").strip() == "yes":
        ctx.step(
            "the disk's bootstrap artifact names slot A's checksum: the first update is a delta"
        )
        runs = "A"
    else:
        ctx.step(f"installing {deltas.base.name} in full: the agent learns its image's checksum")
        s.install(t, deltas.base, "B")
        t.await_shell()
        s.expect_slot(t, "B", trial=True)
        s.commit(t, deltas.base)
        expect_checksum(t, deltas.base, deltas)
        runs = "B"
    new = OTHER[runs]

    ctx.step(f"power cut while the delta to {update.name} is written into slot {new}")
    if cut_during_write(t, deltas.to_update, new, s.INSTALL_TIMEOUT):
        t.power_on_to_shell()
        s.expect_slot(t, runs)
        assert t.artifact() == deltas.base.name, f"after the cut the device runs {t.artifact()}"
        expect_checksum(t, deltas.base, deltas)  # from the bootstrap, or the full install
        ctx.step(f"slot {runs} after the cut; installing the delta again")
        s.install(t, deltas.to_update, new)
        t.await_shell()
    else:
        t.power_on_to_shell()
        ctx.step(f"the delta's install had finished before the cut: {new} on trial")
    s.expect_slot(t, new, trial=True)
    s.commit(t, update)
    expect_checksum(t, update, deltas)

    device_id = s._admit(ctx, t, mgmt)
    fleet.wait_for(
        f"the device's inventory to list {DELTA_TYPE}",
        lambda: DELTA_TYPE in str(mgmt.inventory(device_id).get("update_modules", "")),
        120,
    )
    mgmt.upload(deltas.to_broken.path)  # beside the full one _deploy uploads
    deployment = s._deploy(ctx, t, mgmt, device_id, ctx.broken(), runs)
    t.expect(f"AB: bootlimit exceeded, ROLLBACK from part {PART[runs]}", s.ROLLBACK_TIMEOUT)
    t.await_shell()
    s._start_daemon(t)
    status = s._final(mgmt, deployment, device_id)
    assert status == "failure", f"a delta to a release that never boots ended {status}"
    row = mgmt.device_status(deployment, device_id)
    if "delivery" in row:  # pyupdate-server's own field (docs/deployments.md, "Delta updates")
        assert row["delivery"] == "delta", f"the server sent the device {row['delivery']}"
        ctx.step(f"the server sent the delta: {row.get('bytes_sent')} bytes")
