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

from . import features

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
    yield from _feature_problems(getvar)
    yield from _key_problems(getvar)
    yield from _server_problems(getvar)
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
    yield from _machine_problems(getvar)
    fw_env = getvar("PYUPDATE_FW_ENV_CONFIG") or ""
    if fw_env and not os.path.isfile(fw_env):
        yield (
            f"PYUPDATE_FW_ENV_CONFIG: {fw_env}: file not found "
            "(leave it empty to have it generated from the PYUPDATE_UBOOT_ENV_* variables)"
        )


def _feature_problems(getvar: GetVar):
    bad = features.unknown(getvar)
    if bad:
        var, name = bad
        yield f"{var}: {name!r} is not a feature (known: {', '.join(features.FEATURES)})"
    if features.has(getvar, "pyupdate-systemd") and "systemd" not in (
        getvar("DISTRO_FEATURES") or ""
    ).split(" "):
        init = getvar("INIT_MANAGER") or "none"
        yield (
            f'INIT_MANAGER: {init!r}: the agent\'s unit needs systemd (set INIT_MANAGER = "systemd", '
            'or PYUPDATE_FEATURES_DISABLE += "pyupdate-systemd" and start `pyupdate daemon` yourself)'
        )
    if features.has(getvar, "pyupdate-uboot") and not getvar("PYUPDATE_UBOOT_MKIMAGE_ARCH"):
        yield (
            f"PYUPDATE_UBOOT_MKIMAGE_ARCH: no mkimage -A name known for TARGET_ARCH "
            f"{getvar('TARGET_ARCH') or ''!r} (set it to U-Boot's name, e.g. arm, arm64, x86, riscv)"
        )


def _machine_problems(getvar: GetVar):
    """QEMU defaults on a real board build an image that boots nowhere: name them."""
    if "qemuall" in (getvar("MACHINEOVERRIDES") or "").split(":"):
        return
    if not features.has(getvar, "pyupdate-uboot") and not features.has(getvar, "pyupdate-image"):
        return
    machine = getvar("MACHINE") or ""
    hint = (
        f"MACHINE {machine!r} is not a QEMU machine: set it for the board (docs/porting-yocto.md)"
    )
    storage = getvar("PYUPDATE_STORAGE_DEVICE") or ""
    if storage.startswith("/dev/vd"):
        yield f"PYUPDATE_STORAGE_DEVICE: {storage!r} is the QEMU virtio disk; {hint}"
    if (getvar("PYUPDATE_UBOOT_INTERFACE") or "") == "virtio":
        yield f"PYUPDATE_UBOOT_INTERFACE: 'virtio' is QEMU's; {hint}"


def _server_problems(getvar: GetVar):
    url = getvar("PYUPDATE_SERVER_URL") or ""
    if url and (not re.match(r"^https?://[^\s/]+", url) or any(c.isspace() for c in url)):
        yield f"PYUPDATE_SERVER_URL: {url!r} is not an http:// or https:// URL"
    cert = getvar("PYUPDATE_SERVER_CERT") or ""
    if cert and not os.path.isfile(cert):
        yield f"PYUPDATE_SERVER_CERT: {cert}: file not found"
    token = getvar("PYUPDATE_TENANT_TOKEN") or ""
    if any(c.isspace() or c in '"\\' for c in token):
        yield "PYUPDATE_TENANT_TOKEN: must be one word (no spaces or quotes)"


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
    if not verify and (getvar("PYUPDATE_SIGNING_REQUIRED") or "0") == "1":
        yield (
            'PYUPDATE_ARTIFACT_VERIFY_KEY: not set, and PYUPDATE_SIGNING_REQUIRED = "1": the device '
            "would accept unsigned artifacts (set it to the PEM public key of the signing key)"
        )


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


def image_problem(getvar: GetVar) -> str | None:
    """An updatable image recipe that cannot work: one line, or None (pyupdate-image.bbclass)."""
    pn = getvar("PN") or ""
    if pn in (getvar("INITRAMFS_IMAGE") or "").split():
        return (
            f"PYUPDATE_UPDATABLE_IMAGE: {pn} is the kernel's INITRAMFS_IMAGE, not a rootfs to "
            "update (remove `inherit pyupdate-image` or the variable from this image)"
        )
    slot_kib = int(getvar("PYUPDATE_ROOTFS_PART_SIZE_MB") or "0") * 1024
    try:
        size = int(getvar("IMAGE_ROOTFS_SIZE") or "0")
        extra = int(getvar("IMAGE_ROOTFS_EXTRA_SPACE") or "0")
    except ValueError:
        return None  # oe-core's own checks name these
    if size + extra > slot_kib:
        return (
            f"PYUPDATE_ROOTFS_PART_SIZE_MB: a slot is {slot_kib} KiB, less than IMAGE_ROOTFS_SIZE "
            f"{size} KiB + IMAGE_ROOTFS_EXTRA_SPACE {extra} KiB (raise PYUPDATE_ROOTFS_PART_SIZE_MB "
            "or PYUPDATE_STORAGE_TOTAL_SIZE_MB, or make the rootfs smaller)"
        )
    return None


_ENV_STORAGE = re.compile(r"^CONFIG_ENV_IS_IN_([A-Z0-9_]+)=y$", re.M)
_CONFIG_ENV_SIZE = re.compile(r"^CONFIG_ENV_SIZE=(0x[0-9a-fA-F]+|[0-9]+)$", re.M)


def uboot_config_problem(config_text: str, env_size: str, source: str = ".config") -> str | None:
    """U-Boot's resolved .config against PYUPDATE_UBOOT_ENV_SIZE (u-boot bbappend, do_compile).

    With only ENV_IS_NOWHERE the boot script alone reads the env files, at the
    size it is given. If the board's U-Boot still keeps an env of its own (the
    BSP's U-Boot ignored pyupdate-env-nowhere.cfg), it reads and rewrites the
    same files at CONFIG_ENV_SIZE, so the two sizes must agree.
    """
    stored = _ENV_STORAGE.findall(config_text)
    if not stored:
        return None
    m = _CONFIG_ENV_SIZE.search(config_text)
    if not m:
        return None
    uboot = int(m.group(1), 0)
    if not _HEX.match(env_size) or int(env_size, 16) == uboot:
        return None
    return (
        f"PYUPDATE_UBOOT_ENV_SIZE: {env_size}, but {source} keeps its env in "
        f"{stored[0]} with CONFIG_ENV_SIZE={hex(uboot)} (set PYUPDATE_UBOOT_ENV_SIZE = "
        f'"{hex(uboot)}", or turn CONFIG_ENV_IS_IN_{stored[0]} off)'
    )
