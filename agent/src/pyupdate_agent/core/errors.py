"""Errors the runner treats apart: a refusal changes nothing, an abort stops the update."""

from __future__ import annotations

from ..errors import AgentError, UpdateError


class Refused(UpdateError):
    """The command cannot go on now (commit before the reboot...); the record is unchanged."""


class Aborted(AgentError):
    """The server aborted the deployment (409 on a status report): nothing more is reported."""
