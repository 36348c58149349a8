"""The vocabulary of the config key table: a row (`Key`) and the value kinds.

A kind is what JSON a key takes, its limits and its one-line error; config.py
declares every key with one, and docs/agent.md shows `accepts`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import window

# a wait longer than this is a typo, and larger values overflow time.sleep()
MAX_SECONDS = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Kind:
    """A value type: what JSON it takes, its limits, and the one line when a value is refused.

    Args:
        accepts: the accepted values, as docs/agent.md shows them.
        message: the error after `<file>: <Key>: `.
        convert: returns the typed value or raises ValueError; it takes its own output
            too, so a Config built in code goes through the same check.
    """

    accepts: str
    message: str
    convert: Callable[[object], object]


def _string(value: object) -> str | None:
    # null and "" leave the key unset, as Go's zero value does
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    raise ValueError


def _nonblank(value: object) -> str:
    if isinstance(value, str) and value.strip():
        return value
    raise ValueError


def _token(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()  # mender 3.4 trims the token read from the file
    raise ValueError


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError


def _integer(low: int) -> Callable[[object], object]:
    def convert(value: object) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= MAX_SECONDS:
            return value
        raise ValueError

    return convert


def _number(low: float, high: float, *, low_open: bool) -> Callable[[object], object]:
    def convert(value: object) -> float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and (low < value if low_open else low <= value) and value <= high:  # not NaN
            return float(value)
        raise ValueError

    return convert


def _choice(*names: str, fold: bool = False) -> Kind:
    def convert(value: object) -> str:
        if isinstance(value, str) and (value.lower() if fold else value) in names:
            return value.lower() if fold else value
        raise ValueError

    listed = ", ".join(names)
    case = " (any case)" if fold else ""
    return Kind(", ".join(f"`{n}`" for n in names) + case, f"must be one of {listed}", convert)


TEXT = Kind("string", "must be a string", _string)
TOKEN = Kind("string, trimmed", "must be a string", _token)
PATH = Kind("path", "must be a path string", _string)
FILE = Kind("path, not empty", "must be a non-empty path string", _nonblank)
COMMAND = Kind("command line, not empty", "must be a non-empty command line", _nonblank)
PATHS = Kind("list of paths", "must be a list of path strings", _strings)
FLAG = Kind("`true`, `false`", "must be true or false", _flag)
SECONDS = Kind(
    f"integer 1..{MAX_SECONDS}", "must be a whole number of seconds, at least 1", _integer(1)
)
SECONDS_OR_ZERO = Kind(
    f"integer 0..{MAX_SECONDS}", "must be a whole number of seconds, at least 0", _integer(0)
)
COUNT = Kind(f"integer 1..{MAX_SECONDS}", "must be a whole number, at least 1", _integer(1))
TIMEOUT = Kind(
    f"number > 0, ≤ {MAX_SECONDS}",
    "must be a positive number of seconds",
    _number(0, MAX_SECONDS, low_open=True),
)
JITTER = Kind(
    "number 0..0.5", "must be a number between 0 and 0.5", _number(0, 0.5, low_open=False)
)


def _window(value: object) -> str | None:
    if value is None or value == "":
        return None  # no window: install at once
    return str(window.parse(value))  # the one rule, shared with the deployment's window


WINDOW = Kind('`"HH:MM-HH:MM"` local time, may cross midnight', window.MESSAGE, _window)
BOOTLOADER = _choice("uboot", "grub")
KEY_TYPE = _choice("rsa", "ecdsa", "ed25519", fold=True)


MENDER = "mender"
OURS = "pyupdate"
DAEMON_ONLY = ", daemon only"


@dataclass(frozen=True, slots=True)
class Key:
    """One row of the key table.

    Args:
        name: the JSON name, Mender's spelling; `Security.AuthPrivateKey` is the
            `AuthPrivateKey` member of the `Security` object, as in mender.conf.
        kind: type, limits and the one-line error.
        doc: one line for docs/agent.md.
        origin: MENDER (a mender.conf key) or OURS (pyupdate's own), `+ DAEMON_ONLY` for a
            key only `pyupdate daemon` reads.
        under_data: unset means this file in the data dir.
        attr, default: the Config field and its default (filled in from the field).
    """

    name: str
    kind: Kind
    doc: str
    origin: str
    under_data: str | None = None
    attr: str = ""
    default: object = None

    @property
    def message(self) -> str:
        return self.kind.message

    @property
    def mender(self) -> bool:
        return self.origin.startswith(MENDER)

    @property
    def daemon(self) -> bool:
        return self.origin.endswith(DAEMON_ONLY)
