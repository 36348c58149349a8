"""Buildroot: each defconfig resolved, and what the agent and the boot flow need from it.

Facts come from a real Buildroot tree (`make <name>_defconfig`, `make
show-info`, package/python3/python3.mk, the kernel and BusyBox config files)
and are reduced to the few lines the checks read, so that CI can run the
same checks on a committed record (record.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from agent_closure import REPO, Closure

BR_EXT = REPO / "buildroot-ext"
EXT_VAR = "$(BR2_EXTERNAL_PYUPDATE_PATH)"

# python3.mk's configure switches that drop a module when an option is off
# (the `py_cv_module_<name>=n/a` lines are read from the .mk itself).
CONFIGURE_DROPS = {
    "--disable-sqlite3": ["_sqlite3"],
    "--with-expat=none": ["pyexpat"],
    "--disable-curses": ["_curses", "_curses_panel"],
    "--without-readline": ["readline"],
}
# Extension modules a stdlib module only tries (try/except ImportError) and
# works without: no option is needed for them.
FALLBACKS = {
    "_hashlib": "hashlib falls back to its built-in _sha2/_md5/_blake2",
    "_uuid": "uuid falls back to its pure-Python code",
    "_decimal": "decimal falls back to _pydecimal",
    "_bz2": "bz2 is only imported by shutil's archive helpers, inside try/except ImportError",
}
# Options the options we check read (prefixes), kept in the record.
RECORDED_PREFIXES = (
    "BR2_PACKAGE_PYTHON3",
    "BR2_PACKAGE_HOST_PYTHON3",
    "BR2_PACKAGE_PYTHON_",
    "BR2_PACKAGE_HOST_PYUPDATE",
    "BR2_PACKAGE_PYUPDATE",
    "BR2_PACKAGE_LIBUBOOTENV",
    "BR2_PACKAGE_UTIL_LINUX",
    "BR2_PACKAGE_BUSYBOX",
    "BR2_PACKAGE_LIBOPENSSL",
    "BR2_PACKAGE_OPENSSL",
    "BR2_TARGET_UBOOT",
    "BR2_LINUX_KERNEL",
    "BR2_ROOTFS_POST",
    "BR2_x86_64",
    "BR2_aarch64",
)
KERNEL_NEEDS = {
    "CONFIG_VFAT_FS": "the boot partition (fw_env.config points into it) is FAT",
    "CONFIG_NLS_CODEPAGE_437": "vfat's default codepage (FAT_DEFAULT_CODEPAGE=437)",
    "CONFIG_NLS_ISO8859_1": "vfat's default iocharset (FAT_DEFAULT_IOCHARSET=iso8859-1)",
    "CONFIG_EXT4_FS": "the slots and the data partition are ext4",
}
BUSYBOX_LABEL_NEEDS = (
    "CONFIG_FEATURE_MOUNT_LABEL",
    "CONFIG_VOLUMEID",
    "CONFIG_FEATURE_VOLUMEID_EXT",
)
# U-Boot board defconfig -> Buildroot options its build needs, and why.
UBOOT_NEEDS = {
    "qemu-x86": {
        "BR2_TARGET_UBOOT_NEEDS_PYLIBFDT": "u-boot.rom is made by binman (arch/x86 selects BINMAN), which imports libfdt",
        "BR2_TARGET_UBOOT_NEEDS_PYTHON3": "binman is Python",
    },
    "qemu-x86_64": {
        "BR2_TARGET_UBOOT_NEEDS_PYLIBFDT": "u-boot.rom is made by binman, which imports libfdt",
        "BR2_TARGET_UBOOT_NEEDS_PYTHON3": "binman is Python",
    },
    "qemu_arm64": {
        "BR2_TARGET_UBOOT_NEEDS_GNUTLS": "qemu_arm64 builds mkeficapsule (CONFIG_TOOLS_MKEFICAPSULE)",
    },
}
RUST_PATTERN = re.compile(r"rust|cargo|maturin|cryptography|rpds-py|bcrypt|pydantic-core")


# --- facts from a Buildroot tree --------------------------------------------------------------


def python_module_options(buildroot: Path) -> dict[str, dict[str, str]]:
    """module -> option that builds it, for the target and the host, read from python3.mk."""
    text = (buildroot / "package/python3/python3.mk").read_text(encoding="utf-8")
    found: dict[str, dict[str, str]] = {
        "target": {},
        "host": {},
        "never_target": {},
        "never_host": {},
    }
    lines = re.sub(r"\\\n", " ", text).splitlines()
    stack: list[tuple[str, bool]] = []  # (option, in the branch taken when it is off)
    for line in lines:
        m = re.match(r"\s*if(n?)eq \(\$\((BR2_PACKAGE_(?:HOST_)?PYTHON3_\w+)\),y\)", line)
        if m:
            stack.append((m.group(2), m.group(1) == "n"))
            continue
        if line.strip() == "else" and stack:
            option, off = stack[-1]
            stack[-1] = (option, not off)
            continue
        if line.strip() == "endif" and stack:
            stack.pop()
            continue
        m = re.match(r"\s*(HOST_)?PYTHON3_CONF_(ENV|OPTS)\s*\+?=\s*(.*)", line)
        if not m:
            continue
        side = "host" if m.group(1) else "target"
        dropped = re.findall(r"py_cv_module_(\w+)=n/a", m.group(3))
        for flag, modules in CONFIGURE_DROPS.items():
            if flag in m.group(3).split():
                dropped += modules
        for module in dropped:
            if stack and stack[-1][1]:
                found[side].setdefault(module, stack[-1][0])
            elif not stack:
                found[f"never_{side}"][module] = "python3.mk disables it unconditionally"
    return found


def resolve(buildroot: Path, ext: Path, defconfig: str, work: Path) -> Path:
    """`make <defconfig>` into a scratch output dir; returns that dir."""
    out = work / defconfig
    shutil.rmtree(out, ignore_errors=True)
    proc = subprocess.run(
        [
            "make",
            "-s",
            "-C",
            str(buildroot),
            f"BR2_EXTERNAL={ext}",
            f"O={out}",
            f"BR2_DL_DIR={work / 'dl'}",
            defconfig,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"make {defconfig}: {proc.stderr.strip()[-400:]}")
    return out


def show_info_packages(out: Path) -> dict[str, list[str]]:
    """Package -> its dependencies, from `make show-info`."""
    proc = subprocess.run(
        ["make", "-s", "-C", str(out), "show-info"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"show-info: {proc.stderr.strip()[-400:]}")
    info = json.loads(proc.stdout)
    return {name: sorted(entry.get("dependencies", [])) for name, entry in info.items()}


def parse_config(text: str) -> dict[str, str]:
    """KEY -> value (`n` for `# KEY is not set`)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+)=(.*)$", line)
        if m:
            values[m.group(1)] = m.group(2)
            continue
        m = re.match(r"^# (\w+) is not set$", line)
        if m:
            values[m.group(1)] = "n"
    return values


def _config_path(value: str, buildroot: Path, ext: Path) -> Path:
    value = value.strip('"').replace(EXT_VAR, str(ext))
    path = Path(value)
    return path if path.is_absolute() else buildroot / path


def merged_config(base: str, fragments: str, buildroot: Path, ext: Path) -> dict[str, str]:
    """A kconfig file with its fragments applied in order (what merge_config.sh does)."""
    merged: dict[str, str] = {}
    for item in [base, *fragments.strip('"').split()]:
        if not item.strip('"'):
            continue
        path = _config_path(item, buildroot, ext)
        if path.is_file():
            merged.update(parse_config(path.read_text(encoding="utf-8")))
    return merged


def defconfig_facts(buildroot: Path, ext: Path, name: str, work: Path) -> dict[str, object]:
    """What the checks read about one defconfig, from the real Buildroot."""
    defconfig = ext / "configs" / name
    out = resolve(buildroot, ext, name, work)
    config_text = (out / ".config").read_text(encoding="utf-8")
    config_lines = set(config_text.splitlines())
    wanted = [
        line.strip()
        for line in defconfig.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    config = parse_config(config_text)
    recorded = {k: v for k, v in config.items() if k.startswith(RECORDED_PREFIXES) and v != "n"}
    kernel = merged_config(
        config.get("BR2_LINUX_KERNEL_CUSTOM_CONFIG_FILE", '""'),
        config.get("BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES", '""'),
        buildroot,
        ext,
    )
    busybox = merged_config(
        config.get("BR2_PACKAGE_BUSYBOX_CONFIG", '""'),
        config.get("BR2_PACKAGE_BUSYBOX_CONFIG_FRAGMENT_FILES", '""'),
        buildroot,
        ext,
    )
    packages = show_info_packages(out)
    return {
        "defconfig": name,
        "dropped_lines": [line for line in wanted if line not in config_lines],
        "config": recorded,
        "kernel_config": {
            k: kernel.get(k, "")
            for k in [*KERNEL_NEEDS, "CONFIG_FAT_DEFAULT_CODEPAGE", "CONFIG_FAT_DEFAULT_IOCHARSET"]
        },
        "busybox_config": {k: busybox.get(k, "") for k in BUSYBOX_LABEL_NEEDS},
        "packages": packages,
    }


# --- the checks -------------------------------------------------------------------------------


def _rel(path: Path, repo: Path) -> str:
    try:
        return str(path.relative_to(repo))
    except ValueError:
        return str(path)


def _on(config: dict[str, str], option: str) -> bool:
    return config.get(option, "n") not in ("n", "", '""')


def check_python(
    closure: Closure,
    facts: dict[str, object],
    modules: dict[str, dict[str, str]],
    ext: Path = BR_EXT,
    repo: Path = REPO,
) -> list[str]:
    """Target python3 options the agent's closure needs, in one defconfig's resolved .config."""
    config: dict[str, str] = facts["config"]  # type: ignore[assignment]
    defconfig = _rel(ext / "configs" / str(facts["defconfig"]), repo)
    agent_config_in = _rel(ext / "package/python-pyupdate-agent/Config.in", repo)
    failures: list[str] = []
    if not _on(config, "BR2_PACKAGE_PYTHON_PYUPDATE_AGENT"):
        return [
            f"{defconfig}: BR2_PACKAGE_PYTHON_PYUPDATE_AGENT is not set in the resolved .config"
        ]
    missing: dict[str, list[str]] = {}
    for module in sorted(closure.stdlib):
        if module in FALLBACKS:
            continue
        needers = closure.needers(module)
        if module in modules["never_target"]:
            failures.append(
                f"{defconfig}: {needers[0][0]} needs {module}, which Buildroot's python3 never builds ({modules['never_target'][module]})"
            )
            continue
        option = modules["target"].get(module)
        if option and not _on(config, option):
            missing.setdefault(option, []).append(f"{module} for {needers[0][0]}")
    for option, why in sorted(missing.items()):
        failures.append(
            f"{defconfig}: {option} is not set in the resolved .config ({why[0]}): select it in {agent_config_in}"
        )
    if _on(config, "BR2_PACKAGE_PYTHON_CRYPTOGRAPHY"):
        failures.append(
            f"{defconfig}: BR2_PACKAGE_PYTHON_CRYPTOGRAPHY is set: the agent needs no cryptography (Rust) on the device; drop the select in {_rel(ext / 'package', repo)}"
        )
    return failures


def _pulled_by(name: str, packages: dict[str, list[str]], ours: set[str]) -> str:
    """The first of our packages whose dependencies lead to `name`."""
    for top in sorted(ours):
        todo, seen = [top], set()
        while todo:
            cur = todo.pop()
            if cur == name:
                return top
            if cur in seen:
                continue
            seen.add(cur)
            todo.extend(packages.get(cur, []))
    return "the defconfig"


def check_defconfig(
    facts: dict[str, object],
    host_closure: Closure | None,
    modules: dict[str, dict[str, str]],
    ext: Path = BR_EXT,
    repo: Path = REPO,
) -> list[str]:
    """Options the boot flow and the build host tools need, one line per missing option."""
    name = str(facts["defconfig"])
    defconfig = _rel(ext / "configs" / name, repo)
    config: dict[str, str] = facts["config"]  # type: ignore[assignment]
    failures = [
        f"{defconfig}: `{line}` is not in the resolved .config (unknown option or unmet dependency)"
        for line in facts["dropped_lines"]  # type: ignore[attr-defined]
    ]
    for option in (
        "BR2_PACKAGE_PYTHON3",
        "BR2_PACKAGE_PYTHON_PYUPDATE_AGENT",
        "BR2_PACKAGE_LIBUBOOTENV",
    ):
        if not _on(config, option):
            failures.append(f"{defconfig}: {option} is not set in the resolved .config")
    # host python: what pyupdate-artifact and pyupdate-image import on the build host
    if host_closure is not None and _on(config, "BR2_PACKAGE_HOST_PYUPDATE_HOST"):
        host_config_in = _rel(ext / "package/pyupdate-host/Config.in.host", repo)
        missing: dict[str, str] = {}
        for module in sorted(host_closure.stdlib):
            option = modules["host"].get(module)
            if module in FALLBACKS or not option or _on(config, option):
                continue
            missing.setdefault(option, f"{module} for {host_closure.needers(module)[0][0]}")
        for option, why in sorted(missing.items()):
            failures.append(
                f"{defconfig}: {option} is not set in the resolved .config ({why}): select it in {host_config_in}"
            )
    # kernel: mount the FAT boot partition and the ext4 slots and data
    kernel: dict[str, str] = facts["kernel_config"]  # type: ignore[assignment]
    fragments = config.get("BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES", '""').strip('"').split()
    kernel_file = (
        fragments[-1].replace(EXT_VAR, "buildroot-ext")
        if fragments
        else defconfig + " (BR2_LINUX_KERNEL_CONFIG_FRAGMENT_FILES)"
    )
    if _on(config, "BR2_LINUX_KERNEL"):
        for option, why in KERNEL_NEEDS.items():
            if kernel.get(option) != "y":
                state = {"": "not set", "n": "not set", "m": "a module"}.get(
                    kernel.get(option, ""), kernel.get(option, "")
                )
                failures.append(
                    f"{defconfig}: kernel {option}=y needed ({why}), is {state}: set it in {kernel_file}"
                )
    # /data and /boot/uboot: BusyBox mount finds LABEL= only with volume-id
    fstab = fstab_lines(name, ext)
    by_label = [line for line in fstab if line.split()[0].startswith(("LABEL=", "UUID="))]
    if by_label and not _on(config, "BR2_PACKAGE_UTIL_LINUX_MOUNT"):
        busybox: dict[str, str] = facts["busybox_config"]  # type: ignore[assignment]
        bb_fragments = (
            config.get("BR2_PACKAGE_BUSYBOX_CONFIG_FRAGMENT_FILES", '""').strip('"').split()
        )
        bb_file = (
            bb_fragments[-1].replace(EXT_VAR, "buildroot-ext")
            if bb_fragments
            else defconfig + " (BR2_PACKAGE_BUSYBOX_CONFIG_FRAGMENT_FILES)"
        )
        spec, mount = by_label[0].split()[:2]
        for option in BUSYBOX_LABEL_NEEDS:
            if busybox.get(option) != "y":
                failures.append(
                    f"{defconfig}: fstab mounts {mount} by {spec} but BusyBox {option} is not set: set it in {bb_file}, or BR2_PACKAGE_UTIL_LINUX_MOUNT, or mount by device path"
                )
    # U-Boot's own build needs
    board = config.get("BR2_TARGET_UBOOT_BOARD_DEFCONFIG", '""').strip('"')
    if _on(config, "BR2_TARGET_UBOOT"):
        for option, why in UBOOT_NEEDS.get(board, {}).items():
            if not _on(config, option):
                failures.append(f"{defconfig}: {option} is not set ({why}): set it in {defconfig}")
    # no Rust in the build
    packages: dict[str, list[str]] = facts["packages"]  # type: ignore[assignment]
    ours = {p for p in packages if "pyupdate" in p}
    for package in sorted(p for p in packages if RUST_PATTERN.search(p)):
        failures.append(
            f"{defconfig}: the build includes {package} (Rust), pulled in by {_pulled_by(package, packages, ours)}: drop it from {_rel(ext / 'package', repo)}"
        )
    return failures


def fstab_lines(defconfig: str, ext: Path = BR_EXT) -> list[str]:
    """The fstab lines pyupdate-image writes into each slot for this defconfig's board (mount specs)."""
    script = ext / "configs" / defconfig
    m = re.search(r"board/([\w-]+)/post-image\.sh", script.read_text(encoding="utf-8"))
    if not m:
        return []
    board_in = ext / "board" / m.group(1) / "pyupdate-board.json.in"
    if not board_in.is_file():
        return []
    from pyupdate_host.image.board import load_board
    from pyupdate_host.image.slot import device_files

    text = (
        board_in.read_text(encoding="utf-8")
        .replace("@BINARIES_DIR@", "/nonexistent")
        .replace("@DEVICE_TYPE@", "device")
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "board.json"
        path.write_text(text, encoding="utf-8")
        board = load_board(str(path))
    fstab = device_files(board, "record", "")["/etc/fstab"]
    return [line for line in fstab.splitlines() if line.strip() and not line.startswith("#")]


def snapshot_buildroot() -> Path | None:
    snap = os.environ.get("PYUPDATE_SNAPSHOTS")
    path = Path(snap) / "buildroot" if snap else None
    return path if path and (path / "Makefile").is_file() else None
