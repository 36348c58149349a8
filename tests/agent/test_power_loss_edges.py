"""Power loss on every edge of the table (core/states.py), in both modes.

For each edge, a scenario that takes it runs with `PYUPDATE_TEST_KILL_AT=<state>:<outcome>`:
the agent SIGKILLs itself right after the edge's next state was written. The test
checks that the one record says that state, powers the device off and on (the
bootloader runs: bootloader_sim), starts the agent again (the killed command, or the
daemon), checks that it resumed from the record (states.RESUME), lets the scenario end
and checks that env, slots, store and server agree: nothing in flight, no trial left,
slot A untouched, and the artifact the device names is the one its env boots and the
server was told.

The scenarios steer the agent with marker files in `$MARKS`: probe state scripts (in
the artifact and in the rootfs dirs) fail while `fail-<State>_<Action>` exists, a probe
update module answers from files, a `clock` file is the local time the install window is
checked against (window.py's test clock), and a fake server (pyupdate_testing.fake_device_api.FakeDeviceAPI) answers
409 to the n-th report of a status.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pyupdate_agent.core.runner import KILL_AT
from pyupdate_agent.core.states import EDGES, RESUME, Edge, Mode, State
from pyupdate_agent.store import Store
from pyupdate_agent.window import CLOCK
from pyupdate_testing.daemon_device import DaemonDevice, make_daemon_device
from pyupdate_testing.fake_device_api import FakeDeviceAPI, Seen
from pyupdate_testing.host_device import (
    PART_A,
    PART_B,
    HostDevice,
    needs_tools,
    sha256,
    write_module_artifact,
)

pytestmark = [pytest.mark.uboot, pytest.mark.slow, needs_tools]

NEW = "release-edge"
ARTIFACT_STATES = ("ArtifactInstall", "ArtifactReboot", "ArtifactCommit", "ArtifactRollback",
                   "ArtifactRollbackReboot", "ArtifactFailure")  # fmt: skip
ROOTFS_STATES = ("Idle", "Sync", "Download")
PROBE_SCRIPT = """#!/bin/sh
[ -n "$MARKS" ] || exit 0
echo {name} >> "$MARKS/trace"
if [ -e "$MARKS/fail-{name}" ]; then echo "{name} told to fail" >&2; exit 1; fi
exit 0
"""
PROBE_MODULE = """#!/bin/sh
M="$MARKS"
echo "$1" >> "$M/module"
case "$1" in
  SupportsRollback)
    if [ -e "$M/rollback-garbage" ] && [ -e "$M/asked" ]; then echo Maybe; exit 0; fi
    touch "$M/asked"; cat "$M/supports-rollback" 2>/dev/null || echo Yes ;;
  NeedsArtifactReboot) cat "$M/needs-reboot" 2>/dev/null || echo No ;;
  *) if [ -e "$M/fail-module-$1" ]; then echo "$1 told to fail" >&2; exit 1; fi ;;
esac
exit 0
"""


@dataclass(frozen=True)
class Scenario:
    """Args:
    payload: `rootfs` or `module` (the probe module).
    marks: marker files and their content, made before the first start.
    transient: markers removed at the power cycle after the kill (so the update can go on).
    changes: markers (re)written at the power cycle after each kill (`clock`: the local time
        the agent reads, window.py's test clock).
    config: config keys for the device (InstallWindow).
    conflict: managed: the server answers 409 to the n-th report of this status.
    commands: standalone: the commands in order (`boot` = a power cycle).
    prelude: edges to be killed at before the edge under test.
    edges: the edges (`State:outcome`) the scenario takes.
    """

    name: str
    payload: str
    edges: tuple[str, ...]
    marks: dict[str, str] = field(default_factory=dict)
    transient: tuple[str, ...] = ()
    changes: dict[str, str] = field(default_factory=dict)
    config: dict[str, object] = field(default_factory=dict)
    conflict: tuple[str, int] | None = None
    commands: tuple[str, ...] = ()
    prelude: tuple[str, ...] = ()


ROLLBACK_GARBAGE = {"rollback-garbage": "", "fail-module-ArtifactInstall": ""}
# an install window closed at first, open after the power cut
WINDOW = dict(marks={"clock": "12:00"}, changes={"clock": "11:10"},
              config={"InstallWindow": "11:00-11:30"})  # fmt: skip
MANAGED = (
    Scenario("rootfs-success", "rootfs", ("Idle:ok", "Sync:ok", "Download:ok",
             "ArtifactInstall:ok", "ArtifactVerifyReboot:ok", "ArtifactCommit:ok", "Cleanup:ok",
             "Sync:nothing")),
    Scenario("module-no-reboot", "module", ("ArtifactInstall:no-reboot",)),
    Scenario("module-own-reboot-commit-veto", "module", ("ArtifactReboot:ok",
             "ArtifactCommit:fail", "ArtifactRollback:ok", "ArtifactRollbackReboot:ok",
             "ArtifactVerifyRollbackReboot:ok", "ArtifactFailure:ok"),
             marks={"needs-reboot": "Yes", "fail-ArtifactCommit_Enter": ""}),
    Scenario("rootfs-install-fails", "rootfs", ("ArtifactInstall:fail", "ArtifactRollback:no-reboot"),
             marks={"fail-ArtifactInstall_Leave": ""}),
    Scenario("module-without-rollback-fails", "module", ("ArtifactRollback:no-rollback",),
             marks={"supports-rollback": "No", "fail-module-ArtifactInstall": ""}),
    Scenario("module-rollback-query-fails", "module", ("ArtifactRollback:fail",),
             marks=ROLLBACK_GARBAGE),
    Scenario("download-fails", "rootfs", ("Download:fail",), marks={"fail-Download_Leave": ""}),
    Scenario("sync-fails", "rootfs", ("Sync:fail",), marks={"fail-Sync_Enter": ""},
             transient=("fail-Sync_Enter",)),
    Scenario("aborted-downloading", "rootfs", ("Download:aborted",), conflict=("downloading", 1)),
    Scenario("aborted-installing", "rootfs", ("ArtifactInstall:aborted",),
             conflict=("installing", 1)),
    Scenario("aborted-rebooting", "rootfs", ("ArtifactReboot:aborted",),
             conflict=("rebooting", 1)),
    Scenario("aborted-after-own-reboot", "module", ("ArtifactVerifyReboot:aborted",),
             marks={"needs-reboot": "Yes"}, conflict=("installing", 2)),
    Scenario("aborted-success", "rootfs", ("ArtifactCommit:aborted",), conflict=("success", 1)),
    Scenario("reboot-enter-fails", "rootfs", ("ArtifactReboot:fail",),
             marks={"fail-ArtifactReboot_Enter": ""}),
    Scenario("verify-fails", "rootfs", ("ArtifactVerifyReboot:fail",),
             marks={"fail-ArtifactReboot_Leave": ""}),
    Scenario("restart-during-download", "rootfs", ("Cleanup:retry",), prelude=("Sync:ok",)),
    Scenario("install-window-closed", "rootfs", ("Download:pause",), **WINDOW),
    Scenario("install-window-opens", "module", ("Downloaded:install",),
             prelude=("Download:pause",), **WINDOW),
    Scenario("aborted-waiting", "rootfs", ("Downloaded:aborted",), marks={"clock": "12:00"},
             config=WINDOW["config"], conflict=("pause_before_installing", 1)),
)  # fmt: skip
STANDALONE = (
    Scenario("rootfs-commit", "rootfs", ("Download:ok", "ArtifactInstall:ok", "Installed:commit",
             "ArtifactCommit:ok", "Cleanup:ok"), commands=("install", "boot", "commit")),
    Scenario("module-rollback", "module", ("ArtifactInstall:no-reboot", "Installed:rollback",
             "ArtifactRollback:on-request"), commands=("install", "rollback")),
    Scenario("download-fails", "rootfs", ("Download:fail", "ArtifactFailure:ok"),
             marks={"fail-Download_Leave": ""}, commands=("install",)),
    Scenario("install-fails", "rootfs", ("ArtifactInstall:fail", "ArtifactRollback:no-reboot"),
             marks={"fail-ArtifactInstall_Leave": ""}, commands=("install",)),
    Scenario("bootloader-falls-back", "rootfs", ("Installed:fail",),
             commands=("install", "boot", "boot", "commit")),
    Scenario("commit-veto-after-boot", "rootfs", ("ArtifactCommit:fail", "ArtifactRollback:ok"),
             marks={"fail-ArtifactCommit_Enter": ""}, commands=("install", "boot", "commit")),
    Scenario("module-without-rollback-fails", "module", ("ArtifactRollback:no-rollback",),
             marks={"supports-rollback": "No", "fail-module-ArtifactInstall": ""},
             commands=("install",)),
    Scenario("module-rollback-query-fails", "module", ("ArtifactRollback:fail",),
             marks=ROLLBACK_GARBAGE, commands=("install",)),
    Scenario("download-only-resume", "rootfs", ("Download:pause", "Downloaded:install"),
             commands=("download-only", "resume", "boot", "commit")),
    Scenario("download-only-drop", "module", ("Downloaded:rollback",),
             commands=("download-only", "rollback")),
)  # fmt: skip
SCENARIOS = {Mode.MANAGED: MANAGED, Mode.STANDALONE: STANDALONE}


def edge_id(edge: Edge) -> str:
    return f"{edge.source}:{edge.outcome}"


def scenario_for(mode: Mode, edge: Edge) -> Scenario:
    return next(s for s in SCENARIOS[mode] if edge_id(edge) in s.edges)


CASES = [(mode, e) for e in EDGES for mode in sorted(e.modes)]


def test_every_edge_of_the_table_has_a_scenario() -> None:
    """The cases come from the table: a new edge without a scenario fails here."""
    missing = [(m, edge_id(e)) for m, e in CASES if not any(edge_id(e) in s.edges
                                                             for s in SCENARIOS[m])]  # fmt: skip
    assert not missing
    known = {(m, edge_id(e)) for m, e in CASES}
    extra = [(m, x) for m, ss in SCENARIOS.items() for s in ss for x in s.edges
             if (m, x) not in known]  # fmt: skip
    assert not extra


# -- the world the scenarios run in ---------------------------------------------------


def _probe_scripts(where: Path, states: tuple[str, ...]) -> list[Path]:
    where.mkdir(parents=True, exist_ok=True)
    made = []
    for state in states:
        for action in ("Enter", "Leave", "Error"):
            path = where / f"{state}_{action}_50"
            path.write_text(PROBE_SCRIPT.format(name=f"{state}_{action}"))
            path.chmod(0o755)
            made.append(path)
    return made


@pytest.fixture(scope="module")
def edge_artifacts(tmp_path_factory, keys, rootfs_artifact) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("edge-scripts")
    scripts = _probe_scripts(d / "scripts", ARTIFACT_STATES)
    extra = tuple(arg for path in scripts for arg in ("-s", str(path)))
    rootfs = rootfs_artifact(NEW, size=256 << 10, extra=extra)
    module = write_module_artifact(
        d / "module", "probe", {"f.txt": b"probe\n"}, name=NEW, key=keys.private,
        scripts={p.name: p.read_text() for p in scripts},
    )  # fmt: skip
    return {"rootfs": rootfs, "module": module}


def _prepare(host: HostDevice, scenario: Scenario) -> Path:
    marks = host.root / "marks"
    marks.mkdir()
    for name, content in scenario.marks.items():
        (marks / name).write_text(content)
    _probe_scripts(host.etc_scripts, ROOTFS_STATES)
    (host.etc_scripts / "version").write_text("3")
    module = host.modules / "probe"
    module.write_text(PROBE_MODULE)
    module.chmod(0o755)
    return marks


@dataclass
class Before:
    slot_a: str
    env: dict[str, str]


def _record(host: HostDevice):
    store = Store.open(host.data, create=False)
    if store is None:
        return None
    try:
        return store.load()
    finally:
        store.close()


def _assert_killed_at(host: HostDevice, mode: Mode, edge: Edge, log: str) -> None:
    """The last move in `log` is the edge, and the one record names its next state."""
    moves = re.findall(r"state \(to=(\w+) from=(\w+) outcome=([\w-]+)\)", log)
    assert moves and moves[-1] == (edge.target, edge.source, edge.outcome), moves[-3:]
    record = _record(host)
    if record is None:
        unwritten = {State.IDLE} | ({State.SYNC} if mode is Mode.MANAGED else set())
        assert edge.target in unwritten, f"no record after {edge_id(edge)}"
    else:
        assert record.state == edge.target


def _assert_resumed(host: HostDevice, mode: Mode, record, log: str) -> None:
    if record is None or (mode is Mode.STANDALONE and record.update is None):
        return
    target = RESUME[(mode, record.state)].target
    assert re.search(rf"resuming \(.*state={record.state} to={target}\)", log), log[-2000:]


def _assert_consistent(host: HostDevice, before: Before, payload: str, told: str | None) -> None:
    """Nothing in flight, no trial, slot A intact; the named artifact is the one booted."""
    assert _record(host) is None
    env = host.env()
    assert env["upgrade_available"] == "0", env
    assert sha256(host.slot_a) == before.slot_a
    name = host.run("show-artifact").stdout.strip()
    installed = name == NEW
    assert name in (NEW, before.env.get("artifact_name", name), "release-0", "unknown"), name
    if payload == "rootfs":
        assert env["mender_boot_part"] == str(PART_B if installed else PART_A), (env, name)
    else:
        assert env == before.env
    if told is not None:  # what the server was told last is what the device says
        assert (told == "success") == installed, (told, name)
    store = Store.open(host.data, create=False)
    history = store.history() if store is not None else []
    if store is not None:
        store.close()
    if installed:
        assert history and history[-1].result == "success"


# -- standalone ----------------------------------------------------------------------


def _cli(host: HostDevice, marks: Path, cmd: str, art: Path, kill: str | None):
    env = {**os.environ, "MARKS": str(marks)}
    if kill:
        env[KILL_AT] = kill
    argv = {"install": ["install", str(art)], "download-only": ["install", "--download-only",
            str(art)], "resume": ["install", "--resume"]}.get(cmd, [cmd])  # fmt: skip
    return host.run("--log-level", "info", *argv, env=env)


def _run_standalone(host, marks, scenario, art, kill: str, from_step: int = 0):
    """Run the commands until the agent is killed; returns (step index, stderr) or None."""
    for i, cmd in enumerate(scenario.commands[from_step:], from_step):
        if cmd == "boot":
            host.boot()
            continue
        done = _cli(host, marks, cmd, art, kill)
        if done.returncode == -signal.SIGKILL:
            return i, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
    return None


@pytest.mark.parametrize("edge", [e for m, e in CASES if m is Mode.STANDALONE], ids=edge_id)
def test_standalone_power_loss_on_edge(host: HostDevice, edge_artifacts, edge: Edge) -> None:
    mode = Mode.STANDALONE
    scenario = scenario_for(mode, edge)
    marks = _prepare(host, scenario)
    art = edge_artifacts[scenario.payload]
    before = Before(sha256(host.slot_a), host.env())
    killed = _run_standalone(host, marks, scenario, art, edge_id(edge))
    assert killed is not None, f"{scenario.name} never took {edge_id(edge)}"
    step, log = killed
    _assert_killed_at(host, mode, edge, log)
    record = _record(host)
    host.boot()  # the power comes back: the bootloader runs first
    again = _cli(host, marks, scenario.commands[step], art, None)  # the next start
    assert "Traceback" not in again.stderr, again.stderr
    _assert_resumed(host, mode, record, again.stderr)
    _run_standalone(host, marks, scenario, art, "", step + 1)
    if _record(host) is not None:  # still waits for a command: end it
        assert _cli(host, marks, "rollback", art, None).returncode == 0
    _assert_consistent(host, before, scenario.payload, None)


# -- managed -------------------------------------------------------------------------


class EdgeAPI(FakeDeviceAPI):
    """The fake device API serving one artifact; 409 to the n-th report of `conflict`."""

    def __init__(self, artifact: Path, conflict: tuple[str, int] | None) -> None:
        self.body = artifact.read_bytes()
        self.conflict = conflict
        self.aborted = False
        super().__init__(download=self._download, artifact_name=NEW)

    def _download(self, h, seen: Seen) -> None:
        h.reply(200, self.body, {"Content-Type": "application/octet-stream"})

    def _hand_out(self, h, seen: Seen) -> None:
        if self.aborted or self.final() is not None:
            h.reply(204)
        else:
            h.reply_json(200, self.deployment())

    def _route(self, h, seen: Seen) -> None:
        if seen.path.split("?")[0].endswith("/status") and self.conflict is not None:
            status = json.loads(seen.body)["status"]
            wanted, nth = self.conflict
            if self.aborted or (status == wanted and self.statuses.count(status) + 1 >= nth):
                self.aborted = True
                h.reply_json(409, {"error": "deployment aborted"})
                return
        super()._route(h, seen)

    def final(self) -> str | None:
        finals = [s for s in self.statuses if s in ("success", "failure")]
        return finals[-1] if finals else None


def _start(dev: DaemonDevice, marks: Path, kill: str | None) -> None:
    dev.env_extra = {"MARKS": str(marks), CLOCK: str(marks / "clock")}
    dev.env_extra |= {KILL_AT: kill} if kill else {}
    dev.start()


def _run_until_killed(dev: DaemonDevice, marks: Path, kill: str, timeout: float = 60) -> str:
    """Run the daemon (rebooting it as asked) until the kill seam fires; its log since."""
    _start(dev, marks, kill)
    deadline = time.monotonic() + timeout
    while True:
        reboots = len(dev.reboots)
        assert dev.proc is not None
        try:
            dev.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except Exception:
            raise AssertionError(
                f"never killed at {kill}:\n{dev.log.read_text()[-3000:]}"
            ) from None
        if len(dev.reboots) > reboots:  # RebootCommand: power off, the bootloader, on again
            dev.host.boot()
            _start(dev, marks, kill)
            continue
        return dev.log.read_text()


def _settled(dev: DaemonDevice, api: EdgeAPI) -> bool:
    return (api.aborted or api.final() is not None) and _record(dev.host) is None


def _run_to_the_end(dev: DaemonDevice, marks: Path, api: EdgeAPI, timeout: float = 90) -> None:
    _start(dev, marks, None)
    deadline = time.monotonic() + timeout
    while not _settled(dev, api):
        assert time.monotonic() < deadline, dev.log.read_text()[-4000:]
        assert dev.proc is not None
        if dev.proc.poll() is not None:  # a reboot
            dev.host.boot()
            _start(dev, marks, None)
        time.sleep(0.2)
    dev.stop()


@pytest.mark.parametrize("edge", [e for m, e in CASES if m is Mode.MANAGED], ids=edge_id)
def test_managed_power_loss_on_edge(tmp_path: Path, edge_artifacts, edge: Edge) -> None:
    mode = Mode.MANAGED
    scenario = scenario_for(mode, edge)
    with EdgeAPI(edge_artifacts[scenario.payload], scenario.conflict) as api:
        dev = make_daemon_device(
            tmp_path / "dev", api, server_url=api.url, preauthorize=False, **scenario.config
        )
        try:
            marks = _prepare(dev.host, scenario)
            before = Before(sha256(dev.host.slot_a), dev.host.env())
            for kill in (*scenario.prelude, edge_id(edge)):
                log = _run_until_killed(dev, marks, kill)
                dev.host.boot()  # the power comes back
                for name, content in scenario.changes.items():
                    (marks / name).write_text(content)
            _assert_killed_at(dev.host, mode, Edge(edge.source, edge.outcome, edge.target), log)
            record = _record(dev.host)
            for name in scenario.transient:
                (marks / name).unlink()
            start = len(dev.log.read_text())
            _run_to_the_end(dev, marks, api)
            _assert_resumed(dev.host, mode, record, dev.log.read_text()[start:])
        finally:
            dev.stop()
        assert "Traceback" not in dev.log.read_text()
        _assert_consistent(dev.host, before, scenario.payload, api.final())
        if api.final() == "failure":
            assert api.logs, "a failure is reported with its log"
