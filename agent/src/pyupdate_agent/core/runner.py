"""Runs the table (states.py) for either mode: one state at a time, the record written first.

For each state: the status on entering (managed, not when resumed), then the
row's steps in order. A step that fails runs the row's error steps and gives
FAIL; a 409 gives ABORTED; an action may end the row with its own outcome.
The edge for the outcome names the next state, which is written to the store
(the one record, with the update's phase, one transaction) before it runs.

What the steps act on is `Context`; what they do is `Actions` (steps.py for
the update, daemon/machine.py adds Idle, Sync and the server). Neither moves
the machine: only the table does.

Test seam: `PYUPDATE_TEST_KILL_AT=<state>:<outcome>` SIGKILLs the agent right
after that edge's next state was written (tests/agent/test_power_loss_edges.py).
"""

from __future__ import annotations

import logging
import os
import signal
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from ..errors import AgentError, ModuleError, ScriptError, StoreError
from ..log import deployment_log
from ..scripts import ScriptRunner
from ..store import Store
from .errors import Aborted, Refused
from .record import InFlight, Phase, Record
from .states import (
    FINAL,
    RESUME,
    ROWS,
    Do,
    Mode,
    Outcome,
    Report,
    Row,
    Script,
    State,
    Step,
    next_state,
    phase_of,
)

log = logging.getLogger(__name__)

KILL_AT = "PYUPDATE_TEST_KILL_AT"


class Actions(Protocol):
    def do(self, name: str) -> Outcome | None:
        """Run the action `name`; an outcome ends the row with it."""
        ...

    def report(self, status: str) -> None:
        """Send `status` (managed mode); raises Aborted on a 409, AgentError if unreachable."""
        ...

    def when(self, name: str) -> bool: ...


@dataclass
class Context:
    """What the steps act on. Args:
    store, scripts: the store and the state scripts.
    mode: standalone or managed.
    record: the one record (kept in the store while worth keeping).
    error: the first failure of this run (standalone raises it at the end).
    last_error: the failure being handled (for error actions).
    result, finished: how the update ended (Cleanup), for the command's output.
    """

    store: Store
    scripts: ScriptRunner
    mode: Mode
    record: Record | None = None
    error: AgentError | None = None
    last_error: AgentError | None = None
    result: str | None = None
    finished: InFlight | None = None

    def set(self, **changes: object) -> Record:
        """Change the record in memory; it is written with the next state."""
        assert self.record is not None
        self.record = replace(self.record, **changes)  # type: ignore[arg-type]
        return self.record

    def save(self, **changes: object) -> Record:
        """Change the record and write it now (before an action that may not return)."""
        record = self.set(**changes)
        if record.worth_keeping:
            self.store.save(record)
        return record

    def fail(self, err: AgentError) -> None:
        self.last_error = err
        if self.error is None:
            self.error = err
        record = self.record
        if record is not None and not record.reason and record.final is None:
            self.record = replace(record, reason=str(err))


class Machine:
    def __init__(self, ctx: Context, actions: Actions) -> None:
        self.ctx = ctx
        self.actions = actions

    # -- the loop ----------------------------------------------------------------
    def run(self, state: State, resumed: bool = False) -> State:
        """Run from `state` until the update waits (standalone) or, standalone, ends in Idle."""
        while True:
            outcome = self._row(ROWS[state], entered=not resumed)
            resumed = False
            if outcome is Outcome.WAIT:
                return state
            target = next_state(self.ctx.mode, state, outcome)
            self._move(state, outcome, target)
            if target is State.IDLE and self.ctx.mode is Mode.STANDALONE:
                return target
            state = target

    def resume(self, record: Record) -> State:
        """Go on from the record after a reboot or a power cut (states.RESUME)."""
        ctx = self.ctx
        how = RESUME[(ctx.mode, record.state)]
        restarts = record.restarts + (1 if record.state is State.DOWNLOAD else 0)
        ctx.record = replace(
            record,
            reason=record.reason or how.reason,
            retry=record.retry or how.retry,
            restarts=restarts,
        )
        deployment = record.deployment.id if record.deployment else None
        level = logging.WARNING if ctx.mode is Mode.MANAGED else logging.INFO
        extra = {"deployment": deployment, "state": str(record.state), "to": str(how.target)}
        log.log(level, "resuming", extra=extra)
        self._move(record.state, None, how.target)
        return self.run(how.target, resumed=True)

    def _move(self, source: State, outcome: Outcome | None, target: State) -> None:
        """Write the record with the next state (and the update's phase) before it runs."""
        ctx = self.ctx
        record = ctx.record
        if record is not None:
            record = replace(record, state=target)
            update = record.update
            phase = phase_of(target, on_request=not record.reason) if update else None
            moved = update is not None and phase is not None and phase != update.phase
            if moved:
                assert update is not None and phase is not None
                record = replace(record, update=replace(update, phase=Phase(phase)))
            ctx.record = record
            if record.worth_keeping:
                ctx.store.save(record)
            if moved:
                with self._log():
                    log.info("phase", extra={"state": phase, "artifact": update.artifact_name})
        log.info("state", extra={"to": str(target), "from": str(source), "outcome": str(outcome)})
        if outcome is not None and os.environ.get(KILL_AT) == f"{source}:{outcome}":
            os.kill(os.getpid(), signal.SIGKILL)

    # -- one state ---------------------------------------------------------------
    def _row(self, row: Row, entered: bool) -> Outcome:
        ctx = self.ctx
        try:
            if entered and row.status:
                self._status(row.status)
            for step in row.steps:
                with self._log():
                    outcome = self._step(step)
                if outcome is not None:
                    return outcome
            return Outcome.OK
        except (Refused, StoreError):
            raise  # nothing changes / nothing can be recorded: the command stops here
        except Aborted as err:
            if ctx.record is None:  # no deployment in hand (Sync): an ordinary failure
                return self._failed(row, err)
            with self._log():
                log.warning("%s", err, extra={"state": str(row.state)})
            ctx.set(aborted=True, reason=ctx.record.reason or str(err))
            return Outcome.ABORTED
        except AgentError as err:
            return self._failed(row, err)

    def _failed(self, row: Row, err: AgentError) -> Outcome:
        self.ctx.fail(err)
        with self._log():
            if not any(isinstance(step, Do) for step in row.error):
                # standalone: the command's one `error:` line says it
                level = logging.ERROR if self.ctx.mode is Mode.MANAGED else logging.INFO
                log.log(level, "deployment failed: %s", err, extra={"state": str(row.state)})
            for step in row.error:
                try:
                    if isinstance(step, Script):
                        self._script(replace(step, soft=True))
                    else:
                        self.actions.do(step.name)
                except AgentError as again:
                    log.warning("%s failed: %s", step, again)
        return Outcome.FAIL

    def _step(self, step: Step) -> Outcome | None:
        if isinstance(step, Script):
            self._script(step)
            return None
        if isinstance(step, Report):
            self._report(step)
            return None
        if not step.soft:
            return self.actions.do(step.name)
        try:
            return self.actions.do(step.name)
        except (ModuleError, ScriptError) as err:  # the way back goes on, like mender
            log.warning("%s failed: %s", step.name, err)
            return None

    def _script(self, step: Script) -> None:
        record = self.ctx.record
        if step.state.startswith("Artifact") and (record is None or record.update is None):
            return  # the artifact's scripts come with the update in flight
        if not step.late:
            self.ctx.scripts.run(step.state, step.action, ignore_errors=step.soft)
            return
        try:
            self.ctx.scripts.run(step.state, step.action)
        except ScriptError as err:
            # too late to go back: the update stands, its name says so (mender)
            log.warning("%s failed: %s", step, err)
            self.ctx.set(reason=str(err))

    def _status(self, status: str) -> None:
        """The status on entering a state: best effort, but a 409 stops the update."""
        record = self.ctx.record
        if self.ctx.mode is Mode.STANDALONE or record is None or record.aborted:
            return
        try:
            self.actions.report(status)
        except Aborted:
            raise
        except AgentError as err:
            log.warning("status report failed: %s", err, extra={"status": status})

    def _report(self, step: Report) -> None:
        ctx = self.ctx
        record = ctx.record
        if ctx.mode is Mode.STANDALONE or (step.when and not self.actions.when(step.when)):
            return
        if step.status == FINAL:
            if record is None or record.final is None:
                return
        elif record is not None and record.aborted:
            return
        try:
            self.actions.report(step.status)
        except AgentError as err:
            if not step.soft or isinstance(err, Aborted):
                raise
            # kept in the record: Sync reports it before asking for more
            log.warning("cannot report the result yet: %s", err)
            return
        if step.status == FINAL:
            ctx.record = None
            ctx.store.clear()

    def _log(self):
        record = self.ctx.record
        if record is None or not record.log_path:
            return nullcontext()
        return deployment_log(Path(record.log_path))
