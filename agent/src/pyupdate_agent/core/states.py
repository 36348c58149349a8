"""The update's states and the one table that drives them, standalone and managed (Mender's names).

Each row is a state: the status reported on entering it (managed mode), its
steps in order (state scripts, actions of the update, status reports) and the
scripts run when a step fails. Each edge says where an outcome leads, and in
which mode. The runner (runner.py) persists the next state before it runs,
so a power cut resumes from the one record (RESUME). Nothing moves the
machine but this table: a step only returns an outcome.

`python -m pyupdate_agent.core.states --markdown` prints
docs/agent-state-machine.md (tests/agent/test_state_table.py keeps them equal).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from .names import Mode, Outcome, State

S, R = State, Outcome
BOTH = frozenset(Mode)
ALONE = frozenset({Mode.STANDALONE})
MANAGED = frozenset({Mode.MANAGED})
FINAL = "final"  # the Report status that sends the update's result (and log on failure)


# -- steps: what a row does, in order ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Script:
    """The `<state>_<action>_NN` state scripts. Args:
    soft: a failure is logged and the row goes on (the way back, Idle).
    late: too late to go back: a failure marks the artifact name `_INCONSISTENT`.
    """

    state: str
    action: str
    soft: bool = False
    late: bool = False

    def __str__(self) -> str:
        return f"{self.state}_{self.action}"


@dataclass(frozen=True, slots=True)
class Do:
    """An action of the update (steps.py) or of the daemon (daemon/machine.py).

    It may end the row early with an outcome. `soft`: a script or module failure
    is logged and the row goes on (the way back); a boot env error still stops
    the machine with the state recorded, so the next start tries again.
    """

    name: str
    soft: bool = False
    note: str = ""

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Report:
    """A status to the server (managed mode; nothing in standalone mode). Args:
    status: a Mender status, or FINAL: the result (`failure` with the deployment log).
    soft: unreachable is logged (the result stays in the record, sent from Sync).
    when: only if this condition (an action's name) holds.
    """

    status: str
    soft: bool = False
    when: str = ""
    note: str = ""

    def __str__(self) -> str:
        status = "the result" if self.status == FINAL else f"`{self.status}`"
        return f"report {status}" + (f" if {self.when}" if self.when else "")


Step = Script | Do | Report


@dataclass(frozen=True, slots=True)
class Row:
    """Args:
    modes: where the state runs.
    status: reported on entering (not when resumed), best effort; 409 = ABORTED.
    steps: in order; a failing one runs `error` (soft) and the outcome is FAIL.
    error: scripts, or an action that owns the failure's message (Sync's backoff).
    phase: the update's phase written with this state (None: unchanged).
    """

    state: State
    modes: frozenset[Mode]
    steps: tuple[Step, ...]
    error: tuple[Script | Do, ...] = ()
    status: str | None = None
    phase: str | None = None
    note: str = ""


ROWS: dict[State, Row] = {
    row.state: row
    for row in (
        Row(S.IDLE, MANAGED, (
            Do("release_memory", soft=True, note="after an update: re-exec to drop the installer"),
            Script("Idle", "Enter", soft=True),
            Do("wait", soft=True, note="until a poll is due or check-update/send-inventory"),
            Script("Idle", "Leave", soft=True),
        ), note="nothing is written: nothing to resume; standalone: the command ends here"),
        Row(S.SYNC, MANAGED, (
            Script("Sync", "Enter"),
            Report(FINAL, when="result_owed"),
            Do("inventory", note="when due"),
            Do("check_update", note="when due"),
            Report("already-installed", when="already_installed"),
            Script("Sync", "Leave"),
            Do("take_deployment", note="the record is written from here on"),
        ), error=(Do("back_off", note="RetryPollIntervalSeconds"),)),
        Row(S.DOWNLOAD, BOTH, (
            Script("Download", "Enter"),
            Do("download", note="header, signature, depends; the update recorded; payload streamed"),
            Do("supports_rollback", note="SupportsRollback"),
            Script("Download", "Leave"),
            Do("hold_install", note="`install --download-only`; managed: outside the install window"),
        ), error=(Script("Download", "Error"),), status="downloading", phase="download"),
        Row(S.DOWNLOADED, BOTH, (
            Do("await_install", soft=True, note="standalone: `install --resume` or `rollback`;"
               " managed: until the install window opens, the status again every"
               " UpdatePollIntervalSeconds (409: aborted)"),
        ), status="pause_before_installing", phase="downloaded",
            note="the payload waits in the inactive slot (or the module's tree), nothing activated"),
        Row(S.ARTIFACT_INSTALL, BOTH, (
            Script("ArtifactInstall", "Enter"),
            Do("install", note="rootfs: the env switch; a module: ArtifactInstall"),
            Script("ArtifactInstall", "Leave"),
            Do("needs_reboot", note="NeedsArtifactReboot"),
        ), error=(Script("ArtifactInstall", "Error"),), status="installing", phase="install"),
        Row(S.INSTALLED, ALONE, (
            Do("await_command", note="the bootloader fell back: FAIL"),
        ), phase="installed", note="`install` ends here unless the payload cannot roll back"),
        Row(S.ARTIFACT_REBOOT, MANAGED, (
            Script("ArtifactReboot", "Enter"),
            Do("reboot", note="RebootCommand, or a module's ArtifactReboot"),
        ), error=(Script("ArtifactReboot", "Error"),), status="rebooting", phase="installed"),
        Row(S.ARTIFACT_VERIFY_REBOOT, MANAGED, (
            Do("verify_reboot", note="rootfs: the new slot runs; a module: ArtifactVerifyReboot"),
            Script("ArtifactReboot", "Leave"),
        ), error=(Script("ArtifactReboot", "Error"),), status="installing", phase="installed"),
        Row(S.ARTIFACT_COMMIT, BOTH, (
            Do("check_commit", note="rootfs: the bootloader did not fall back meanwhile"),
            Script("ArtifactCommit", "Enter"),
            Report("success", note="until CommitReportDeadlineSeconds, with a fresh token"),
            Do("commit", note="rootfs: upgrade_available=0; a module: ArtifactCommit"),
            Script("ArtifactCommit", "Leave", soft=True, late=True),
        ), error=(Script("ArtifactCommit", "Error"),), status="installing", phase="commit"),
        Row(S.ARTIFACT_ROLLBACK, BOTH, (
            Do("check_rollback", note="SupportsRollback (on a failure)"),
            Script("ArtifactRollback", "Enter", soft=True),
            Do("rollback", soft=True, note="rootfs: the env back to the old slot"),
            Script("ArtifactRollback", "Leave", soft=True),
            Do("rolled_back", note="reboot if the new system ran"),
        ), phase="failure", note="phase `rollback` when on request"),
        Row(S.ARTIFACT_ROLLBACK_REBOOT, MANAGED, (
            Script("ArtifactRollbackReboot", "Enter", soft=True),
            Do("rollback_reboot", soft=True, note="the old system runs whatever happens"),
        ), phase="failure"),
        Row(S.ARTIFACT_VERIFY_ROLLBACK_REBOOT, MANAGED, (
            Do("verify_rollback_reboot", soft=True),
            Script("ArtifactRollbackReboot", "Leave", soft=True),
        ), phase="failure"),
        Row(S.ARTIFACT_FAILURE, BOTH, (
            Script("ArtifactFailure", "Enter", soft=True),
            Do("failure", soft=True, note="a module: ArtifactFailure"),
            Script("ArtifactFailure", "Leave", soft=True),
        ), phase="failure"),
        Row(S.CLEANUP, BOTH, (
            Do("cleanup", soft=True, note="Cleanup; the result, provides and history in one transaction"),
            Report(FINAL, soft=True),
        ), note="the record is dropped once nothing is owed to the server"),
    )
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Edge:
    source: State
    outcome: Outcome
    target: State
    modes: frozenset[Mode] = BOTH
    note: str = ""


EDGES: tuple[Edge, ...] = (
    Edge(S.IDLE, R.OK, S.SYNC, MANAGED),
    Edge(S.SYNC, R.OK, S.DOWNLOAD, MANAGED, "a deployment"),
    Edge(S.SYNC, R.NOTHING, S.IDLE, MANAGED),
    Edge(S.SYNC, R.FAIL, S.IDLE, MANAGED, "backoff"),
    Edge(S.DOWNLOAD, R.OK, S.ARTIFACT_INSTALL),
    Edge(S.DOWNLOAD, R.PAUSE, S.DOWNLOADED, BOTH, "`install --download-only`; managed: outside the install window"),
    Edge(S.DOWNLOAD, R.FAIL, S.ARTIFACT_FAILURE, BOTH, "nothing was activated: no rollback"),
    Edge(S.DOWNLOAD, R.ABORTED, S.ARTIFACT_FAILURE, MANAGED),
    Edge(S.DOWNLOADED, R.INSTALL, S.ARTIFACT_INSTALL, BOTH, "`install --resume`; managed: the install window opened"),
    Edge(S.DOWNLOADED, R.ROLLBACK, S.CLEANUP, ALONE, "`pyupdate rollback`: the download is dropped, nothing was installed"),
    Edge(S.DOWNLOADED, R.ABORTED, S.ARTIFACT_FAILURE, MANAGED, "the download is dropped"),
    Edge(S.ARTIFACT_INSTALL, R.OK, S.ARTIFACT_REBOOT, MANAGED),
    Edge(S.ARTIFACT_INSTALL, R.NO_REBOOT, S.ARTIFACT_COMMIT, MANAGED),
    Edge(S.ARTIFACT_INSTALL, R.OK, S.INSTALLED, ALONE),
    Edge(S.ARTIFACT_INSTALL, R.NO_REBOOT, S.INSTALLED, ALONE),
    Edge(S.ARTIFACT_INSTALL, R.FAIL, S.ARTIFACT_ROLLBACK),
    Edge(S.ARTIFACT_INSTALL, R.ABORTED, S.ARTIFACT_FAILURE, MANAGED, "409 on entering: nothing installed"),
    Edge(S.INSTALLED, R.COMMIT, S.ARTIFACT_COMMIT, ALONE, "`pyupdate commit`, or at once without rollback support"),
    Edge(S.INSTALLED, R.ROLLBACK, S.ARTIFACT_ROLLBACK, ALONE, "`pyupdate rollback`"),
    Edge(S.INSTALLED, R.FAIL, S.ARTIFACT_FAILURE, ALONE, "the bootloader fell back"),
    Edge(S.ARTIFACT_REBOOT, R.OK, S.ARTIFACT_VERIFY_REBOOT, MANAGED, "a module rebooted itself"),
    Edge(S.ARTIFACT_REBOOT, R.FAIL, S.ARTIFACT_ROLLBACK, MANAGED),
    Edge(S.ARTIFACT_REBOOT, R.ABORTED, S.ARTIFACT_ROLLBACK, MANAGED),
    Edge(S.ARTIFACT_VERIFY_REBOOT, R.OK, S.ARTIFACT_COMMIT, MANAGED),
    Edge(S.ARTIFACT_VERIFY_REBOOT, R.FAIL, S.ARTIFACT_ROLLBACK, MANAGED),
    Edge(S.ARTIFACT_VERIFY_REBOOT, R.ABORTED, S.ARTIFACT_ROLLBACK, MANAGED),
    Edge(S.ARTIFACT_COMMIT, R.OK, S.CLEANUP),
    Edge(S.ARTIFACT_COMMIT, R.FAIL, S.ARTIFACT_ROLLBACK),
    Edge(S.ARTIFACT_COMMIT, R.ABORTED, S.ARTIFACT_ROLLBACK, MANAGED),
    Edge(S.ARTIFACT_ROLLBACK, R.OK, S.ARTIFACT_ROLLBACK_REBOOT, MANAGED, "the new system ran"),
    Edge(S.ARTIFACT_ROLLBACK, R.OK, S.ARTIFACT_FAILURE, ALONE, "no reboot in standalone mode"),
    Edge(S.ARTIFACT_ROLLBACK, R.NO_REBOOT, S.ARTIFACT_FAILURE),
    Edge(S.ARTIFACT_ROLLBACK, R.NO_ROLLBACK, S.ARTIFACT_FAILURE),
    Edge(S.ARTIFACT_ROLLBACK, R.FAIL, S.ARTIFACT_FAILURE),
    Edge(S.ARTIFACT_ROLLBACK, R.ON_REQUEST, S.CLEANUP, ALONE),
    Edge(S.ARTIFACT_ROLLBACK_REBOOT, R.OK, S.ARTIFACT_VERIFY_ROLLBACK_REBOOT, MANAGED),
    Edge(S.ARTIFACT_VERIFY_ROLLBACK_REBOOT, R.OK, S.ARTIFACT_FAILURE, MANAGED),
    Edge(S.ARTIFACT_FAILURE, R.OK, S.CLEANUP),
    Edge(S.CLEANUP, R.OK, S.IDLE),
    Edge(S.CLEANUP, R.RETRY, S.DOWNLOAD, MANAGED, "the agent restarted during the download"),
)  # fmt: skip

_NEXT: dict[tuple[Mode, State, Outcome], State] = {
    (mode, e.source, e.outcome): e.target for e in EDGES for mode in e.modes
}


def next_state(mode: Mode, state: State, outcome: Outcome) -> State:
    try:
        return _NEXT[(mode, state, outcome)]
    except KeyError:
        raise ValueError(f"no transition from {state} on {outcome} ({mode})") from None


# -- resuming: after a reboot or a power cut, from the record's state ------------------


@dataclass(frozen=True, slots=True)
class Resume:
    """Args:
    target: where the machine goes on.
    reason: the failure to record (when none is recorded yet).
    retry: start the download over once the failure path has run.
    """

    target: State
    reason: str = ""
    retry: bool = False


RESUME: dict[tuple[Mode, State], Resume] = {
    (Mode.MANAGED, S.IDLE): Resume(S.IDLE),  # a result still to report: Sync sends it
    (Mode.MANAGED, S.DOWNLOAD): Resume(
        S.ARTIFACT_FAILURE, "the agent restarted during the download", retry=True
    ),
    (Mode.STANDALONE, S.DOWNLOAD): Resume(S.ARTIFACT_FAILURE, "interrupted during download"),
    (Mode.MANAGED, S.ARTIFACT_INSTALL): Resume(
        S.ARTIFACT_ROLLBACK, "the agent restarted during ArtifactInstall"
    ),
    (Mode.STANDALONE, S.ARTIFACT_INSTALL): Resume(
        S.ARTIFACT_ROLLBACK, "interrupted during install; rolled back"
    ),
    **{(mode, S.DOWNLOADED): Resume(S.DOWNLOADED) for mode in Mode},  # waits on
    (Mode.STANDALONE, S.INSTALLED): Resume(S.INSTALLED),
    (Mode.MANAGED, S.ARTIFACT_REBOOT): Resume(S.ARTIFACT_VERIFY_REBOOT),  # the reboot happened
    (Mode.MANAGED, S.ARTIFACT_VERIFY_REBOOT): Resume(S.ARTIFACT_VERIFY_REBOOT),
    (Mode.MANAGED, S.ARTIFACT_ROLLBACK_REBOOT): Resume(S.ARTIFACT_VERIFY_ROLLBACK_REBOOT),
    (Mode.MANAGED, S.ARTIFACT_VERIFY_ROLLBACK_REBOOT): Resume(S.ARTIFACT_VERIFY_ROLLBACK_REBOOT),
    **{
        (mode, state): Resume(state)  # idempotent: run again to the end
        for mode in Mode
        for state in (S.ARTIFACT_COMMIT, S.ARTIFACT_ROLLBACK, S.ARTIFACT_FAILURE, S.CLEANUP)
    },
}


def phase_of(state: State, on_request: bool) -> str | None:
    """The update's phase in `state` (`rollback` for a rollback on request)."""
    if state == S.ARTIFACT_ROLLBACK and on_request:
        return "rollback"
    return ROWS[state].phase


# -- the document ----------------------------------------------------------------------


def markdown() -> str:
    """docs/agent-state-machine.md, from the table above."""
    out = [
        "# The agent's state machine",
        "",
        "<!-- generated by `python -m pyupdate_agent.core.states --markdown` from"
        " agent/src/pyupdate_agent/core/states.py; tests/agent/test_state_table.py"
        " fails when they differ -->",
        "",
        "One table drives `pyupdate install`, `commit`, `rollback` (standalone) and",
        "`pyupdate daemon` (managed). Each state runs its steps in order; a failing",
        "step runs the state's error scripts and the outcome is `fail`. The next",
        "state is written to the store (one SQLite transaction with the update's",
        "phase) before it runs; after a power cut the agent resumes from that record.",
        "Status reports go to the server in managed mode only. Artifact scripts run",
        "only while an update is in flight (they come with it).",
        "",
        "```mermaid",
        "stateDiagram-v2",
    ]
    for e in EDGES:
        label = e.outcome if e.modes == BOTH else f"{e.outcome} ({_modes(e.modes)})"
        out.append(f"    {e.source} --> {e.target}: {label}")
    for waits in (S.DOWNLOADED, S.INSTALLED):
        out.append(f"    {waits} --> [*]: {R.WAIT} (standalone)")
    out += ["```", "", "## States", ""]
    for row in ROWS.values():
        out.append(f"### {row.state}")
        out.append("")
        facts = [f"modes: {_modes(row.modes)}"]
        if row.status:
            facts.append(f"status on entering: `{row.status}` (managed)")
        if row.phase:
            facts.append(f"phase: `{row.phase}`")
        out.append("; ".join(facts) + ("." if not row.note else f"; {row.note}."))
        out.append("")
        for i, step in enumerate(row.steps, 1):
            out.append(f"{i}. {_step(step)}")
        if row.error:
            out.append("")
            out.append("On a failure: " + ", ".join(_step(s) for s in row.error) + ".")
        out.append("")
    out += ["## Edges", "", "| from | outcome | to | modes | note |", "|---|---|---|---|---|"]
    for e in EDGES:
        out.append(f"| {e.source} | `{e.outcome}` | {e.target} | {_modes(e.modes)} | {e.note} |")
    out += ["", "## Resuming after a reboot or a power cut", ""]
    out += ["| record says | mode | goes on with | failure recorded |", "|---|---|---|---|"]
    for (mode, state), r in RESUME.items():
        note = r.reason + ("; then the download starts over" if r.retry else "")
        out.append(f"| {state} | {mode} | {r.target} | {note} |")
    return "\n".join(out) + "\n"


def _modes(modes: frozenset[Mode]) -> str:
    return "both" if modes == BOTH else next(iter(modes))


def _step(step: Step) -> str:
    if isinstance(step, Script):
        flags = [f for f, on in (("soft", step.soft), ("late: `_INCONSISTENT`", step.late)) if on]
        return f"script `{step}`" + (f" ({', '.join(flags)})" if flags else "")
    if isinstance(step, Report):
        text = str(step) + (" (soft)" if step.soft else "") + " (managed)"
        return text + (f": {step.note}" if step.note else "")
    text = f"`{step.name}`" + (" (soft)" if step.soft else "")
    return text + (f": {step.note}" if step.note else "")


if __name__ == "__main__":
    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m pyupdate_agent.core.states --markdown")
    sys.stdout.write(markdown())
