"""Host-mode devices for the agent's tests (tests/agent, tests/interop, bench/): slots are files, the env is a real env file.

`make_host` gives a device with slot A (`rootfs2`, running, random content) and
slot B (`rootfs3`, filled with 0xFF), a redundant U-Boot env (two 16 KiB
copies made by mkenvimage) driven by the real fw_printenv/fw_setenv, a GRUB env
file, a data dir and a config. `write_module_artifact` writes artifacts with
Debian's mender-artifact, the reference.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pyupdate_agent.cli import main
from pyupdate_testing.bootloader_sim import grub_boot, uboot_boot, uboot_env

PART_A, PART_B = 2, 3
SLOT_SIZE = 4 << 20
DEVICE_TYPE = "test-device"
ENV_SIZE = "0x4000"
INITIAL_ENV = {
    "mender_boot_part": str(PART_A),
    "mender_boot_part_hex": f"{PART_A:X}",
    "upgrade_available": "0",
    "bootcount": "0",
    "bootlimit": "1",
    "altbootcmd": "run mender_altbootcmd; run bootcmd",
}

needs_tools = pytest.mark.skipif(
    shutil.which("mender-artifact") is None or shutil.which("fw_setenv") is None,
    reason="needs mender-artifact and libubootenv-tool",
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class HostDevice:
    root: Path
    config: dict[str, object] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def slot_a(self) -> Path:
        return self.root / f"rootfs{PART_A}"

    @property
    def slot_b(self) -> Path:
        return self.root / f"rootfs{PART_B}"

    @property
    def fw_env_config(self) -> Path:
        return self.root / "fw_env.config"

    @property
    def grubenv(self) -> Path:
        return self.root / "grubenv"

    @property
    def config_path(self) -> Path:
        return self.root / "pyupdate.conf"

    @property
    def modules(self) -> Path:
        return self.root / "modules"

    @property
    def etc_scripts(self) -> Path:
        return self.root / "etc-scripts"

    def write_config(self, **changes: object) -> None:
        self.config.update(changes)
        self.config_path.write_text(json.dumps(self.config, indent=2))

    def argv(self, *args: str) -> list[str]:
        return ["--config", str(self.config_path), "--data", str(self.data), *args]

    def cli(self, *args: str) -> int:
        return main(self.argv(*args))

    def run(self, *args: str, **kw) -> subprocess.CompletedProcess[str]:
        """`pyupdate` as a separate process (for kill tests)."""
        cmd = [sys.executable, "-m", "pyupdate_agent.cli", *self.argv(*args)]
        return subprocess.run(cmd, capture_output=True, text=True, **kw)

    def popen(self, *args: str, **kw) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "pyupdate_agent.cli", *self.argv(*args)]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)

    def env(self) -> dict[str, str]:
        return uboot_env(self.fw_env_config)

    def boot(self) -> int:
        """Power-cycle: the bootloader picks a slot by the boot rules."""
        if self.config.get("Bootloader") == "grub":
            return grub_boot(self.grubenv, PART_A, PART_B)
        return uboot_boot(self.fw_env_config, PART_A, PART_B)


def make_host(root: Path) -> HostDevice:
    dev = HostDevice(root)
    root.mkdir(parents=True, exist_ok=True)
    dev.slot_a.write_bytes(os.urandom(SLOT_SIZE))
    dev.slot_b.write_bytes(b"\xff" * SLOT_SIZE)
    env_txt = root / "env.txt"
    env_txt.write_text("".join(f"{k}={v}\n" for k, v in INITIAL_ENV.items()))
    for copy in ("env.a", "env.b"):
        subprocess.run(
            ["mkenvimage", "-r", "-s", ENV_SIZE, "-o", str(root / copy), str(env_txt)], check=True
        )
    dev.fw_env_config.write_text(
        f"{root / 'env.a'} 0x0 {ENV_SIZE}\n{root / 'env.b'} 0x0 {ENV_SIZE}\n"
    )
    subprocess.run(["grub-editenv", str(dev.grubenv), "create"], check=True)
    subprocess.run(
        ["grub-editenv", str(dev.grubenv), "set"]
        + [f"{k}={INITIAL_ENV[k]}" for k in ("mender_boot_part", "upgrade_available", "bootcount")],
        check=True,
    )
    dev.data.mkdir()
    (dev.data / "device_type").write_text(f"device_type={DEVICE_TYPE}\n")
    dev.modules.mkdir()
    dev.etc_scripts.mkdir()
    dev.write_config(
        RootfsPartA=str(dev.slot_a),
        RootfsPartB=str(dev.slot_b),
        FwEnvConfig=str(dev.fw_env_config),
        GrubEnvFile=str(dev.grubenv),
        ArtifactInfoFiles=[str(root / "artifact_info")],
        ScriptsDirs=[str(dev.etc_scripts)],
        ModulesDirs=[str(dev.modules), "/usr/share/mender/modules/v3"],
        StateScriptRetryIntervalSeconds=0,
        StateScriptRetryTimeoutSeconds=5,
        StateScriptTimeoutSeconds=20,
        ModuleTimeoutSeconds=60,
    )
    return dev


def write_module_artifact(
    work: Path,
    payload_type: str,
    files: dict[str, bytes],
    name: str = "mod-1",
    meta: dict | None = None,
    scripts: dict[str, str] | None = None,
    key: Path | None = None,
    device_type: str = DEVICE_TYPE,
    extra: tuple[str, ...] = (),
) -> Path:
    """A module-image artifact written by Debian's mender-artifact, in `work`."""
    work.mkdir(parents=True)
    out = work / "out.mender"
    cmd = [
        "mender-artifact",
        "write",
        "module-image",
        "-T",
        payload_type,
        "-n",
        name,
        "-t",
        device_type,
        "-o",
        str(out),
        *extra,
    ]
    for fname, body in files.items():
        (work / fname).write_bytes(body)
        cmd += ["-f", str(work / fname)]
    if meta is not None:
        (work / "meta.json").write_text(json.dumps(meta))
        cmd += ["-m", str(work / "meta.json")]
    for sname, body in (scripts or {}).items():
        (work / sname).write_text(body)
        (work / sname).chmod(0o755)
        cmd += ["-s", str(work / sname)]
    if key is not None:
        cmd += ["-k", str(key)]
    subprocess.run(cmd, check=True, capture_output=True)
    return out
