"""PYUPDATE_FEATURES: what the layer turns on, as meta-mender's MENDER_FEATURES_ENABLE/DISABLE.

pyupdate-full enables every feature; a build disables one with
`PYUPDATE_FEATURES_DISABLE += "pyupdate-systemd"`, or inherits only
pyupdate-setup and lists what it wants in PYUPDATE_FEATURES_ENABLE.
"""

from __future__ import annotations

from collections.abc import Callable

GetVar = Callable[[str], str | None]

# name -> what it does; docs/yocto.md has the same list.
FEATURES: dict[str, str] = {
    # the agent in every updatable image, with its config (/etc/pyupdate)
    "pyupdate-agent": "the agent and its config in updatable images",
    # boot.scr and the env files (u-boot bbappend), fw_env.config (libubootenv bbappend)
    "pyupdate-uboot": "U-Boot boot script, env files and fw_env.config",
    # the A/B wic disk, fstab lines for the boot and data partitions, the kernel in /boot
    "pyupdate-image": "the A/B disk image (wic) and the rootfs layout it needs",
    # the signed .mender artifact (IMAGE_FSTYPES "pyupdate")
    "pyupdate-artifact": "the artifact image type",
    # the systemd unit (enabled only with PYUPDATE_SERVER_URL); needs INIT_MANAGER systemd
    "pyupdate-systemd": "the agent's systemd unit",
}


def enabled(getvar: GetVar) -> str:
    """PYUPDATE_FEATURES_ENABLE minus PYUPDATE_FEATURES_DISABLE, in FEATURES order."""
    enable = set((getvar("PYUPDATE_FEATURES_ENABLE") or "").split())
    disable = set((getvar("PYUPDATE_FEATURES_DISABLE") or "").split())
    known = [f for f in FEATURES if f in enable and f not in disable]
    unknown = sorted(enable - disable - set(FEATURES))
    return " ".join(known + unknown)


def has(getvar: GetVar, feature: str) -> bool:
    return feature in (getvar("PYUPDATE_FEATURES") or "").split()


def unknown(getvar: GetVar) -> tuple[str, str] | None:
    """(variable, name) of the first feature name the layer does not know."""
    for var in ("PYUPDATE_FEATURES_ENABLE", "PYUPDATE_FEATURES_DISABLE"):
        for name in (getvar(var) or "").split():
            if name not in FEATURES:
                return var, name
    return None
