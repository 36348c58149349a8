"""Errors of the agent: one class per kind of failure, one line each.

Only the command line's edge (cli.py, and the daemon's entry) catches them;
the exit code each one gives is in exitcodes.py's table, with the artifact
library's errors (docs/agent.md, "Exit codes").
"""

from __future__ import annotations


class AgentError(Exception):
    """Base class: str(err) is the one line shown to the user."""


class ConfigError(AgentError):
    """The config file or device_type file is missing a key, unreadable or malformed."""


class InputError(AgentError):
    """The artifact file or URL cannot be opened or read."""


class ServerError(AgentError):
    """A server (the device API, or an `install` URL) is unreachable or answered
    something we cannot use."""


class ArtifactRefused(AgentError):
    """The artifact library refused the artifact: its message unchanged, its error
    kept in `error` for the exit code."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class StoreError(AgentError):
    """The agent's SQLite store cannot be opened or written."""


class SlotError(AgentError):
    """The A/B slots are missing, too small, or cannot tell which one is running."""


class BootEnvError(AgentError):
    """The bootloader environment cannot be read, written or verified."""


class ModuleError(AgentError):
    """An update module is missing, failed, hung, or answered a query wrongly."""


class ScriptError(AgentError):
    """A state script failed, timed out or kept asking to retry."""


class UpdateError(AgentError):
    """The update cannot go on in its current phase (already running, not rebooted...)."""


class BaseMismatch(AgentError):
    """The running slot is not the base a delta artifact applies to (a modified or
    rw-mounted root filesystem): nothing was written; the full artifact is needed."""


class NothingInProgress(AgentError):
    """commit or rollback without an update in flight (exit 2, like mender); `install
    --resume` without a downloaded update."""
