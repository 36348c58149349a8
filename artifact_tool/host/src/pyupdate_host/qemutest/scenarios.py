"""The scenarios: what a build's CI checks on its own images, one table at the bottom.

Each scenario gets a `Context` (the build's output, a fresh copy of its disk
per boot, the artifacts' disk, a throw-away server) and fails with an
AssertionError whose message says what the device did instead. They use the
board's U-Boot boot script lines ("AB: ..."), which every pyupdate image
prints (pyupdate-image, meta-pyupdate and buildroot-ext share one script).
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import server as fleet
from .build_output import Artifact, BuildOutput
from .deltas import Deltas
from .machine import GUEST_HOST_IP
from .media import VETO_MESSAGE
from .target import Target

INSTALL_TIMEOUT = 900.0
ROLLBACK_TIMEOUT = 600.0
DEPLOY_TIMEOUT = 900.0
SERVER_GUEST_PORT = 8081
# The agent's config for the managed scenario: the image's own, pointed at the
# throw-away server and polling often. On /run: every boot starts from the image's.
MANAGED_CONF = "/run/pyupdate-qemu-test.conf"
MANAGED_LOG = "/run/pyupdate-qemu-test-daemon.log"
MANAGED_SETTINGS = {
    "ServerURL": f"http://{GUEST_HOST_IP}:{SERVER_GUEST_PORT}",
    "UpdatePollIntervalSeconds": 5,
    "InventoryPollIntervalSeconds": 30,
    "RetryPollIntervalSeconds": 5,
}
MARK = "pyupdate-qemu-test: written on slot A before the update"
# managed-window: the agent's test clock (pyupdate_agent.window), outside the window and in it
CLOCK_FILE = "/run/pyupdate-qemu-test-clock"
WINDOW = "02:00-04:00"
CLOSED, OPEN = "12:00", "02:30"
WAIT_CHECK = 15.0  # seconds the device must keep waiting in a closed window (3 polls)


class Context(Protocol):
    output: BuildOutput
    media: Path

    def boot(self, forwards: dict[int, int] | None = None) -> Target: ...
    def server(self) -> fleet.Server: ...
    def step(self, text: str) -> None: ...
    def broken(self) -> Artifact: ...
    def veto(self) -> Artifact: ...
    def deltas(self) -> Deltas: ...


# -- steps shared by the scenarios ------------------------------------------------------


def expect_slot(t: Target, slot: str, *, trial: bool = False) -> None:
    part = {"A": 2, "B": 3}[slot]
    root = t.root_part()
    assert root == t.board.linux_partition(part), (
        f"booted root {root or '(none)'}, expected slot {slot} ({t.board.linux_partition(part)})"
    )
    env = t.env()
    want = {"mender_boot_part": str(part), "upgrade_available": "1" if trial else "0"}
    got = {k: env.get(k, "(unset)") for k in want}
    assert got == want, f"U-Boot env {got}, expected {want}"


def expect_partitions_mounted(t: Target) -> None:
    mounts = t.mounts()
    for point in (t.board.data_mount_point, t.board.env.mount_point):
        assert point in mounts, (
            f"{point} is not mounted on slot {t.slot()}: the agent's store and the U-Boot env "
            "live there (fstab of this root file system)"
        )


def install(t: Target, artifact: Artifact, to_slot: str) -> None:
    """`pyupdate install` of an artifact from the media disk; ends at the trial boot's shell."""
    source = t.media_path(artifact.path)
    rc, out = t.run(f"pyupdate install --reboot-exit-code {shlex.quote(source)}", INSTALL_TIMEOUT)
    assert rc == 4, f"pyupdate install {artifact.name} exited {rc} (4 = reboot needed):\n{out}"
    env = t.env()
    part = {"A": "2", "B": "3"}[to_slot]
    assert env.get("upgrade_available") == "1" and env.get("mender_boot_part") == part, (
        f"after install, U-Boot env {env}: expected a trial of part {part}"
    )
    t.reboot()
    t.expect(f"AB: trial boot of part {part}, bootcount=1")


def commit(t: Target, artifact: Artifact) -> None:
    rc, out = t.run("pyupdate commit")
    assert rc == 0, f"pyupdate commit on the new slot exited {rc}:\n{out.strip()}"
    assert t.artifact() == artifact.name, f"after commit the device runs {t.artifact()!r}"


def _fresh(t: Target) -> str:
    expect_slot(t, "A")
    expect_partitions_mounted(t)
    return t.artifact()


# -- the scenarios --------------------------------------------------------------------


def boot(ctx: Context) -> None:
    """Boots slot A with the env and data partitions mounted and the agent answering."""
    t = ctx.boot()
    first = _fresh(t)
    assert first, "pyupdate show-artifact printed nothing"
    assert first != ctx.output.update.name, f"the disk already runs {first}, the update's name"
    t.sh("pyupdate show-provides > /dev/null")
    ctx.step(f"slot A runs {first}")


def standalone(ctx: Context) -> None:
    """Update A -> B from the media disk, reboot, commit, reboot again: B stays, data kept."""
    update = ctx.output.update
    t = ctx.boot()
    _fresh(t)
    mark = f"{t.board.data_mount_point}/pyupdate-qemu-test"
    t.sh(f"echo {shlex.quote(MARK)} > {mark} && sync")
    ctx.step(f"installing {update.name}")
    install(t, update, "B")
    t.await_shell()
    expect_slot(t, "B", trial=True)
    expect_partitions_mounted(t)
    ctx.step("trial boot of B: committing")
    commit(t, update)
    expect_slot(t, "B")
    t.reboot()
    t.expect("AB: booting part 3 upgrade_available=0")
    t.await_shell()
    expect_slot(t, "B")
    assert t.artifact() == update.name
    assert t.sh(f"cat {mark}").strip() == MARK, "the data partition lost a file across the update"


def rollback(ctx: Context) -> None:
    """A release that never boots: U-Boot counts the failed trial and returns to A by itself."""
    broken = ctx.broken()
    t = ctx.boot()
    first = _fresh(t)
    ctx.step(f"installing {broken.name}")
    install(t, broken, "B")
    t.expect("AB: bootlimit exceeded, ROLLBACK from part 3", ROLLBACK_TIMEOUT)
    t.expect("AB: booting part 2 upgrade_available=0")
    t.await_shell()
    expect_slot(t, "A")
    rc, out = t.run("pyupdate commit")
    assert rc != 0, f"pyupdate commit after a rollback succeeded:\n{out}"
    assert t.artifact() == first, f"after the rollback the device runs {t.artifact()!r}"


def power_cut(ctx: Context) -> None:
    """Power cut while the slot is written: A still boots; the retried install goes through."""
    update = ctx.output.update
    t = ctx.boot()
    first = _fresh(t)
    source = t.media_path(update.path)
    t.send(f"pyupdate install --reboot-exit-code {shlex.quote(source)}")
    time.sleep(8)  # inside the slot write: tens of seconds under TCG
    ctx.step("power cut during the install")
    t.power_cut()
    t.power_on_to_shell()
    env = t.env()
    if env.get("upgrade_available") == "1":
        # the install ended before the cut (a fast host): B is on trial and complete
        expect_slot(t, "B", trial=True)
        ctx.step("the install had finished before the cut: B on trial")
    else:
        expect_slot(t, "A")
        assert t.artifact() == first
        ctx.step("slot A after the cut; installing again")
        install(t, update, "B")
        t.await_shell()
        expect_slot(t, "B", trial=True)
    commit(t, update)


def _start_daemon(t: Target, env: str = "") -> None:
    """Run the agent's daemon against the throw-away server, whatever starts it on the image;
    `env`: `NAME=value ...` for the daemon's environment."""
    settings = json.dumps(MANAGED_SETTINGS)
    t.sh(
        "systemctl stop pyupdate 2>/dev/null; "
        "for s in /etc/init.d/S*pyupdate*; do [ -x $s ] && $s stop; done 2>/dev/null; true"
    )
    merge = (
        "import json, sys; c = json.load(open('/etc/pyupdate/pyupdate.conf')); "
        f"c.update(json.loads(sys.argv[1])); json.dump(c, open('{MANAGED_CONF}', 'w'))"
    )
    t.sh(f"python3 -c {shlex.quote(merge)} {shlex.quote(settings)}")
    # a subshell, so the daemon outlives the command and the shell driver's framing holds
    daemon = f"{env} pyupdate -l info -c {MANAGED_CONF} daemon".strip()
    t.sh(f"({daemon} < /dev/null >> {MANAGED_LOG} 2>&1 &)")


def _deploy(
    ctx: Context, t: Target, mgmt: fleet.Management, device_id: str, artifact: Artifact, to: str
) -> str:
    mgmt.upload(artifact.path)
    deployment = mgmt.deploy(f"pyupdate-qemu-test {artifact.name}", artifact.name, [device_id])
    ctx.step(f"deployment of {artifact.name} created")
    part = {"A": 2, "B": 3}[to]
    t.expect(f"AB: trial boot of part {part}", DEPLOY_TIMEOUT)
    return deployment


def _final(mgmt: fleet.Management, deployment: str, device_id: str) -> object:
    return fleet.wait_for(
        "the deployment to finish",
        lambda: fleet.final_status(mgmt, deployment, device_id),
        DEPLOY_TIMEOUT,
        every=2,
    )


def _with_server(ctx: Context, run: Callable[[Context, Target, fleet.Management], None]) -> None:
    """Boot with a throw-away server; a failure carries the end of the daemon's log."""
    server = ctx.server()
    t = ctx.boot({SERVER_GUEST_PORT: server.port})
    try:
        run(ctx, t, fleet.Management(server.url))
    except AssertionError as err:
        # the daemon's own account, for whoever reads the failure
        try:
            _, log = t.run(f"tail -n 40 {MANAGED_LOG}", 60)
        except (AssertionError, OSError):
            log = "(the device's shell did not answer)"
        raise AssertionError(f"{err}\n--- {MANAGED_LOG} ---\n{log}") from None


def _admit(ctx: Context, t: Target, mgmt: fleet.Management, env: str = "") -> str:
    """Start the daemon and accept the device when it asks; its id."""
    _start_daemon(t, env)
    pending = fleet.wait_for("the device's auth request", lambda: fleet.pending_device(mgmt), 300)
    mgmt.accept(pending)  # type: ignore[arg-type]
    device_id: str = pending["id"]  # type: ignore[index]
    ctx.step(f"device {device_id} accepted")
    return device_id


def managed(ctx: Context) -> None:
    """The daemon meets a throw-away pyupdate-server: admitted, deployed, success reported
    after the commit on B; with a broken release, failure and the device's log."""
    _with_server(ctx, _managed)


def _managed(ctx: Context, t: Target, mgmt: fleet.Management) -> None:
    _fresh(t)
    device_id = _admit(ctx, t, mgmt)
    update = ctx.output.update
    deployment = _deploy(ctx, t, mgmt, device_id, update, "B")
    t.await_shell()
    _start_daemon(t)  # the new slot's agent resumes the deployment: commit, then report
    status = _final(mgmt, deployment, device_id)
    assert status == "success", (
        f"deployment {status}: {fleet.uploaded_log(mgmt, deployment, device_id)}"
    )
    fleet.wait_for(
        f"inventory to show {update.name}",
        lambda: mgmt.inventory(device_id).get("artifact_name") == update.name,
        120,
    )
    expect_slot(t, "B")

    broken = ctx.broken()
    deployment = _deploy(ctx, t, mgmt, device_id, broken, "A")
    t.expect("AB: bootlimit exceeded, ROLLBACK from part 2", ROLLBACK_TIMEOUT)
    t.await_shell()
    _start_daemon(t)
    status = _final(mgmt, deployment, device_id)
    assert status == "failure", f"a release that never boots ended {status}"
    fleet.wait_for(
        "the device's log of the failed deployment",
        lambda: fleet.uploaded_log(mgmt, deployment, device_id),
        120,
    )
    expect_slot(t, "B")
    assert t.artifact() == update.name


def managed_phases(ctx: Context) -> None:
    """A phased rollout whose first device boots the new system and fails its health check
    (a state script vetoes the commit): it rolls back to A, reports failure, and the
    rollout, with a failure threshold of 1 device, pauses itself before phase 2."""
    _with_server(ctx, _managed_phases)


def _managed_phases(ctx: Context, t: Target, mgmt: fleet.Management) -> None:
    first = _fresh(t)
    device_id = _admit(ctx, t, mgmt)
    # phase 2: a device admitted beforehand that never asks, standing in for the fleet
    rest = mgmt.preauthorize({"mac": "pyupdate-qemu-test-phase-2"}, fleet.stand_in_pubkey())
    veto = ctx.veto()
    mgmt.upload(veto.path)
    deployment = mgmt.deploy(
        f"pyupdate-qemu-test {veto.name}", veto.name, [device_id, rest],
        phases=[{"batch_count": 1}, {"start_when_healthy": True}],
        failure_threshold={"count": 1}, failure_action="pause",
    )  # fmt: skip
    ctx.step(f"phased deployment of {veto.name} created")
    t.expect("AB: trial boot of part 3", DEPLOY_TIMEOUT)
    t.await_shell()
    shown = mgmt.deployment(deployment)
    assert not shown["paused"], f"paused before the device's health check: {shown['events']}"
    ctx.step("trial boot of B: the agent runs the health check")
    _start_daemon(t)  # resumes on B: ArtifactCommit_Enter vetoes, roll back and reboot
    t.expect("AB: booting part 2 upgrade_available=0", ROLLBACK_TIMEOUT)
    t.await_shell()
    expect_slot(t, "A")
    _start_daemon(t)  # back on A: the failure is reported from there
    status = _final(mgmt, deployment, device_id)
    assert status == "failure", f"a release whose health check fails ended {status}"
    log = fleet.wait_for(
        "the device's log of the failed deployment",
        lambda: fleet.uploaded_log(mgmt, deployment, device_id),
        120,
    )
    assert VETO_MESSAGE in str(log), f"the device's log lacks the health check's words:\n{log}"
    assert t.artifact() == first, f"after the rollback the device runs {t.artifact()!r}"
    shown = mgmt.deployment(deployment)
    phases = [(p["status"], p["device_count"]) for p in shown["phases"]]
    assert shown["paused"] and shown["status"] == "paused", (
        f"the rollout did not pause itself: {shown['status']}, events {shown['events']}"
    )
    assert phases[1] == ("waiting", 0), f"phase 2 went on after the failure: {phases}"
    paused = [e["message"] for e in shown["events"] if e["kind"] == "paused"]
    assert paused == ["phase 1: 1 failures of 1 (100%) >= threshold 1: paused"], paused
    ctx.step(paused[0])
    mgmt.set_status(deployment, "aborted")  # a person ends it; the stand-in never was handed it
    assert mgmt.device_status(deployment, rest)["status"] == "aborted"


def managed_window(ctx: Context) -> None:
    """A deployment with an install window: the device downloads the update at once and
    reports pause_before_installing with its boot env untouched, installs only once the
    window opens (the agent's test clock), then commits on B and reports success."""
    _with_server(ctx, _managed_window)


def _managed_window(ctx: Context, t: Target, mgmt: fleet.Management) -> None:
    _fresh(t)
    t.sh(f"echo {CLOSED} > {CLOCK_FILE}")
    device_id = _admit(ctx, t, mgmt, env=f"PYUPDATE_TEST_CLOCK={CLOCK_FILE}")
    update = ctx.output.update
    mgmt.upload(update.path)
    deployment = mgmt.deploy(
        f"pyupdate-qemu-test {update.name} in {WINDOW}", update.name, [device_id],
        install_window=WINDOW,
    )  # fmt: skip
    ctx.step(f"deployment of {update.name} in {WINDOW} created; device clock {CLOSED}")
    fleet.wait_for(
        "the device to download and report pause_before_installing",
        lambda: mgmt.device_status(deployment, device_id)["status"] == "pause_before_installing",
        DEPLOY_TIMEOUT,
        every=2,
    )
    waiting = t.sh("pyupdate show-update")
    assert f"artifact_name={update.name}" in waiting and "state=Downloaded" in waiting, (
        f"the device reports the wait but holds no download:\n{waiting}"
    )
    time.sleep(WAIT_CHECK)
    status = mgmt.device_status(deployment, device_id)["status"]
    assert status == "pause_before_installing", f"in a closed window the device went on: {status}"
    expect_slot(t, "A")  # downloaded, and the boot env untouched
    ctx.step(f"downloaded and waiting; device clock {OPEN}")
    t.sh(f"echo {OPEN} > {CLOCK_FILE}")
    t.expect("AB: trial boot of part 3", DEPLOY_TIMEOUT)
    t.await_shell()
    _start_daemon(t)
    status = _final(mgmt, deployment, device_id)
    assert status == "success", (
        f"deployment {status}: {fleet.uploaded_log(mgmt, deployment, device_id)}"
    )
    expect_slot(t, "B")
    assert t.artifact() == update.name


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    run: Callable[[Context], None]
    needs_server: bool = False
    needs_veto: bool = False
    needs_deltas: bool = False

    @property
    def summary(self) -> str:
        return " ".join((self.run.__doc__ or "").split("\n\n")[0].split())


# below the shared steps: the delta scenario's module uses them
from .delta_scenario import delta  # noqa: E402

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("boot", boot),
    Scenario("standalone", standalone),
    Scenario("rollback", rollback),
    Scenario("power-cut", power_cut),
    Scenario("managed", managed, needs_server=True),
    Scenario("managed-phases", managed_phases, needs_server=True, needs_veto=True),
    Scenario("managed-window", managed_window, needs_server=True),
    Scenario("delta", delta, needs_server=True, needs_deltas=True),
)
BY_NAME = {s.name: s for s in SCENARIOS}
