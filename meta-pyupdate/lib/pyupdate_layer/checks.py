"""The PYUPDATE_* checks that stop a build at parse time with one line.

Each check returns the first problem as `VARIABLE: what is wrong (what to do)`;
pyupdate-setup.bbclass hands it to bb.fatal. Runs once per configuration
(bb.event.ConfigParsed), so the user sees one line, not one per recipe.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable

GetVar = Callable[[str], str | None]

_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_KEY_VALUE = re.compile(r"^[A-Za-z0-9_.-]+:\S+$")
_ENV_FILE = re.compile(r"^[A-Za-z0-9._-]+$")
_SIZE_VARS = (
    "PYUPDATE_STORAGE_TOTAL_SIZE_MB",
    "PYUPDATE_PARTITION_ALIGNMENT_MB",
    "PYUPDATE_BOOT_PART_SIZE_MB",
    "PYUPDATE_ROOTFS_PART_SIZE_MB",
    "PYUPDATE_DATA_PART_SIZE_MB",
)


def known_variables(vars_json: str) -> set[str]:
    with open(vars_json, encoding="utf-8") as f:
        return set(json.load(f)["variables"])


def unknown_variables(names: Iterable[str], known: set[str]) -> list[str]:
    """PYUPDATE_* names the layer does not know; `<known>_DEFAULT` holds a default."""
    allowed = known | {f"{n}_DEFAULT" for n in known}
    # `VAR:override` is the same variable for a machine, arch or class.
    bases = {n.split(":", 1)[0] for n in names}
    return sorted(n for n in bases if n.startswith("PYUPDATE_") and n not in allowed)


def layout_mib(getvar: GetVar) -> dict[str, int]:
    """Partition starts and sizes as the disk is laid out: boot, A, B, data, each aligned."""
    size = {v: int(getvar(v) or "0") for v in _SIZE_VARS}
    align = size["PYUPDATE_PARTITION_ALIGNMENT_MB"]
    end = align
    for var in ("BOOT", "ROOTFS", "ROOTFS", "DATA"):
        part = size[f"PYUPDATE_{var}_PART_SIZE_MB"]
        end += -(-part // align) * align
    return {"end": end, **size}


def default_rootfs_size(getvar: GetVar) -> int:
    """What is left of the storage after boot and data, split in two, aligned down."""
    total = int(getvar("PYUPDATE_STORAGE_TOTAL_SIZE_MB") or "0")
    align = int(getvar("PYUPDATE_PARTITION_ALIGNMENT_MB") or "1")
    boot = int(getvar("PYUPDATE_BOOT_PART_SIZE_MB") or "0")
    data = int(getvar("PYUPDATE_DATA_PART_SIZE_MB") or "0")
    boot_end = align + -(-boot // align) * align
    data_room = -(-data // align) * align
    slot = (total - boot_end - data_room) // 2
    return max(0, slot // align * align)


def check(getvar: GetVar, known: set[str], names: Iterable[str]) -> str | None:
    """The first problem with the PYUPDATE_* configuration, or None."""
    for problem in _problems(getvar, known, names):
        return problem
    return None


def _problems(getvar: GetVar, known: set[str], names: Iterable[str]):
    unknown = unknown_variables(names, known)
    if unknown:
        yield (
            f"{unknown[0]}: unknown variable (a typo? meta-pyupdate knows the names in "
            "conf/pyupdate-vars.json, listed in docs/yocto.md)"
        )
    device_type = getvar("PYUPDATE_DEVICE_TYPE") or ""
    if not device_type or any(c.isspace() for c in device_type):
        yield f"PYUPDATE_DEVICE_TYPE: {device_type!r} must be one word, without spaces"
    for dt in (getvar("PYUPDATE_DEVICE_TYPES_COMPATIBLE") or "").split():
        if dt != dt.strip():
            yield f"PYUPDATE_DEVICE_TYPES_COMPATIBLE: {dt!r} has spaces"
    yield from _key_problems(getvar)
    for var in ("PYUPDATE_ARTIFACT_PROVIDES", "PYUPDATE_ARTIFACT_DEPENDS"):
        for word in (getvar(var) or "").split():
            if not _KEY_VALUE.match(word):
                yield f"{var}: {word!r} is not KEY:VALUE"
    compression = getvar("PYUPDATE_ARTIFACT_COMPRESSION") or ""
    if compression not in ("gzip", "lzma", "zstd", "none"):
        yield f"PYUPDATE_ARTIFACT_COMPRESSION: {compression!r} is not one of gzip, lzma, zstd, none"
    yield from _size_problems(getvar)
    yield from _env_problems(getvar)
    storage = getvar("PYUPDATE_STORAGE_DEVICE") or ""
    if not storage.startswith("/dev/") or any(c.isspace() for c in storage):
        yield f"PYUPDATE_STORAGE_DEVICE: {storage!r} must be a /dev/ path"
    fw_env = getvar("PYUPDATE_FW_ENV_CONFIG") or ""
    if fw_env and not os.path.isfile(fw_env):
        yield (
            f"PYUPDATE_FW_ENV_CONFIG: {fw_env}: file not found "
            "(leave it empty to have it generated from the PYUPDATE_UBOOT_ENV_* variables)"
        )


def _key_problems(getvar: GetVar):
    key = getvar("PYUPDATE_ARTIFACT_SIGNING_KEY") or ""
    if key and not os.path.isfile(key):
        yield f"PYUPDATE_ARTIFACT_SIGNING_KEY: {key}: file not found"
    if not key and (getvar("PYUPDATE_SIGNING_REQUIRED") or "0") == "1":
        yield (
            'PYUPDATE_ARTIFACT_SIGNING_KEY: not set, and PYUPDATE_SIGNING_REQUIRED = "1" '
            "(set it to a PEM private key path)"
        )
    verify = getvar("PYUPDATE_ARTIFACT_VERIFY_KEY") or ""
    if verify and not os.path.isfile(verify):
        yield f"PYUPDATE_ARTIFACT_VERIFY_KEY: {verify}: file not found"


def _size_problems(getvar: GetVar):
    for var in _SIZE_VARS:
        value = getvar(var) or ""
        if not value.isdigit():
            yield f"{var}: {value!r} is not a whole number of MiB"
            return
    lay = layout_mib(getvar)
    if lay["PYUPDATE_PARTITION_ALIGNMENT_MB"] < 1:
        yield "PYUPDATE_PARTITION_ALIGNMENT_MB: must be at least 1"
        return
    for var, least in (("BOOT", 16), ("ROOTFS", 16), ("DATA", 8)):
        name = f"PYUPDATE_{var}_PART_SIZE_MB"
        if lay[name] < least:
            yield f"{name}: {lay[name]} MiB is below the minimum of {least} MiB"
    total = lay["PYUPDATE_STORAGE_TOTAL_SIZE_MB"]
    if lay["end"] > total:
        yield (
            f"PYUPDATE_ROOTFS_PART_SIZE_MB: boot + 2 x rootfs + data need {lay['end']} MiB, "
            f"more than PYUPDATE_STORAGE_TOTAL_SIZE_MB = {total} (shrink a partition or "
            "raise the total)"
        )


def _env_problems(getvar: GetVar):
    size = getvar("PYUPDATE_UBOOT_ENV_SIZE") or ""
    if not _HEX.match(size):
        yield f"PYUPDATE_UBOOT_ENV_SIZE: {size!r} is not a hex number like 0x4000"
    files = (getvar("PYUPDATE_UBOOT_ENV_FILES") or "").split()
    if len(files) != 2 or not all(_ENV_FILE.match(f) for f in files):
        yield "PYUPDATE_UBOOT_ENV_FILES: needs two file names (the redundant env copies)"
    offsets = (getvar("PYUPDATE_UBOOT_ENV_OFFSETS") or "").split()
    if len(offsets) != 2 or not all(_HEX.match(o) for o in offsets):
        yield 'PYUPDATE_UBOOT_ENV_OFFSETS: needs two hex offsets like "0x0 0x0"'
