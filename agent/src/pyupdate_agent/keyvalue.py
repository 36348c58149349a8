"""KEY=VALUE text: the one reader of the device_type file, artifact_info and the
output of identity and inventory scripts (Mender 3.4's formats).

A line is stripped of surrounding whitespace; blank lines and `#` comments are
skipped; the rest split at the first `=`. A line without `=`, or with nothing
before it, is not KEY=VALUE: the caller decides whether that is an error
(device_type), a warning (identity, inventory) or nothing (artifact_info).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KeyValues:
    """Args:
    pairs: (key, value) in file order; a key may come more than once.
    bad: the lines that are not KEY=VALUE, stripped.
    """

    pairs: tuple[tuple[str, str], ...]
    bad: tuple[str, ...]


def parse(text: str, *, trim: bool = True) -> KeyValues:
    """The KEY=VALUE lines of `text`; `trim` also strips the key and the value.

    device_type and artifact_info trim (`device_type = x` is `x`); identity and
    inventory keep both as the script printed them, as Mender sends them.
    """
    pairs: list[tuple[str, str]] = []
    bad: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if trim:
            key, value = key.strip(), value.strip()
        if not sep or not key:
            bad.append(line)
        else:
            pairs.append((key, value))
    return KeyValues(tuple(pairs), tuple(bad))
