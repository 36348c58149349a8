"""Exit codes of `pyupdate`: one table per command, and the error each code stands for.

cli.py and the daemon's entry (daemon/__main__.py) turn an error into its code
here and nowhere else. docs/agent.md, "Exit codes", is rendered from TABLE
(tests/agent/test_cli_exit_codes.py keeps them equal).

Mender 3.4's codes keep their meaning: 0 done, 1 failed, 2 nothing to commit or
roll back, 4 a reboot is needed (`install --reboot-exit-code`). Where mender
exits 1 for every failure, pyupdate says which (3, 5 to 9): a script that tests
for non-zero works with both. A code a command does not list becomes 1.
"""

from __future__ import annotations

from enum import IntEnum

from pyupdate_artifact import errors as artifact

from .errors import (
    AgentError,
    ArtifactRefused,
    BaseMismatch,
    ConfigError,
    InputError,
    NothingInProgress,
    ServerError,
)


class Exit(IntEnum):
    OK = 0
    FAILED = 1
    NOTHING_IN_PROGRESS = 2  # mender's; argparse's usage errors are 2 as well
    CONFIG = 3
    REBOOT_NEEDED = 4  # mender's `install --reboot-exit-code`
    UNREADABLE = 5
    INVALID = 6
    SIGNATURE = 7
    INCOMPATIBLE = 8
    BASE_MISMATCH = 9  # a delta for another base: the full artifact installs instead
    INTERRUPTED = 130


USAGE = 2  # argparse exits with 2 on a bad command line, before any command runs

# error -> code, the first match wins (subclasses before their bases)
ERRORS: tuple[tuple[type[BaseException], Exit], ...] = (
    (NothingInProgress, Exit.NOTHING_IN_PROGRESS),
    (BaseMismatch, Exit.BASE_MISMATCH),
    (ConfigError, Exit.CONFIG),
    (artifact.KeyFileError, Exit.CONFIG),
    (InputError, Exit.UNREADABLE),
    (ServerError, Exit.UNREADABLE),
    (artifact.InputError, Exit.UNREADABLE),
    (artifact.SignatureError, Exit.SIGNATURE),
    (artifact.CompatibilityError, Exit.INCOMPATIBLE),
    (artifact.FormatError, Exit.INVALID),
    (artifact.UsageError, Exit.INVALID),
    (KeyboardInterrupt, Exit.INTERRUPTED),
    (AgentError, Exit.FAILED),
    (artifact.ArtifactError, Exit.FAILED),
)

_CONFIG = "config error: a key of the config file (the line names it)"
_USAGE = "usage error (wrong command line)"
_INTERRUPTED = "interrupted (Ctrl-C)"

TABLE: dict[str, dict[Exit, str]] = {
    "install": {
        Exit.OK: "installed: waits for `commit` or `rollback` (a payload without rollback"
        " support is committed at once); `--download-only`: downloaded, waits for"
        " `install --resume` or `rollback`",
        Exit.FAILED: "failed: slot, boot env, update module, state script, store, another"
        " update in progress or waiting, internal error; nothing of the update is active",
        Exit.NOTHING_IN_PROGRESS: _USAGE + "; `--resume` without a downloaded update",
        Exit.CONFIG: _CONFIG + ", `ServerCertificate`, the device_type file, a verify key",
        Exit.REBOOT_NEEDED: "with `--reboot-exit-code`: installed, a reboot is needed (like"
        " mender)",
        Exit.UNREADABLE: "the artifact cannot be read: no such file, or the download failed"
        " (after its resumes)",
        Exit.INVALID: "not a valid artifact: format, checksum, truncated, a compression this"
        " device cannot read",
        Exit.SIGNATURE: "signature: unsigned while a verify key is set, or it does not verify",
        Exit.INCOMPATIBLE: "not for this device: device type or depends, or older than the"
        " running software (unless `AllowDowngrade`)",
        Exit.BASE_MISMATCH: "a delta artifact whose base is not the running slot (its"
        " bytes differ from the image the delta was made from): nothing was written;"
        " install the full artifact",
        Exit.INTERRUPTED: _INTERRUPTED,
    },
    "commit": {
        Exit.OK: "committed",
        Exit.FAILED: "failed: only downloaded (`install --resume` first), not rebooted into"
        " the update yet, the bootloader rolled back, a"
        " state script vetoed (rolled back), an interrupted update was rolled back instead",
        Exit.NOTHING_IN_PROGRESS: "no update in progress (like mender); usage error",
        Exit.CONFIG: _CONFIG,
        Exit.INTERRUPTED: _INTERRUPTED,
    },
    "rollback": {
        Exit.OK: "rolled back, or a downloaded update dropped",
        Exit.FAILED: "failed, or an interrupted commit was finished instead",
        Exit.NOTHING_IN_PROGRESS: "no update in progress (like mender); usage error",
        Exit.CONFIG: _CONFIG,
        Exit.INTERRUPTED: _INTERRUPTED,
    },
    "show-artifact": {
        Exit.OK: "printed",
        Exit.FAILED: "failed: the store cannot be read",
        Exit.NOTHING_IN_PROGRESS: _USAGE,
        Exit.CONFIG: _CONFIG + ", an artifact_info file that cannot be read",
        Exit.INTERRUPTED: _INTERRUPTED,
    },
    "daemon": {  # runs until SIGTERM, which ends it without a code (systemd: clean)
        Exit.FAILED: "failed: another daemon owns the data dir, the device key, the store;"
        " systemd restarts it",
        Exit.NOTHING_IN_PROGRESS: _USAGE,
        Exit.CONFIG: _CONFIG + ", `ServerURL` unset, `ServerCertificate`; systemd does not"
        " restart it (`RestartPreventExitStatus=3`)",
        Exit.INTERRUPTED: _INTERRUPTED,
    },
    "check-update": {
        Exit.OK: "the daemon was signalled",
        Exit.FAILED: "no daemon runs (pid file)",
        Exit.NOTHING_IN_PROGRESS: _USAGE,
        Exit.CONFIG: _CONFIG,
    },
}
TABLE["show-provides"] = TABLE["show-update"] = TABLE["show-artifact"]
TABLE["send-inventory"] = TABLE["check-update"]


def exit_code(command: str, err: BaseException) -> Exit:
    """The code `command` exits with for `err`: its kind's code if the command lists it,
    else FAILED. An artifact the library refused counts as the library's error."""
    if isinstance(err, ArtifactRefused):
        err = err.error
    code = next((code for kind, code in ERRORS if isinstance(err, kind)), Exit.FAILED)
    return code if code in TABLE[command] else Exit.FAILED
