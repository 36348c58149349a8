"""Running the external build tools with errors that name the tool."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .errors import ToolError


def require(tool: str) -> str:
    """Return the path of `tool` or raise naming it (and the package that ships it)."""
    path = shutil.which(tool)
    if path is None:
        package = _PACKAGES.get(tool, "")
        hint = f" (Debian package {package})" if package else ""
        raise ToolError(f"{tool}: not found in PATH{hint}")
    return path


def run(
    argv: Sequence[str | Path],
    *,
    stdin: bytes | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> bytes:
    """Run a tool, return its stdout; a non-zero exit becomes one ToolError line."""
    args = [str(a) for a in argv]
    exe = require(args[0])
    try:
        done = subprocess.run(
            [exe, *args[1:]],
            input=stdin,
            capture_output=True,
            cwd=cwd,
            env=env,
            check=False,
        )
    except OSError as exc:
        raise ToolError(f"{args[0]}: cannot run: {exc.strerror}") from exc
    if done.returncode != 0:
        detail = _last_line(done.stderr) or _last_line(done.stdout) or f"exit {done.returncode}"
        raise ToolError(f"{args[0]}: {detail}")
    return done.stdout


def _last_line(data: bytes) -> str:
    lines = [ln.strip() for ln in data.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


_PACKAGES = {
    "mkimage": "u-boot-tools",
    "mkenvimage": "u-boot-tools",
    "fw_printenv": "libubootenv-tool",
    "fw_setenv": "libubootenv-tool",
    "mkfs.ext4": "e2fsprogs",
    "debugfs": "e2fsprogs",
    "e2fsck": "e2fsprogs",
    "resize2fs": "e2fsprogs",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "mmd": "mtools",
    "sfdisk": "fdisk",
    "dd": "coreutils",
    "tar": "tar",
    "fakeroot": "fakeroot",
    "mender-artifact": "mender-artifact",
}
