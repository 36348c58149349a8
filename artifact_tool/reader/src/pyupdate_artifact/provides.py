"""Provides, depends and clears_provides: the rules Mender 3.4 applies on install and commit.

See docs/artifact-format.md#provides.
"""

from __future__ import annotations

import re

from .errors import CompatibilityError, FormatError
from .model import ArtifactHeader


def check_conflicts(header: ArtifactHeader) -> None:
    """A provides or depends key given twice across header-info and type-infos is an error."""
    seen_provides = {"artifact_name", "artifact_group"}
    seen_depends = {"artifact_name", "artifact_group", "device_type"}
    for payload in header.payloads:
        for key in payload.type_info.provides:
            if key in seen_provides:
                raise FormatError(
                    f"type-info of payload {payload.index}: conflicting provides key {key}"
                )
            seen_provides.add(key)
        for key in payload.type_info.depends:
            if key in seen_depends:
                raise FormatError(
                    f"type-info of payload {payload.index}: conflicting depends key {key}"
                )
            seen_depends.add(key)


def check_depends(
    header: ArtifactHeader, device_type: str | None, provides: dict[str, str]
) -> None:
    """Refuse an artifact whose device types or depends the device does not meet."""
    if device_type is not None and device_type not in header.device_types:
        wanted = ", ".join(header.device_types)
        raise CompatibilityError(
            f"artifact {header.artifact_name} is for device types [{wanted}], this device is {device_type}"
        )
    for key, wanted in header.depends.items():
        have = provides.get(key)
        options = [wanted] if isinstance(wanted, str) else list(wanted)
        if have is None or have not in options:
            raise CompatibilityError(
                f"artifact {header.artifact_name} depends on {key} in {options}, device has {have!r}"
            )


def _matcher(patterns: list[str]) -> re.Pattern[str]:
    # Mender's wildcard: '*' is any run of characters, everything else literal.
    parts = ["^" + ".*".join(re.escape(p) for p in pat.split("*")) + "$" for pat in patterns]
    return re.compile("|".join(parts) if parts else r"(?!x)x")


def provides_after_commit(old: dict[str, str], header: ArtifactHeader) -> dict[str, str]:
    """The device's provides once `header`'s artifact is committed (mender 3.4 rules)."""
    clears = header.clears_provides
    new_type = header.type_provides
    if clears is None:
        kept = {}  # no clears key at all: the new set replaces the old one
    else:
        match = _matcher(clears)
        kept = {
            k: v
            for k, v in old.items()
            if k not in ("artifact_name", "artifact_group") and not match.match(k)
        }
    result = dict(kept)
    result.update(new_type)
    result["artifact_name"] = header.artifact_name
    group = header.artifact_group
    if group:
        result["artifact_group"] = group
    elif (
        "artifact_group" in old
        and clears is not None
        and not _matcher(clears).match("artifact_group")
    ):
        result["artifact_group"] = old["artifact_group"]
    return result


__all__ = ["check_conflicts", "check_depends", "provides_after_commit"]


# -- versions: downgrade protection (docs/agent.md, "Downgrade protection") -------------


def _pieces(version: str) -> list[str]:
    return re.findall(r"\d+|\D+", version)


def compare_versions(new: str, running: str) -> int | None:
    """1 if `new` is newer, -1 if older, 0 if the same, None when they cannot be compared.

    Both are split into runs of digits and runs of other characters. At the first
    run that differs, two numbers compare as numbers (`release-10` > `release-9`,
    `1.010` = `1.10`); anything else (`build-3` vs `release-2`) is not comparable.
    When one version is the other plus more runs, the longer one is newer
    (`1.2.1` > `1.2`, and `1.0-rc1` > `1.0`: there is no pre-release rule).
    """
    a, b = _pieces(new), _pieces(running)
    for x, y in zip(a, b, strict=False):
        if x == y:
            continue
        if not (x.isdigit() and y.isdigit()):
            return None
        if int(x) != int(y):
            return 1 if int(x) > int(y) else -1
    return (len(a) > len(b)) - (len(a) < len(b))


def older_versions(header: ArtifactHeader, provides: dict[str, str]) -> list[tuple[str, str, str]]:
    """(key, new, running) for each `*.version` the artifact provides that is older than
    the device's value of the same key (`rootfs-image.version`, `rootfs-image.<x>.version`).
    A key the device does not provide, or versions that cannot be compared, pass."""
    older = []
    for key, new in sorted(header.type_provides.items()):
        running = provides.get(key)
        if (
            key.endswith(".version")
            and running is not None
            and compare_versions(new, running) == -1
        ):
            older.append((key, new, running))
    return older
