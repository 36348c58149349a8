"""Errors of the agent: one class per kind of failure, one line each.

Only `cli.py` catches them and exits with `exit_code` (docs/agent.md, "Exit
codes"). Artifact errors from `pyupdate_artifact.errors` are mapped there too.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base class: str(err) is the one line shown to the user."""

    exit_code = 1


class ConfigError(AgentError):
    """The config file or device_type file is missing a key, unreadable or malformed."""


class InputError(AgentError):
    """The artifact file or URL cannot be opened or read."""


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


class NothingInProgress(AgentError):
    """commit or rollback without an update in flight (exit 2, like mender)."""

    exit_code = 2
