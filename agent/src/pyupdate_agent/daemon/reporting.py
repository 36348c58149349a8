"""What the device tells the server about a deployment: statuses, the result, the log.

Which status is sent when is the table's (core/states.py); this module sends
them. `success` before the commit is retried with backoff until the commit
deadline; the result of a failed update is `failure` followed by the
deployment log (mender's order). A 409 means the deployment was aborted.
"""

from __future__ import annotations

import json
import logging
import os
import time

from ..backoff import backoff, jitter
from ..core.record import Deployment, Record
from ..errors import AgentError
from .client import DeploymentAborted
from .session import Session

log = logging.getLogger(__name__)

MAX_LOG_MESSAGES = 1000


class Reporter:
    """Args:
    session: the authenticated link.
    retry_poll: RetryPollIntervalSeconds, the cap of the backoff.
    spread: PollJitter.
    """

    def __init__(self, session: Session, retry_poll: float, spread: float) -> None:
        self.session = session
        self.retry_poll = retry_poll
        self.spread = spread

    def status(self, deployment: Deployment, status: str) -> None:
        """Raises DeploymentAborted on a 409, ServerError/IdentityError if unreachable."""
        self.session.api(self.session.client.report_status, deployment.id, status)

    def success(self, deployment: Deployment, deadline: float, deadline_seconds: float) -> None:
        """`success` with a fresh token, retried until `deadline` (wall clock)."""
        failures = 0
        while True:
            try:
                self.session.fresh()  # proves authentication still works, as mender does
                self.status(deployment, "success")
                return
            except DeploymentAborted:
                raise
            except AgentError as err:
                left = deadline - time.time()
                if left <= 0:
                    raise AgentError(
                        f"the server stayed unreachable for {deadline_seconds} s after"
                        f" the reboot ({err}): rolling back"
                    ) from None
                failures += 1
                delay = min(jitter(backoff(failures, self.retry_poll), self.spread), left)
                log.warning("cannot report success yet: %s", err, extra={"retry_in": delay})
                time.sleep(max(delay, 0.1))

    def result(self, record: Record) -> None:
        """The result of the update (failure: with its log); an abort ends it quietly."""
        assert record.deployment is not None and record.final is not None
        if not record.aborted:
            try:
                if record.final == "failure":
                    self.status(record.deployment, "failure")
                    self.session.api(
                        self.session.client.upload_log, record.deployment.id, log_messages(record)
                    )
                elif not record.success_reported:
                    self.status(record.deployment, record.final)
            except DeploymentAborted as err:
                log.warning("%s", err)
        log.info(
            "deployment finished",
            extra={"deployment": record.deployment.id, "status": record.final},
        )


def log_messages(record: Record) -> list[dict[str, str]]:
    """The deployment log as the server takes it, ending with the reason."""
    messages: list[dict[str, str]] = []
    path = record.log_path
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                messages.append(
                    {
                        "level": str(entry.get("level", "info")),
                        "message": str(entry.get("message", "")),
                        "timestamp": str(entry.get("time", "")),
                    }
                )
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    messages.append({"level": "error", "message": record.reason, "timestamp": now})
    return messages[-MAX_LOG_MESSAGES:]
