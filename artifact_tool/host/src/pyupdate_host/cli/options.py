"""Option parsing shared by the verbs: KEY:VALUE pairs, keys, progress."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pyupdate_artifact.errors import UsageError
from pyupdate_artifact.state_scripts import ARTIFACT_STATES, NAME_RE

from ..progress import Bar, bar_if_terminal

if TYPE_CHECKING:
    from pyupdate_artifact.verify import Verifier


def key_values(pairs: list[str] | None, flag: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition(":")
        if not sep or not key:
            raise UsageError(f"{flag} {pair!r}: expected KEY:VALUE")
        result[key] = value
    return result


def check_scripts(paths: list[str] | None) -> tuple[Path, ...]:
    scripts = []
    for raw in paths or ():
        path = Path(raw)
        match = NAME_RE.match(path.name)
        if match is None:
            raise UsageError(
                f"invalid script name {path.name!r}: expected <STATE>_<Enter|Leave|Error>_<NN>[_<description>]"
            )
        if match.group(1) not in ARTIFACT_STATES:
            raise UsageError(
                f"script {path.name}: state {match.group(1)} cannot be in an artifact "
                "(Idle, Sync and Download scripts live on the device)"
            )
        if any(seen.name == path.name for seen in scripts):
            raise UsageError(f"script {path.name} is given twice: an artifact holds one per name")
        scripts.append(path)
    return tuple(scripts)


def verifiers(paths: list[str] | None) -> list[Verifier]:
    from pyupdate_artifact.verify import load_verifier

    return [load_verifier(p) for p in paths or ()]


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quiet", "-q", "--no-progress", action="store_true", dest="quiet", help="no progress bar"
    )


def progress_for(path: Path | list[Path], label: str, quiet: bool) -> Bar | None:
    paths = path if isinstance(path, list) else [path]
    total = 0
    for p in paths:
        try:
            total += os.stat(p).st_size
        except OSError:
            return None
    return bar_if_terminal(total, label, quiet)
