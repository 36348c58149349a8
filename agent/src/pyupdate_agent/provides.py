"""What the device provides now: the store's record, else the image's artifact_info.

Matches mender 3.4: the stored name wins; while the store has none, the
`artifact_name=` (and `artifact_group=`) of the first artifact_info file found
is used. Where neither exists, the name is `unknown` and installs still work.
"""

from __future__ import annotations

from pathlib import Path

from pyupdate_artifact.printable import printable

from . import keyvalue
from .config import Config
from .errors import ConfigError
from .store import Store

UNKNOWN = "unknown"


def read_artifact_info(paths: tuple[str, ...]) -> dict[str, str] | None:
    """The KEY=VALUE lines (keyvalue.py) of the first existing artifact_info file, or None."""
    for name in paths:
        path = Path(name)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            continue
        except OSError as err:
            raise ConfigError(f"{path}: cannot read artifact_info ({err.strerror})") from None
        values = {
            key: value
            for key, value in keyvalue.parse(text).pairs
            if key in ("artifact_name", "artifact_group")
        }
        if values.get("artifact_group") == "":
            del values["artifact_group"]
        return values
    return None


def current_provides(store: Store | None, config: Config) -> dict[str, str]:
    """Current provides, `artifact_name` always present (`unknown` at worst)."""
    stored = store.current_provides() if store is not None else None
    if stored is not None and stored.get("artifact_name"):
        return dict(stored)
    provides = dict(stored or {})
    info = read_artifact_info(config.artifact_info_files) or {}
    provides.update(info)
    provides.setdefault("artifact_name", UNKNOWN)
    return provides


def format_provides(provides: dict[str, str]) -> str:
    """`key=value` lines, sorted, as `mender show-provides` prints them."""
    # escaped: keys and values come from artifacts (docs/agent.md, "Commands")
    return "".join(
        f"{printable(key)}={printable(value)}\n" for key, value in sorted(provides.items())
    )
